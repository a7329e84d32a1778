"""`GET /perry/api/sessions/search`: the messages of every running workspace's agent sessions
holding a text."""

from __future__ import annotations

from ..core.errors import InvalidInput
from ..core.names import shown
from ..core.search import MAX_LIMIT, search_sessions
from .base import PerryHandler, api


class SessionSearchHandler(PerryHandler):
    auth_resource = "perry:sessions"  # perry_workspace: ?workspace=, or None for every workspace

    @api
    async def get(self) -> None:
        raw = self.get_argument("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise InvalidInput(f"limit must be a whole number between 1 and {MAX_LIMIT}, not {shown(raw)}")
        found = await self.blocking(search_sessions, self.perry.workspaces, self.get_argument("q", None),
                                    workspace=self.get_argument("workspace", None),
                                    agent=self.get_argument("agent", None), limit=int(raw))
        self.reply(found)
