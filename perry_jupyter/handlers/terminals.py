"""Workspace terminals: REST to list, create and close them; a terminado WebSocket to attach."""

from __future__ import annotations

from typing import Any

from jupyter_server_terminals.handlers import TermSocket as JupyterTermSocket

from ..core.errors import Conflict, InvalidInput
from ..core.names import validate_name
from ..terminals import validate_terminal_name
from .base import PerryHandler, PerryMixin, SocketMixin, api

# What Jupyter's own terminal socket needs; Perry's terminals and `exec` need it too.
TERMINALS = ("execute", "terminals")


async def require_running(handler: PerryMixin, workspace: str) -> None:
    """404 for an unknown workspace, 409 for one that is not running: never a pty that dies at once."""
    ws = await handler.blocking(handler.perry.workspaces.get, workspace)
    if ws["status"] != "running":
        raise Conflict(f"workspace {workspace!r} is {ws['status']}, not running: `perry start {workspace}` first")
    if ws.get("engine", handler.perry.engines.default) != handler.perry.engines.default:
        # Terminals run the Docker CLI against the default engine (see core/engine.py terminal_command).
        raise Conflict(f"workspace {workspace!r} is on engine {ws['engine']!r}, where Perry's terminals do not "
                       f"reach yet: use its sshCommand ({ws.get('sshCommand') or 'no SSH port'}) or `perry exec`")


class TerminalsHandler(PerryHandler):
    auth_resource = "perry:terminals"

    @api
    async def get(self, name: str) -> None:
        await self.blocking(self.perry.workspaces.get, name)
        self.reply({"terminals": self.settings["perry_terminals"].list(name)})

    @api
    async def post(self, name: str) -> None:
        """A shell in the workspace; with ``{"session": ID, "agent"?: A}`` the agent's CLI resuming it."""
        await self.require(*TERMINALS)
        body = self.json_body("session", "agent")
        self.settings["perry_terminals"].require_available()
        if body:
            if body.get("session") is None:
                raise InvalidInput("`agent` names the agent of a session to resume: give `session` too")
            resume = await self.blocking(self.perry.sessions.resume_target, name, body["session"], body.get("agent"))
        else:
            await require_running(self, name)
            resume = None
        self.reply(self.settings["perry_terminals"].create(name, resume=resume), status=201)


class TerminalHandler(PerryHandler):
    auth_resource = "perry:terminals"

    @api
    async def get(self, name: str, term: str) -> None:
        validate_name(name)
        self.reply(self.settings["perry_terminals"].get(name, validate_terminal_name(term)))

    @api
    async def delete(self, name: str, term: str) -> None:
        validate_name(name)
        await self.settings["perry_terminals"].close(name, validate_terminal_name(term),
                                                     reason="terminal closed through the API")
        self.reply(None, status=204)


class WorkspaceTermSocket(SocketMixin, JupyterTermSocket):
    """`/perry/terminal/{workspace}[?terminal=NAME]`: terminado's protocol, Jupyter's auth.

    Without `terminal` it opens a new terminal in the workspace. When the shell
    ends, clients get ``["exit", status]`` before terminado's ``["disconnect", 1]``.
    """

    auth_resource = "perry:terminals"  # Jupyter's TermSocket.get asks for execute on it too

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        JupyterTermSocket.initialize(self, name="jupyter_server_terminals",
                                     term_manager=self.settings.get("terminal_manager"))

    async def get(self, workspace: str) -> None:  # type: ignore[override]
        wanted = self.get_argument("terminal", None)
        # Attaching is what GET .../terminals/{term} allows, creating what POST .../terminals does.
        await self.refuse_unless_allowed(TERMINALS, ("read" if wanted is not None else "write", self.auth_resource))
        terminals = self.settings["perry_terminals"]
        terminals.require_available()
        validate_name(workspace)
        if wanted is not None:
            terminals.get(workspace, validate_terminal_name(wanted))
            name = wanted
        else:
            await require_running(self, workspace)
            name = terminals.create(workspace)["name"]
        await super().get(name)

    def on_pty_died(self) -> None:
        status = self.terminal.ptyproc.exitstatus if self.terminal is not None else None
        if status is None and self.terminal is not None and self.terminal.ptyproc.signalstatus is not None:
            status = 128 + self.terminal.ptyproc.signalstatus
        self.send_json_message(["exit", status])
        super().on_pty_died()
