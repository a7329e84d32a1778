"""HTTP and WebSocket traffic into a workspace's port, over a tunnel through the Docker engine
or, where it can work, straight to the container (core/ports.py decides).

The core opens the tunnel (`core.ports.open_tunnel`: a blocking socket-like object); here it
becomes a tornado IOStream, so tornado's own HTTP/1.1 client connection speaks to the
workspace's server and no blocking call touches the event loop. When the engine's connection is
a plain socket (a unix socket or TCP), the stream reads it directly and strips the engine's
frame headers as it reads (DemuxStream); otherwise (a TLS socket, an ssh:// engine's channel) two
threads pump the tunnel to and from a local socket pair (Bridge), slower and less steady
(bench/README.md, proxy.py).
The handlers (handlers/proxy.py) only route.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import socket
import threading
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote, urlsplit, urlunsplit

from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.iostream import IOStream, StreamClosedError

CHUNK = 256 * 1024
HEAD_LIMIT = 64 * 1024
# Headers about one hop, not the message: never passed on (RFC 9110 7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


class DemuxStream(IOStream):
    """An IOStream on the engine's hijacked socket that reads only the command's stdout.

    Without a tty the engine frames the output (8 bytes: stream, 3 zero bytes, big-endian length);
    the payload of stdout frames is read straight into tornado's buffer, stderr's is kept aside.
    What is written goes to the command's stdin as it is.
    """

    def __init__(self, sock: socket.socket, **kwargs: Any):
        super().__init__(sock, **kwargs)
        self._header = bytearray()
        self._left = 0  # payload bytes still to come in the current frame
        self._stdout = True
        self.stderr = bytearray()

    def read_from_fd(self, buf):
        try:
            while True:
                if self._left:
                    if self._stdout:
                        count = self.socket.recv_into(buf, min(len(buf), self._left))
                        self._left -= count
                        return count
                    data = self.socket.recv(self._left)
                    if not data:
                        return 0
                    self.stderr += data
                    self._left -= len(data)
                    continue
                data = self.socket.recv(8 - len(self._header))
                if not data:
                    return 0
                self._header += data
                if len(self._header) == 8:
                    self._stdout = self._header[0] != 2
                    self._left = int.from_bytes(self._header[4:8], "big")
                    self._header.clear()
        except BlockingIOError:
            return None
        finally:
            del buf


class Direct:
    """A connection that is a plain socket, read on the event loop: the engine's (its frames
    stripped as read) or, on the direct route, the port's own (core/ports.py)."""

    def __init__(self, tunnel: Any):
        self.tunnel = tunnel
        tunnel.socket.setblocking(False)
        kind = DemuxStream if getattr(tunnel, "framed", True) else IOStream
        self.stream = kind(tunnel.socket, max_buffer_size=8 * CHUNK)
        self.stream.read_chunk_size = CHUNK

    def half_close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.socket.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.stream.close()
        self.tunnel.close()


def connect(tunnel: Any) -> "Direct | Bridge":
    """The tunnel (an ExecSocket just opened, or a Dialed connection) as an object with an IOStream ``stream``,
    ``half_close()`` and ``close()``."""
    if isinstance(tunnel.socket, socket.socket) and not tunnel.stdout_before:
        return Direct(tunnel)
    return Bridge(tunnel)


class Bridge:
    """An IOStream whose bytes go through ``tunnel`` (an ExecSocket); two threads pump them."""

    def __init__(self, tunnel: Any):
        self.tunnel = tunnel
        near, self._far = socket.socketpair()
        for s in (near, self._far):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CHUNK)
        self.stream = IOStream(near, max_buffer_size=8 * CHUNK)
        self.stream.read_chunk_size = CHUNK
        self._ended = 0
        self._lock = threading.Lock()
        for pump in (self._down, self._up):
            threading.Thread(target=pump, daemon=True, name="perry-port-tunnel").start()

    def _down(self) -> None:
        """Tunnel -> stream, then the stream's EOF."""
        try:
            while chunk := self.tunnel.recv(CHUNK):
                self._far.sendall(chunk)
            self._far.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._end()

    def _up(self) -> None:
        """Stream -> tunnel, then the tunnel's half-close (the relay passes it on to the port)."""
        try:
            while chunk := self._far.recv(CHUNK):
                self.tunnel.sendall(chunk)
            self.tunnel.shutdown_write()
        except OSError:
            self.close()
        self._end()

    def _end(self) -> None:
        with self._lock:
            self._ended += 1
            done = self._ended == 2
        if done:
            self.close()

    def half_close(self) -> None:
        """No more bytes this way: the port sees its input end and may still answer."""
        with contextlib.suppress(OSError):
            self.stream.socket.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """End both directions now (wakes a pump blocked on a quiet port)."""
        self.tunnel.close()
        with contextlib.suppress(OSError):
            self._far.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._far.close()
        self.stream.close()


def forwarded_headers(request: httputil.HTTPServerRequest, port: int, prefix: str | None,
                      drop_cookies: set[str]) -> httputil.HTTPHeaders:
    """The request's headers as the workspace's server should see them.

    Host is the address the server listens on (dev servers refuse unknown hosts); where the
    client really came from goes in X-Forwarded-*. Jupyter's own credentials (its login cookie,
    a `token` Authorization) stay here: the workspace is not trusted with them.
    """
    headers = httputil.HTTPHeaders()
    for key, value in request.headers.get_all():
        lower = key.lower()
        if lower in HOP_BY_HOP or lower == "host":
            continue
        if lower == "authorization" and value.lower().startswith("token "):
            continue
        if lower == "cookie":
            value = "; ".join(c.strip() for c in value.split(";")
                              if c.strip() and c.split("=", 1)[0].strip() not in drop_cookies)
            if not value:
                continue
        headers.add(key, value)
    headers["Host"] = f"127.0.0.1:{port}"
    headers["X-Forwarded-Host"] = request.host
    headers["X-Forwarded-Proto"] = request.protocol
    headers["X-Forwarded-For"] = ", ".join(filter(None, [request.headers.get("X-Forwarded-For"), request.remote_ip]))
    if prefix is not None:
        headers["X-Forwarded-Prefix"] = prefix
    return headers


def target(path: str, query: str) -> str:
    """The request target sent on: the path quoted just enough to be valid, and the query."""
    path = quote("/" + path.lstrip("/"), safe=":/?#[]@!$&'()*+,;=-._~%")
    return path + ("?" + query if query else "")


def rewrite_location(location: str, prefix: str | None, port: int) -> str:
    """A redirect to a path of the workspace's server, as a path under the proxy prefix."""
    if prefix is None:
        return location
    parts = urlsplit(location)
    if parts.netloc and parts.netloc not in (f"127.0.0.1:{port}", f"localhost:{port}"):
        return location  # somewhere else entirely
    if not parts.path.startswith("/"):
        return urlunsplit(("", "", parts.path, parts.query, parts.fragment)) if parts.netloc else location
    return urlunsplit(("", "", prefix.rstrip("/") + parts.path, parts.query, parts.fragment))


# Root-relative links in a page's own markup ("/assets/app.js"): behind a stripped prefix they would
# leave the proxy. Single-page apps built with a bundler's default base ("/") are made that way.
ROOT_LINK = re.compile(rb"""(\s(?:src|href|action)\s*=\s*["'])/(?![/\\])""", re.IGNORECASE)
REWRITE_LIMIT = 2 * 1024 * 1024  # a page larger than this passes as it is


# The same in a style sheet's url(/fonts/x.woff2), which a page's CSS bundle holds.
CSS_URL = re.compile(rb"""(url\(\s*["']?)/(?![/\\])""", re.IGNORECASE)


def rewrites_html(headers: httputil.HTTPHeaders, prefix: str | None) -> bool:
    """Whether a response's page (HTML or CSS) is read whole and its root-relative links put under
    ``prefix``."""
    return (prefix is not None and headers.get("Content-Type", "").lower().startswith(("text/html", "text/css"))
            and headers.get("Content-Encoding", "identity").lower() == "identity"
            and int(headers.get("Content-Length") or 0) <= REWRITE_LIMIT)


# The script put first in a page's <head> (static/proxy.js): an app's own calls to its origin's
# root ("/api/...", fetch, XMLHttpRequest, EventSource, WebSocket) go under the prefix too, with
# Jupyter's XSRF header on the unsafe ones. Served from Jupyter's origin (a `'self'` script, which
# an app's own Content-Security-Policy allows where an inline one would be refused).
SCRIPT = (Path(__file__).parent / "static" / "proxy.js").read_bytes()
HEAD = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)


def rewrite_css(sheet: bytes, prefix: str) -> bytes:
    return CSS_URL.sub(lambda m: m.group(1) + prefix.rstrip("/").encode() + b"/", sheet)


def rewrite_html(page: bytes, prefix: str, script_url: str) -> bytes:
    page = ROOT_LINK.sub(lambda m: m.group(1) + prefix.rstrip("/").encode() + b"/", page)
    tag = (f'<script src="{html.escape(script_url)}" data-perry-prefix="{html.escape(prefix.rstrip("/"))}">'
           f'</script>').encode()
    head = HEAD.search(page)
    at = head.end() if head else 0
    return page[:at] + tag + page[at:]


class Response(httputil.HTTPMessageDelegate):
    """Hands the workspace server's answer to the handler as it comes, with backpressure."""

    def __init__(self, on_headers: Callable[[httputil.ResponseStartLine, httputil.HTTPHeaders], None],
                 on_chunk: Callable[[bytes], Awaitable[None]]):
        self._on_headers, self._on_chunk = on_headers, on_chunk

    def headers_received(self, start_line, headers):
        self._on_headers(start_line, headers)

    def data_received(self, chunk):
        return self._on_chunk(chunk)


class Exchange:
    """One HTTP request and its response through a Bridge."""

    def __init__(self, bridge: "Direct | Bridge"):
        self.bridge = bridge
        self.conn = HTTP1Connection(bridge.stream, is_client=True, params=HTTP1ConnectionParameters(
            no_keep_alive=True, decompress=False, chunk_size=CHUNK, max_header_size=HEAD_LIMIT,
            max_body_size=2**63))

    async def send_head(self, method: str, path: str, headers: httputil.HTTPHeaders, has_body: bool) -> None:
        if not has_body and method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = "0"
        await self.conn.write_headers(httputil.RequestStartLine(method, path, "HTTP/1.1"), headers)

    def send(self, chunk: bytes) -> Awaitable[None]:
        return self.conn.write(chunk)

    async def respond(self, response: Response) -> None:
        self.conn.finish()
        try:
            await self.conn.read_response(response)
        finally:
            self.bridge.close()


async def relay_raw(client: IOStream, head: bytes, bridge: "Direct | Bridge") -> None:
    """Send ``head`` (a request's start line and headers) through the bridge and copy bytes both ways
    until both sides end: a WebSocket after its upgrade, whatever its subprotocol or extensions."""
    server = bridge.stream

    async def copy(src: IOStream, dst: IOStream) -> None:
        try:
            while True:
                await dst.write(await src.read_bytes(CHUNK, partial=True))
        except StreamClosedError:
            pass
        finally:
            dst.close()

    try:
        await server.write(head)
        await asyncio.gather(copy(client, server), copy(server, client))
    finally:
        bridge.close()
        client.close()


def request_head(method: str, path: str, headers: httputil.HTTPHeaders) -> bytes:
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.get_all()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
