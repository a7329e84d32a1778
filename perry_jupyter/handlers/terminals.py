"""Workspace terminals: REST to list, create and close them; a terminado WebSocket to attach."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from jupyter_server_terminals.handlers import TermSocket as JupyterTermSocket

from ..core.errors import Conflict, InvalidInput
from ..core.names import validate_name
from ..terminals import validate_terminal_name
from .base import PerryHandler, PerryMixin, SocketMixin, api

log = logging.getLogger(__name__)

# What Jupyter's own terminal socket needs; Perry's terminals and `exec` need it too.
TERMINALS = ("execute", "terminals")


async def require_running(handler: PerryMixin, workspace: str) -> None:
    """404 for an unknown workspace, 503 for one whose engine is unreachable, 409 for one that is not
    running: never a pty that dies at once."""
    ws = await handler.blocking(handler.perry.workspaces.get, workspace)
    handler.perry.workspaces.require_reachable(ws)
    if ws["status"] != "running":
        raise Conflict(f"workspace {workspace!r} is {ws['status']}, not running: `perry start {workspace}` first")


# The starts terminals wait for: held here, since the loop keeps only weak references to tasks.
WAKING: set[asyncio.Future] = set()


def _log_failed_wake(done: asyncio.Future) -> None:
    # The terminal that waits says it could not attach; the server log says why.
    WAKING.discard(done)
    if not done.cancelled() and done.exception() is not None:
        log.warning("waking a workspace for a terminal failed: %s",
                    getattr(done.exception(), "message", done.exception()))


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
        workspaces = self.perry.workspaces
        if body:
            if body.get("session") is None:
                raise InvalidInput("`agent` names the agent of a session to resume: give `session` too")
            resume = await self.blocking(workspaces.woken, name, lambda: self.perry.sessions.resume_target(
                name, body["session"], body.get("agent")))
        else:
            try:
                await require_running(self, name)
            except Conflict:
                if not await self.blocking(workspaces.wake, name):
                    raise
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
        elif await self.blocking(self._wakes_here, workspace):
            # Stopped while idle: the terminal opens at once and says it is starting the workspace,
            # its shell following once the container runs.
            waking = asyncio.ensure_future(self.blocking(self.perry.workspaces.wake, workspace))
            WAKING.add(waking)
            waking.add_done_callback(_log_failed_wake)
            name = terminals.create(workspace, waking=True)["name"]
        else:
            await require_running(self, workspace)
            name = terminals.create(workspace)["name"]
        await super().get(name)

    def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # A keystroke's echo is one small frame: send it now, not after the last one's ACK.
        self.set_nodelay(True)
        super().open(*args, **kwargs)

    def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
        """terminado's messages, handled at once: a keystroke goes to the pty before the next frame is read.

        terminado's coroutine handed each keystroke to a thread and back; Perry's manager writes
        it on the loop without blocking (`LoopPtyProcess.write`), so nothing here awaits.
        """
        command = json.loads(message)
        if self.terminal is not None and isinstance(command, list) and command:
            if command[0] == "stdin" and len(command) > 1 and isinstance(command[1], str):
                self.terminal.ptyproc.write(command[1])
            elif command[0] == "set_size":
                self.size = command[1:3]
                self.terminal.resize_to_smallest()
        self._update_activity()

    def _wakes_here(self, workspace: str) -> bool:
        """Whether opening a terminal starts ``workspace`` first (idle-stopped, on the engine terminals reach)."""
        workspaces = self.perry.workspaces
        return workspaces.wakes(workspace) and workspaces.engine_name(workspace) == self.perry.engines.default

    def on_pty_died(self) -> None:
        status = self.terminal.ptyproc.exitstatus if self.terminal is not None else None
        if status is None and self.terminal is not None and self.terminal.ptyproc.signalstatus is not None:
            status = 128 + self.terminal.ptyproc.signalstatus
        self.send_json_message(["exit", status])
        super().on_pty_died()
