"""Dispatched agent tasks of a workspace: start, list, show, cancel."""

from __future__ import annotations

from ..core.errors import InvalidInput
from perry_worker import agents as agent_registry

from .base import PerryHandler, api

FIELDS = ("agent", "prompt", "sessionId", "model", "callback")


class TasksHandler(PerryHandler):
    auth_resource = "perry:tasks"

    @api
    async def get(self, name: str) -> None:
        self.reply({"tasks": await self.blocking(self.perry.tasks.list, name)})

    @api
    async def post(self, name: str) -> None:
        body = self.json_body(*FIELDS)
        agent = agent_registry.DEFAULT if body.get("agent") is None else body["agent"]
        if not isinstance(agent, str):  # the core's message would quote it whole
            raise InvalidInput("agent must be one of: " + ", ".join(agent_registry.NAMES))
        task = await self.blocking(self.perry.tasks.dispatch, name, agent=agent,
                                   prompt=body.get("prompt"), session_id=body.get("sessionId"),
                                   model=body.get("model"), callback=body.get("callback"))
        self.reply(task, status=201)


class TaskHandler(PerryHandler):
    auth_resource = "perry:tasks"

    @api
    async def get(self, name: str, task_id: str) -> None:
        self.reply(await self.blocking(self.perry.tasks.get, name, task_id))

    @api
    async def delete(self, name: str, task_id: str) -> None:
        self.reply(await self.blocking(self.perry.tasks.cancel, name, task_id))
