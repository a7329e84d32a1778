"""What changed in a workspace's project: its git state, and the diff of one file or all."""

from __future__ import annotations

from .base import PerryHandler, api
from .sessions import _int_argument


class ChangesHandler(PerryHandler):
    auth_resource = "perry:workspaces"

    @api
    async def get(self, name: str) -> None:
        self.reply(await self.blocking(self.perry.changes.state, name, self.get_argument("dir", None),
                                       commits=_int_argument(self, "commits", 10)))


class DiffHandler(PerryHandler):
    auth_resource = "perry:workspaces"

    @api
    async def get(self, name: str) -> None:
        self.reply(await self.blocking(self.perry.changes.diff, name, file=self.get_argument("file", None),
                                       base=self.get_argument("base", None), directory=self.get_argument("dir", None),
                                       max_bytes=_int_argument(self, "maxBytes", 512 * 1024)))
