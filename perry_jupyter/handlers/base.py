"""What every Perry handler shares: auth, JSON in and out, errors, the executor."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketHandler

from ..core.errors import InvalidInput, PerryError

AUTH_RESOURCE = "perry"


class PerryMixin:
    auth_resource = AUTH_RESOURCE

    @property
    def perry(self):
        return self.settings["perry"]

    async def blocking(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking core call (Docker) on the executor, off the event loop."""
        return await IOLoop.current().run_in_executor(
            self.settings["perry_executor"], functools.partial(fn, *args, **kwargs)
        )


class PerryHandler(PerryMixin, APIHandler):
    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object ({} when empty); 400 otherwise."""
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidInput(f"request body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise InvalidInput("request body must be a JSON object")
        return body

    def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        if payload is None:
            self.finish()
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, PerryError):
            self.set_status(exc.status)
            body = exc.to_json()
        else:
            reason = getattr(exc, "log_message", None) or self._reason
            code = {400: "invalid", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
                status_code, "internal")
            body = {"error": {"code": code, "message": reason}}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, PerryError) and value.status < 500:
            return  # the client's mistake, answered in the body; no traceback in the server log
        if isinstance(value, PerryError):
            self.log.warning("%s %s: %s", self.request.method, self.request.path, value.message)
            return
        super().log_exception(typ, value, tb)


def api(method: Callable) -> Callable:
    """Authenticate and authorize a REST method with Jupyter's own machinery."""
    return web.authenticated(authorized(method))


def json_error(handler, status_code: int, **kwargs: Any) -> None:
    """A refused WebSocket upgrade answers like the REST API, not with Jupyter's HTML page."""
    exc = kwargs.get("exc_info", (None, None, None))[1]
    message = getattr(exc, "log_message", None) or handler._reason
    code = {400: "invalid", 403: "forbidden", 404: "not_found", 409: "conflict", 503: "unavailable"}.get(
        status_code, "internal")
    handler.set_header("Content-Type", "application/json")
    handler.finish(json.dumps({"error": {"code": code, "message": message}}))


class PerrySocket(PerryMixin, WebSocketMixin, JupyterHandler, WebSocketHandler):
    """A WebSocket that refuses the upgrade unless Jupyter authenticates the request."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        json_error(self, status_code, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        user = self.current_user
        if not user:
            raise web.HTTPError(403, "authentication required")
        if self.authorizer is not None and not await ensure_async(
            self.authorizer.is_authorized(self, user, "read", self.auth_resource)
        ):
            raise web.HTTPError(403)
        await ensure_async(super().get(*args, **kwargs))
