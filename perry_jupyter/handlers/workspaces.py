"""Workspaces and their actions: thin translations onto WorkspaceManager."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..core import limits as resource_limits, updates
from ..core.errors import InvalidInput
from ..core.workspaces import as_reached
from .base import PerryHandler, api
from .follow import EventStreamHandler, follow_argument, since_argument, tail_argument
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


def with_use(ws: dict[str, Any], use: dict[str, Any] | None) -> dict[str, Any]:
    """A workspace with its live use (None unless it runs; see core/usage.py)."""
    return {**ws, "use": use if ws.get("status") == "running" else None}


# Answers of the workspace list kept, one per Host name the list was asked by (a few: the name is the
# client's to choose).
KEPT_ANSWERS = 8


class WorkspacesHandler(PerryHandler):
    auth_resource = "perry:workspaces"

    @api
    async def get(self) -> None:
        manager = self.perry.workspaces
        # Answered on the loop when nothing changed since the last list; on the executor otherwise
        # (a view that is not live asks Docker).
        serial, workspaces = manager.kept_listing() or await self.blocking(manager.listing)
        rounds, use = self.perry.usage.sample()  # the last sample: never a Docker call
        host = self.request.host_name
        # The same list, use and host give the same bytes: encoded (and hashed for the ETag) once.
        answers = self.settings.setdefault("perry_list_answers", {})
        answer = answers.get(host)
        if answer is None or answer[0] != (serial, rounds):
            body = json.dumps({"workspaces": [as_reached(with_use(ws, use.get(ws["name"])), host)
                                              for ws in workspaces]}).encode()
            answer = ((serial, rounds), body, f'"{hashlib.sha1(body).hexdigest()}"')
            if host not in answers and len(answers) >= KEPT_ANSWERS:
                answers.clear()
            answers[host] = answer
        self.reply_encoded(answer[1], etag=answer[2])

    @api
    async def post(self) -> None:
        body = self.json_body("name", "clone", "env", "engine", "image", "idleTimeout", *resource_limits.FIELDS)
        limits = {k: body[k] for k in resource_limits.FIELDS if k in body}
        ws = await self.blocking(self.perry.workspaces.create, body.get("name"),
                                 clone=body.get("clone"), env=body.get("env"), engine=body.get("engine"),
                                 image=body.get("image"), limits=limits, idle_timeout=body.get("idleTimeout"))
        self.reply(as_reached(ws, self.request.host_name), status=201)


class WorkspaceHandler(PerryHandler):
    auth_resource = "perry:workspaces"

    @api
    async def get(self, name: str) -> None:
        ws = await self.blocking(self.perry.workspaces.get, name)
        # One workspace's view may wait a moment for its first sample (a list never does).
        use = await self.blocking(self.perry.usage.of, name, 3.0) if ws["status"] == "running" else None
        self.reply(as_reached(with_use(ws, use), self.request.host_name))

    @api
    async def patch(self, name: str) -> None:
        body = self.json_body()
        self.reply(as_reached(await self.blocking(self.perry.workspaces.update, name, body), self.request.host_name))

    @api
    async def patch(self, name: str) -> None:
        body = self.json_body(*updates.FIELDS)
        ws = await self.blocking(self.perry.workspaces.update, name, body)
        self.reply(as_reached(ws, self.request.host_name))

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
    auth_resource = "perry:workspaces"

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
    auth_resource = "perry:workspaces"

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
    auth_resource = "perry:workspaces"

    @api
    async def post(self, name: str) -> None:
        new = self.json_body("name").get("name")
        manager, transfers = self.perry.workspaces, self.perry.transfers
        with manager.operations.hold(name, "clone") as claim:
            await self.blocking(transfers.check_clone, name, new)
            await self.stream_progress(lambda progress: as_reached(
                transfers.clone(name, new, progress, claim=claim), self.request.host_name), "workspace")


class LogsHandler(EventStreamHandler):
    auth_resource = "perry:workspaces"

    @api
    async def get(self, name: str) -> None:
        tail, since, follow = tail_argument(self), since_argument(self), follow_argument(self)
        manager = self.perry.workspaces
        if not follow:
            self.reply({"logs": await self.blocking(manager.logs, name, tail=tail, since=since)})
            return
        log = await self.blocking(manager.follow_logs, name, tail=tail, since=since)

        def produce(emit, left) -> None:
            for line in log.lines():
                emit("message", line)
            if not left.is_set():
                emit("end", {"reason": "the workspace stopped"})

        await self.stream(produce, cancel=log.close)


class ExecHandler(PerryHandler):
    auth_resource = "perry:exec"

    @api
    async def post(self, name: str) -> None:
        await self.require(*TERMINALS)
        body = self.json_body("command", "user", "workdir", "env")
        options = exec_options(body)
        self.reply(await self.blocking(self.perry.workspaces.exec, name, body.get("command"), **options))
