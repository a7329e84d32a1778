"""Workspaces and their actions: thin translations onto WorkspaceManager."""

from __future__ import annotations

from ..core.errors import InvalidInput
from .base import PerryHandler, api


class WorkspacesHandler(PerryHandler):
    @api
    async def get(self) -> None:
        self.reply({"workspaces": await self.blocking(self.perry.workspaces.list)})

    @api
    async def post(self) -> None:
        body = self.json_body()
        unknown = sorted(set(body) - {"name", "clone", "env"})
        if unknown:
            raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; expected name, clone, env")
        ws = await self.blocking(self.perry.workspaces.create, body.get("name"),
                                 clone=body.get("clone"), env=body.get("env"))
        self.reply(ws, status=201)


class WorkspaceHandler(PerryHandler):
    @api
    async def get(self, name: str) -> None:
        self.reply(await self.blocking(self.perry.workspaces.get, name))

    @api
    async def delete(self, name: str) -> None:
        manager = self.perry.workspaces
        # Held from before the terminals close: a busy workspace is refused with nothing changed.
        with manager.operations.hold(name, "delete") as claim:
            await self.blocking(manager.get, name)
            await self.settings["perry_terminals"].close_all(name, f"workspace {name} is being deleted")
            await self.blocking(manager.delete, name, claim=claim)
        self.reply(None, status=204)


class WorkspaceActionHandler(PerryHandler):
    @api
    async def post(self, name: str, action: str) -> None:
        manager = self.perry.workspaces
        method = {"start": manager.start, "stop": manager.stop, "sync": manager.sync}[action]
        with manager.operations.hold(name, action) as claim:
            if action == "stop":
                await self.blocking(manager.get, name)
                await self.settings["perry_terminals"].close_all(name, f"workspace {name} is stopping")
            result = await self.blocking(method, name, claim=claim)
        self.reply(result)


class LogsHandler(PerryHandler):
    @api
    async def get(self, name: str) -> None:
        try:
            tail = int(self.get_argument("tail", "200"))
        except ValueError:
            raise InvalidInput("tail must be a whole number of lines") from None
        if tail < 1:
            raise InvalidInput("tail must be at least 1")
        self.reply({"logs": await self.blocking(self.perry.workspaces.logs, name, tail=tail)})


class ExecHandler(PerryHandler):
    @api
    async def post(self, name: str) -> None:
        body = self.json_body()
        unknown = sorted(set(body) - {"command", "user", "workdir", "env"})
        if unknown:
            raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; expected command, user, workdir, env")
        options = {k: body[k] for k in ("user", "workdir", "env") if body.get(k) is not None}
        self.reply(await self.blocking(self.perry.workspaces.exec, name, body.get("command"), **options))
