"""Workspaces and their actions: thin translations onto WorkspaceManager."""

from __future__ import annotations

import re
from typing import Any

from ..core.errors import InvalidInput
from ..core.workspaces import as_reached
from .base import PerryHandler, api
from .terminals import TERMINALS

# A user name or uid, optionally with a group, as `docker exec -u` takes it.
EXEC_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?")


def exec_options(body: dict[str, Any]) -> dict[str, Any]:
    """`exec`'s optional fields, checked here: Docker would answer a bad one with its own error, as a 502."""
    command, user, workdir, env = (body.get(k) for k in ("command", "user", "workdir", "env"))
    if isinstance(command, list) and any(isinstance(c, str) and "\0" in c for c in command):
        raise InvalidInput("command must not contain NUL characters")
    if user is not None and (not isinstance(user, str) or not EXEC_USER.fullmatch(user)):
        raise InvalidInput("user must be a user name or uid, optionally with :group (such as root or 1000:1000)")
    if workdir is not None and (not isinstance(workdir, str) or not workdir.startswith("/")
                                or "\0" in workdir or len(workdir) > 4096):
        raise InvalidInput("workdir must be an absolute path, such as /home/workspace/project")
    if isinstance(env, dict) and any(isinstance(v, str) and "\0" in v for v in env.values()):
        raise InvalidInput("env values must not contain NUL characters")
    return {k: body[k] for k in ("user", "workdir", "env") if body.get(k) is not None}


class WorkspacesHandler(PerryHandler):
    @api
    async def get(self) -> None:
        workspaces = await self.blocking(self.perry.workspaces.list)
        self.reply({"workspaces": [as_reached(ws, self.request.host_name) for ws in workspaces]})

    @api
    async def post(self) -> None:
        body = self.json_body("name", "clone", "env", "engine")
        ws = await self.blocking(self.perry.workspaces.create, body.get("name"),
                                 clone=body.get("clone"), env=body.get("env"), engine=body.get("engine"))
        self.reply(as_reached(ws, self.request.host_name), status=201)


class WorkspaceHandler(PerryHandler):
    @api
    async def get(self, name: str) -> None:
        self.reply(as_reached(await self.blocking(self.perry.workspaces.get, name), self.request.host_name))

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
        self.reply(as_reached(result, self.request.host_name))


class MoveHandler(PerryHandler):
    @api
    async def post(self, name: str) -> None:
        engine = self.json_body("engine").get("engine")
        manager, transfers = self.perry.workspaces, self.perry.transfers
        # Held from the checks to the end: a busy workspace is refused with nothing changed.
        with manager.operations.hold(name, "move") as claim:
            await self.blocking(transfers.check_move, name, engine)
            await self.settings["perry_terminals"].close_all(name, f"workspace {name} is moving to engine {engine}")
            await self.stream_progress(lambda progress: as_reached(
                transfers.move(name, engine, progress, claim=claim), self.request.host_name), "workspace")


class CloneHandler(PerryHandler):
    @api
    async def post(self, name: str) -> None:
        new = self.json_body("name").get("name")
        manager, transfers = self.perry.workspaces, self.perry.transfers
        with manager.operations.hold(name, "clone") as claim:
            await self.blocking(transfers.check_clone, name, new)
            await self.stream_progress(lambda progress: as_reached(
                transfers.clone(name, new, progress, claim=claim), self.request.host_name), "workspace")


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
        await self.require(*TERMINALS)
        body = self.json_body("command", "user", "workdir", "env")
        options = exec_options(body)
        self.reply(await self.blocking(self.perry.workspaces.exec, name, body.get("command"), **options))
