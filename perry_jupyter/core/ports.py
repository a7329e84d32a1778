"""What a workspace serves: its listening ports, and a tunnel into one of them.

The tunnel is `perry-worker connect PORT` run through the Docker engine's exec, its streams on
the engine's hijacked connection: it never routes to the container's IP, so it works the same
when the engine is on another machine.
"""

from __future__ import annotations

from typing import Any

from perry_worker import source_digest

from .engine import ExecSocket
from .errors import Conflict, InvalidInput, PerryError
from .names import HOME_DIR
from .worker import error_code, run_worker

CONNECTED = b"CONNECTED"


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


def open_tunnel(workspaces, name: str, port: int) -> ExecSocket:
    """A byte stream to 127.0.0.1:``port`` inside the workspace (blocking); PortClosed naming
    the ports that do listen when nothing answers there."""
    port = validate_port(port)
    ws = workspaces.get(name)
    if ws["status"] != "running":
        raise Conflict(f"workspace {name!r} is {ws['status']}, not running: `perry start {name}` first")
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
    engine = workspaces.engine
    with engine.errors(f"connecting to port {port} in workspace {name!r}"):
        return engine.exec_socket(workspaces.naming.container(name), ["perry-worker", "connect", str(port)],
                                  user="workspace",
                                  env={"HOME": HOME_DIR, "PERRY_WORKER_EXPECT": source_digest()})
