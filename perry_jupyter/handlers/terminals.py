"""Workspace terminals: REST to list, create and close them; a terminado WebSocket to attach."""

from __future__ import annotations

from typing import Any

from jupyter_server_terminals.handlers import TermSocket as JupyterTermSocket
from tornado import web

from ..core.errors import Conflict, PerryError
from ..core.names import validate_name
from .base import PerryHandler, PerryMixin, api, json_error


async def require_running(handler: PerryMixin, workspace: str) -> None:
    """404 for an unknown workspace, 409 for one that is not running: never a pty that dies at once."""
    ws = await handler.blocking(handler.perry.workspaces.get, workspace)
    if ws["status"] != "running":
        raise Conflict(f"workspace {workspace!r} is {ws['status']}, not running: `perry start {workspace}` first")


class TerminalsHandler(PerryHandler):
    @api
    async def get(self, name: str) -> None:
        await self.blocking(self.perry.workspaces.get, name)
        self.reply({"terminals": self.settings["perry_terminals"].list(name)})

    @api
    async def post(self, name: str) -> None:
        await require_running(self, name)
        self.reply(self.settings["perry_terminals"].create(name), status=201)


class TerminalHandler(PerryHandler):
    @api
    async def get(self, name: str, term: str) -> None:
        validate_name(name)
        self.reply(self.settings["perry_terminals"].get(name, term))

    @api
    async def delete(self, name: str, term: str) -> None:
        validate_name(name)
        await self.settings["perry_terminals"].close(name, term, reason="terminal closed through the API")
        self.reply(None, status=204)


class WorkspaceTermSocket(PerryMixin, JupyterTermSocket):
    """`/perry/terminal/{workspace}[?terminal=NAME]`: terminado's protocol, Jupyter's auth.

    Without `terminal` it opens a new terminal in the workspace. When the shell
    ends, clients get ``["exit", status]`` before terminado's ``["disconnect", 1]``.
    """

    auth_resource = "terminals"

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        json_error(self, status_code, **kwargs)

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        JupyterTermSocket.initialize(self, name="jupyter_server_terminals",
                                     term_manager=self.settings.get("terminal_manager"))

    async def get(self, workspace: str) -> None:  # type: ignore[override]
        if not self.current_user:
            raise web.HTTPError(403, "authentication required")
        terminals = self.settings["perry_terminals"]
        if self.term_manager is None:
            raise web.HTTPError(503, "terminals are disabled on this server")
        try:
            wanted = self.get_argument("terminal", None)
            if wanted is not None:
                validate_name(workspace)
                terminals.get(workspace, wanted)
                name = wanted
            else:
                await require_running(self, workspace)
                name = terminals.create(workspace)["name"]
        except PerryError as e:
            raise web.HTTPError(e.status, e.message) from None
        await super().get(name)

    def on_pty_died(self) -> None:
        status = self.terminal.ptyproc.exitstatus if self.terminal is not None else None
        if status is None and self.terminal is not None and self.terminal.ptyproc.signalstatus is not None:
            status = 128 + self.terminal.ptyproc.signalstatus
        self.send_json_message(["exit", status])
        super().on_pty_died()
