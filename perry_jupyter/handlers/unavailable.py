"""What `/perry/api/*` answers when the extension could not load: JSON 503 naming cause and fix.

Without it a failed start-up leaves Jupyter's HTML 404 on every Perry route, which
tells a client nothing. Only Jupyter and tornado are imported here: whatever of
Perry's own code failed to load must not take this handler down too.
"""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web


class UnavailableHandler(APIHandler):
    auth_resource = "perry"

    def initialize(self, message: str) -> None:  # type: ignore[override]
        self.message = message

    @web.authenticated
    @authorized
    def get(self, *args) -> None:
        self.set_status(503)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"code": "perry_unavailable", "message": self.message}}))

    post = put = patch = delete = get


def unavailable_routes(message: str) -> list[tuple]:
    """Routes (without base_url) covering Perry's REST API, its event and terminal sockets, the proxy."""
    kwargs = {"message": message}
    return [
        (r"/perry/api(?:/.*)?", UnavailableHandler, kwargs),
        (r"/perry/terminal/.*", UnavailableHandler, kwargs),
        (r"/perry/proxy(?:-absolute)?/.*", UnavailableHandler, kwargs),
    ]
