"""What a workspace serves: its listening ports, and a connection to one of them.

Two routes, one decided here and invisible past here (the caller gets a byte stream either way):
- the tunnel: `perry-worker connect PORT` run through the Docker engine's exec, its streams on
  the engine's hijacked connection. It never routes to the container's IP, so it works when the
  engine is on another machine, and reaches servers listening on 127.0.0.1 only. Each one costs
  an exec (tens of ms) and its bytes pass through the engine (bench/README.md).
- straight to the container's address, when that can work: the engine is on this machine (a
  unix socket), the port's socket listens on every address (0.0.0.0 or ::) and the connect
  succeeds. Anything else (a loopback-only server, a remote engine, a refused connect) takes
  the tunnel.
What the routing needs (the ports' addresses, the container's) is kept a few seconds per
workspace, so most connections cost no exec at all.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from perry_worker import source_digest

from .engine import ExecSocket
from .errors import Conflict, InvalidInput, PerryError
from .names import HOME_DIR
from .worker import error_code, run_worker

CONNECTED = b"CONNECTED"
WILDCARD = {"0.0.0.0", "::"}
ROUTE_SECONDS = 5.0  # how long a workspace's listening addresses are trusted for routing
CONNECT_SECONDS = 0.5  # a local container answers a connect at once, or refuses it


class PortClosed(PerryError):
    code = "port_closed"
    status = 502

    def __init__(self, message: str, open_ports: list[int] | None):
        super().__init__(message)
        self.open_ports = open_ports

    def to_json(self) -> dict:
        body = super().to_json()
        body["error"]["openPorts"] = self.open_ports
        return body


def validate_port(port: Any) -> int:
    try:
        number = int(port)
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= 65535 or str(port) != str(number):
        raise InvalidInput(f"port must be a TCP port number from 1 to 65535, not {str(port)[:20]!r}")
    return number


def listening(workspaces, name: str) -> list[dict[str, Any]]:
    """``[{port, addresses, pid, command}]``; as root, so every process's sockets are seen."""
    return run_worker(workspaces, name, "ports", user="root")["ports"]


def ports(workspaces, name: str) -> list[dict[str, Any]]:
    """What GET .../ports lists: the listening ports, and those the project declares (its
    devcontainer.json's forwardPorts) whether or not something listens there yet; ``declared``
    and ``listening`` say which is which. Both open through the proxy alike."""
    declared = workspaces.get(name).get("declaredPorts") or []
    found = [{**p, "declared": p["port"] in declared, "listening": True} for p in listening(workspaces, name)]
    seen = {p["port"] for p in found}
    found += [{"port": port, "addresses": [], "pid": None, "command": None, "declared": True, "listening": False}
              for port in declared if port not in seen]
    return sorted(found, key=lambda p: p["port"])


class Dialed:
    """A TCP connection straight to the workspace's port: a plain socket, no engine framing."""

    framed = False
    stdout_before = b""

    def __init__(self, sock: socket.socket):
        self.socket = sock

    def close(self) -> None:
        self.socket.close()


@dataclass
class Route:
    expires: float
    addresses: list[str]  # the container's, on its networks
    wildcard: set[int]  # ports listening on every address
    listed: set[int]  # every listening port


_routes: dict[str, Route] = {}
_routes_lock = threading.Lock()


def open_tunnel(workspaces, name: str, port: int) -> "ExecSocket | Dialed":
    """A byte stream to ``port`` inside the workspace (blocking): straight to the container
    where that can work, else 127.0.0.1:``port`` through the engine; PortClosed naming the ports
    that do listen when nothing answers there."""
    port = validate_port(port)
    ws = workspaces.get(name)
    if ws["status"] != "running":
        raise Conflict(f"workspace {name!r} is {ws['status']}, not running: `perry start {name}` first")
    dialed = _dial(workspaces, name, port)
    if dialed is not None:
        return dialed
    for attempt in (1, 2):
        tunnel = _connect(workspaces, name, port)
        line = tunnel.read_stderr_line()
        if line == CONNECTED:
            return tunnel
        tunnel.close()
        if line is None and attempt == 1 and error_code(tunnel.stdout_before.decode("utf-8", "replace")) == "stale_worker":
            workspaces.put_worker(name)
            continue
        break
    reason = (line or tunnel.stdout_before or b"the relay ended").decode("utf-8", "replace").strip()
    raise closed(workspaces, name, port, reason)


def _dial(workspaces, name: str, port: int) -> Dialed | None:
    """The direct route, or None when it does not apply (the tunnel's case)."""
    engine = workspaces.engine_of(name)
    if not engine.local:
        return None
    container = workspaces.naming.container(name)
    with _routes_lock:
        route = _routes.get(container)
    if route is None or route.expires < time.monotonic() or port not in route.listed:
        try:
            route = _route(workspaces, name, container)
        except PerryError:
            return None
    if port not in route.wildcard:
        return None
    for address in route.addresses:
        try:
            sock = socket.create_connection((address, port), timeout=CONNECT_SECONDS)
        except OSError:
            continue
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Dialed(sock)
    with _routes_lock:  # what was known is stale (the server moved to 127.0.0.1, or ended)
        _routes.pop(container, None)
    return None


def _route(workspaces, name: str, container: str) -> Route:
    ports = listening(workspaces, name)
    engine = workspaces.engine_of(name)
    with engine.errors(f"inspecting workspace {name!r}"):
        info = engine.container(container) or {}
    route = Route(time.monotonic() + ROUTE_SECONDS, info.get("addresses") or [],
                  {p["port"] for p in ports if WILDCARD & set(p["addresses"])}, {p["port"] for p in ports})
    with _routes_lock:
        _routes[container] = route
    return route


def closed(workspaces, name: str, port: int, reason: str) -> PortClosed:
    try:
        open_ports = [p["port"] for p in listening(workspaces, name)]
    except PerryError:
        open_ports = None
    listed = ("nothing listens on TCP there" if open_ports == [] else
              "the ports that listen are unknown" if open_ports is None else
              "listening: " + ", ".join(str(p) for p in open_ports))
    return PortClosed(f"nothing answers on port {port} in workspace {name!r} ({reason}); {listed}", open_ports)


def _connect(workspaces, name: str, port: int) -> ExecSocket:
    engine = workspaces.engine_of(name)
    with engine.errors(f"connecting to port {port} in workspace {name!r}"):
        return engine.exec_socket(workspaces.naming.container(name), ["perry-worker", "connect", str(port)],
                                  user="workspace",
                                  env={"HOME": HOME_DIR, "PERRY_WORKER_EXPECT": source_digest()})
