"""What `/perry/api/*` answers when the extension could not load: JSON 503 naming cause and fix.

Without it a failed start-up leaves Jupyter's HTML 404 on every Perry route, which
tells a client nothing. Only Jupyter and tornado are imported here: whatever of
Perry's own code failed to load must not take this handler down too.
"""

from __future__ import annotations

import json

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from tornado import web


class UnavailableHandler(APIHandler):
    auth_resource = "perry"

    def initialize(self, message: str) -> None:  # type: ignore[override]
        self.message = message

    async def prepare(self) -> None:
        await ensure_async(super().prepare())
        user = self.current_user
        if not user:
            raise web.HTTPError(403, "authentication required")
        if self.authorizer is not None and not await ensure_async(
            self.authorizer.is_authorized(self, user, "read", self.auth_resource)
        ):
            raise web.HTTPError(403)
        self.set_status(503)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"code": "perry_unavailable", "message": self.message}}))

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        code = {403: "forbidden"}.get(status_code, "internal")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"code": code, "message": message}}))


def unavailable_routes(message: str) -> list[tuple]:
    """Routes (without base_url) covering Perry's REST API, its event and terminal sockets."""
    kwargs = {"message": message}
    return [
        (r"/perry/api(?:/.*)?", UnavailableHandler, kwargs),
        (r"/perry/terminal/.*", UnavailableHandler, kwargs),
    ]
