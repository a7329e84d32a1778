"""What a workspace serves: its ports (REST), the reverse proxy into one, and the raw
WebSocket stream `perry forward` speaks. The traffic itself is perry_jupyter/proxy.py's."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from .. import proxy
from ..core.names import validate_name
from ..core.ports import open_tunnel, ports, validate_port
from .base import AUTH_RESOURCE, PerryHandler, PerrySocket, SocketMixin, api

SAFE = ("GET", "HEAD", "OPTIONS")


class PortsHandler(PerryHandler):
    auth_resource = "perry:ports"

    @api
    async def get(self, name: str) -> None:
        self.reply({"ports": await self.blocking(ports, self.perry.workspaces, name)})


async def tunnel_bridge(handler: Any, name: str, port: str) -> tuple[int, proxy.Direct | proxy.Bridge]:
    validate_name(name)
    number = validate_port(port)
    workspaces = handler.perry.workspaces
    tunnel = await handler.blocking(workspaces.woken, name, lambda: open_tunnel(workspaces, name, number))
    return number, proxy.connect(tunnel)


@web.stream_request_body
class ProxyHandler(SocketMixin, JupyterHandler):
    """`/perry/proxy/{name}/{port}/{path}` (``absolute``: `/perry/proxy-absolute/...`, path kept).

    Jupyter's prepare() authenticates every request and applies its XSRF rules to unsafe
    methods before anything reaches the workspace; the body then streams through as it comes.
    """
    auth_resource = "perry:ports"

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
    exchange: proxy.Exchange | None = None
    _use: object | None = None  # the workspace's activity record holds it busy while the request runs

    def initialize(self, absolute: bool = False) -> None:
        self.absolute = absolute

    def _upgrading(self) -> bool:
        return self.request.method == "GET" and self.request.headers.get("Upgrade", "").lower() == "websocket"

    def _forwarded(self, port: int):
        prefix = None if self.absolute else self.prefix()
        drop = {self.identity_provider.get_cookie_name(self), "_xsrf"}
        headers = proxy.forwarded_headers(self.request, port, prefix, drop)
        path = self.request.path if self.absolute else self.path_kwargs["path"] or "/"
        return proxy.target(path, self.request.query), headers

    def prefix(self) -> str:
        kw = self.path_kwargs
        return url_path_join(self.base_url, "perry/proxy", kw["name"], kw["port"])

    async def prepare(self) -> None:
        await super().prepare()
        if self._upgrading():
            return  # checked as an upgrade in get()
        if not self.current_user:
            if self.request.method in SAFE:
                # What @web.authenticated does: a browser goes to the login page and comes back.
                return web.authenticated(lambda handler: None)(self)
            raise web.HTTPError(403, "authentication required")
        await self.require("read" if self.request.method in SAFE else "write", self.auth_resource)
        if self.path_kwargs["path"] is None and not self.absolute and self.request.method in SAFE:
            query = "?" + self.request.query if self.request.query else ""
            return self.redirect(self.request.path + "/" + query)
        port, bridge = await tunnel_bridge(self, self.path_kwargs["name"], self.path_kwargs["port"])
        self.exchange = proxy.Exchange(bridge)
        self._use = self.perry.workspaces.activity.begin(self.path_kwargs["name"])
        target, headers = self._forwarded(port)
        has_body = "Content-Length" in self.request.headers or "Transfer-Encoding" in self.request.headers
        try:
            await self.exchange.send_head(self.request.method, target, headers, has_body)
        except Exception:
            bridge.close()
            raise

    def data_received(self, chunk: bytes):
        if self.exchange is not None:
            return self.exchange.send(chunk)

    def on_connection_close(self) -> None:
        if self.exchange is not None:
            self.exchange.bridge.close()
        self.on_finish()

    def on_finish(self) -> None:
        super().on_finish()
        if self._use is not None:
            self.perry.workspaces.activity.end(self._use)

    def _headers_received(self, start_line, headers) -> None:
        self.set_status(start_line.code, start_line.reason)
        self._headers = type(self._headers)()  # the workspace's server's headers, not Jupyter's
        prefix = None if self.absolute else self.prefix()
        self._page = bytearray() if proxy.rewrites_html(headers, prefix) else None
        for key, value in headers.get_all():
            if key.lower() in proxy.HOP_BY_HOP or (self._page is not None and key.lower() == "content-length"):
                continue
            if key.lower() == "location":
                value = proxy.rewrite_location(value, prefix, int(self.path_kwargs["port"]))
            self.add_header(key, value)

    async def _chunk(self, chunk: bytes) -> None:
        if self._page is not None:
            self._page += chunk
            if len(self._page) <= proxy.REWRITE_LIMIT:
                return
            chunk, self._page = bytes(self._page), None  # too large after all: the rest streams as it is
        self.write(chunk)
        await self.flush()

    async def _respond(self) -> None:
        self._page = None
        try:
            await self.exchange.respond(proxy.Response(self._headers_received, self._chunk))
            if self._page is not None and self._headers.get("Content-Type", "").lower().startswith("text/css"):
                self.write(proxy.rewrite_css(bytes(self._page), self.prefix()))
            elif self._page is not None:
                self.write(proxy.rewrite_html(bytes(self._page), self.prefix(),
                                              url_path_join(self.base_url, "perry/proxy.js")))
        except Exception as e:  # the port's side closed or spoke no HTTP, or the client left
            if self.request.connection.stream.closed():
                return  # nobody to answer (the browser gave up the request, e.g. a page closed)
            if self._headers_written:
                self.request.connection.stream.close()  # the answer was cut: say so by closing
                return
            raise web.HTTPError(502, f"the server on port {self.path_kwargs['port']} in workspace "
                                     f"{self.path_kwargs['name']!r} ended without an answer") from e

    async def get(self, name: str, port: str, path: str | None) -> None:
        if self._upgrading():
            return await self._websocket(name, port)
        await self._respond()

    async def _websocket(self, name: str, port: str) -> None:
        await self.refuse_unless_allowed(("write", self.auth_resource))
        number, bridge = await tunnel_bridge(self, name, port)
        # Its opening is a use; an open socket is not (a page left open would keep the workspace up).
        self.perry.workspaces.activity.touch(name)
        target, headers = self._forwarded(number)
        headers["Connection"] = "Upgrade"
        headers["Upgrade"] = self.request.headers["Upgrade"]
        await proxy.relay_raw(self.detach(), proxy.request_head("GET", target, headers), bridge)

    async def head(self, *args: Any, **kwargs: Any) -> None:
        await self._respond()

    post = put = delete = patch = options = head


class ProxyScriptHandler(SocketMixin, JupyterHandler):
    """`/perry/proxy.js`: the script the proxy puts first in the pages it serves
    (perry_jupyter/static/proxy.js), behind Jupyter's auth like the pages themselves."""

    async def get(self) -> None:
        if not self.current_user:
            return web.authenticated(lambda handler: None)(self)
        await self.require("read", AUTH_RESOURCE)
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", "private, max-age=300")
        self.finish(proxy.SCRIPT)


class PortSocket(PerrySocket):
    """`/perry/api/workspaces/{name}/ports/{port}/connect`: the port's bytes as binary messages.

    An empty message from the client is its end of input (the port sees a half-close); the
    socket closes when the port's side ends. The tunnel opens before the upgrade, so a closed
    port is a JSON 502 like the proxy's.
    """
    auth_resource = "perry:ports"

    bridge: proxy.Direct | proxy.Bridge | None = None

    async def get(self, name: str, port: str) -> None:  # type: ignore[override]
        await self.refuse_unless_allowed(("write", self.auth_resource))
        _, self.bridge = await tunnel_bridge(self, name, port)
        await super().get(name, port)

    def open(self, *args: Any, **kwargs: Any) -> None:
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                data = await self.bridge.stream.read_bytes(proxy.CHUNK, partial=True)
                await self.write_message(data, binary=True)
        except Exception:  # either side closed
            pass
        self.close()

    async def on_message(self, message: str | bytes) -> None:
        self.perry.workspaces.activity.touch(self.path_kwargs["name"])
        data = message.encode() if isinstance(message, str) else message
        try:
            if data:
                await self.bridge.stream.write(data)
            else:
                self.bridge.half_close()
        except StreamClosedError:
            self.close()

    def on_close(self) -> None:
        if self.bridge is not None:
            self.bridge.close()
