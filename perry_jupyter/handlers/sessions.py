"""Agent sessions of a workspace: list, one, its messages (paged), token usage."""

from __future__ import annotations

from ..core.errors import InvalidInput
from ..core.names import shown
from .base import PerryHandler, api


def _int_argument(handler: PerryHandler, name: str, default: int) -> int:
    raw = handler.get_argument(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {shown(raw)}") from None


class SessionsHandler(PerryHandler):
    auth_resource = "perry:sessions"

    @api
    async def get(self, name: str) -> None:
        sessions = await self.blocking(self.perry.sessions.list, name, self.get_argument("agent", None))
        self.reply({"sessions": sessions})


class SessionHandler(PerryHandler):
    auth_resource = "perry:sessions"

    @api
    async def get(self, name: str, session_id: str) -> None:
        self.reply(await self.blocking(self.perry.sessions.get, name, session_id))


class MessagesHandler(PerryHandler):
    auth_resource = "perry:sessions"

    @api
    async def get(self, name: str, session_id: str) -> None:
        limit, offset = _int_argument(self, "limit", 50), _int_argument(self, "offset", 0)
        self.reply(await self.blocking(self.perry.sessions.messages, name, session_id, limit=limit, offset=offset))

    @api
    async def post(self, name: str, session_id: str) -> None:
        body = self.json_body("text")
        self.reply(await self.blocking(self.perry.sessions.send, name, session_id, body.get("text")))


class UsageHandler(PerryHandler):
    auth_resource = "perry:sessions"

    @api
    async def get(self, name: str) -> None:
        self.reply(await self.blocking(self.perry.sessions.usage, name))


class AllUsageHandler(PerryHandler):
    auth_resource = "perry:sessions"

    @api
    async def get(self) -> None:
        self.reply(await self.blocking(self.perry.sessions.usage_all))
