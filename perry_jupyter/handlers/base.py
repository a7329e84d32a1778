"""What every Perry handler shares: auth, JSON in and out, errors, the executor."""

from __future__ import annotations

import asyncio
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
MAX_BODY = 4 * 1024 * 1024  # no Perry request needs more; Jupyter's own limit is 512 MB
MAX_MESSAGE = 2000  # an error message longer than this quotes someone's input at length
CODES = {400: "invalid", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
         413: "too_large", 426: "upgrade_required", 503: "unavailable"}


def error_body(handler, status_code: int, exc: BaseException | None) -> dict[str, Any]:
    """The JSON of an error answer; the status of a PerryError wins over tornado's 500."""
    if isinstance(exc, PerryError):
        handler.set_status(exc.status)
        body = exc.to_json()
    else:
        # Never the exception's own text for an unexpected error: it is for the server log only.
        message = getattr(exc, "log_message", None) or handler._reason
        body = {"error": {"code": CODES.get(status_code, "internal"), "message": message}}
    message = body["error"]["message"]
    if len(message) > MAX_MESSAGE:
        body["error"]["message"] = message[:MAX_MESSAGE] + "... (cut short)"
    return body


class PerryMixin:
    # What Jupyter's authorizer is asked about, with the action (read for GET, write for the
    # rest) and ``handler.perry_workspace``: "perry" (the server: info, config, image, engines),
    # "perry:workspaces", "perry:exec", "perry:terminals", "perry:sessions", "perry:tasks",
    # "perry:ports". A handler that names none is asked as "perry", which an authorizer that
    # grants by resource does not hand out with any workspace's.
    auth_resource = AUTH_RESOURCE
    # The route's path argument that names the workspace (None where it names something else).
    workspace_argument: str | None = "name"

    @property
    def perry_workspace(self) -> str | None:
        """The workspace this request acts on, for the authorizer; None for none or all of them
        (lists, the events of every workspace). Named by the path, else by ``?workspace=``."""
        kwargs = getattr(self, "path_kwargs", None) or {}
        for key in (self.workspace_argument, "workspace"):
            if key and isinstance(kwargs.get(key), str):
                return kwargs[key]
        return self.get_query_argument("workspace", None)

    @property
    def perry(self):
        return self.settings["perry"]

    async def blocking(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking core call (Docker) on the executor, off the event loop."""
        return await IOLoop.current().run_in_executor(
            self.settings["perry_executor"], functools.partial(fn, *args, **kwargs)
        )

    async def require(self, action: str, resource: str) -> None:
        """403 unless Jupyter's authorizer lets the current user do ``action`` on ``resource``.

        Perry's routes need the `perry` resource; those that run commands in a workspace also
        need what Jupyter's own terminals need, so a deployment that denies terminals denies these.
        """
        user = self.current_user
        if not user:
            raise web.HTTPError(403, "authentication required")
        if self.authorizer is not None and not await ensure_async(
            self.authorizer.is_authorized(self, user, action, resource)
        ):
            raise web.HTTPError(403, f"not authorized to {action} on resource {resource}")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        body = error_body(self, status_code, kwargs.get("exc_info", (None, None, None))[1])
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, PerryError) and value.status < 500:
            return  # the client's mistake, answered in the body; no traceback in the server log
        if isinstance(value, PerryError):
            self.log.warning("%s %s: %s", self.request.method, self.request.path, value.message)
            return
        super().log_exception(typ, value, tb)


class PerryHandler(PerryMixin, APIHandler):
    async def prepare(self) -> None:
        await super().prepare()
        if len(self.request.body) > MAX_BODY:
            raise PerryError(f"request body is larger than {MAX_BODY // 2**20} MB", code="too_large", status=413)

    def json_body(self, *fields: str) -> dict[str, Any]:
        """The request body as a JSON object ({} when empty); 400 otherwise, or for a field not in ``fields``."""
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidInput(f"request body is not valid JSON: {e}") from None
        except RecursionError:
            raise InvalidInput("request body is nested too deeply") from None
        if not isinstance(body, dict):
            raise InvalidInput("request body must be a JSON object")
        unknown = sorted(set(body) - set(fields))
        if fields and unknown:
            listed = ", ".join(k if len(k) <= 40 else k[:40] + "..." for k in unknown[:10])
            raise InvalidInput(f"unknown field(s) {listed}; expected {', '.join(fields)}")
        return body

    def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        if payload is None:
            self.finish()
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(payload))

    def reply_encoded(self, body: bytes, etag: str) -> None:
        """A 200 whose JSON is ``body``, encoded already, with the ETag tornado would give it (a 304
        for a client that has it)."""
        self.set_header("Content-Type", "application/json")
        self.set_header("Etag", etag)
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
        else:
            self.finish(body)

    async def stream_progress(self, work: Callable[[Callable[[dict], None]], Any], result: str) -> None:
        """Run ``work(progress)`` on the executor, streaming each ``progress(event)`` as a line of
        JSON; the last line is ``{"stage": "done", result: what work returned}`` or
        ``{"stage": "error", "error": {...}}``. The work goes on if the client leaves."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def progress(event: dict) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        running = asyncio.ensure_future(self.blocking(work, progress))
        self.set_header("Content-Type", "application/x-ndjson")
        while not (running.done() and queue.empty()):
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, running}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                await self._send_line(getter.result())
            else:
                getter.cancel()
        try:
            final = {"stage": "done", result: running.result()}
        except PerryError as e:
            final = {"stage": "error", **e.to_json()}
        await self._send_line(final)
        self.finish()

    async def _send_line(self, event: dict) -> None:
        self.write(json.dumps(event) + "\n")
        try:
            await self.flush()
        except Exception:  # client went away
            pass


def api(method: Callable) -> Callable:
    """Authenticate and authorize a REST method with Jupyter's own machinery."""
    return web.authenticated(authorized(method))


class SocketMixin(PerryMixin):
    """Refuses a WebSocket upgrade with a JSON answer, before anything is started for it."""

    async def refuse_unless_allowed(self, *permissions: tuple[str, str]) -> None:
        """Every check tornado and Jupyter make on an upgrade, made first.

        They check the upgrade headers and the origin only inside WebSocketHandler.get, after
        a subclass has done its work: a browser on a hostile page (which sends the login
        cookie along) or a plain GET would otherwise start what the socket is for.
        """
        for action, resource in permissions:
            await self.require(action, resource)
        headers = self.request.headers
        if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in {
                part.strip().lower() for part in headers.get("Connection", "").split(",")}:
            raise web.HTTPError(400, "this address takes WebSocket connections only")
        if headers.get("Sec-WebSocket-Version") not in ("7", "8", "13"):
            raise web.HTTPError(426, "unsupported WebSocket version; use 13")
        if not self.check_origin():  # Jupyter's: the Origin must match the host or allow_origin
            raise web.HTTPError(403, "cross-origin WebSocket refused")


class PerrySocket(SocketMixin, WebSocketMixin, JupyterHandler, WebSocketHandler):
    """A WebSocket that refuses the upgrade unless Jupyter authenticates the request."""

    def check_arguments(self) -> None:
        """Raise PerryError for a bad query parameter; runs before the upgrade."""

    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.refuse_unless_allowed(("read", self.auth_resource))
        self.check_arguments()
        await ensure_async(super().get(*args, **kwargs))
