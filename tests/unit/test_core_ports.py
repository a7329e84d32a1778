"""core/ports.py on the in-memory engine: the tunnel's handshake, a closed port's error, a stale worker,
and which route a connection takes (straight to the container's address, or the tunnel)."""

from __future__ import annotations

import json
import socket

import pytest

from perry_jupyter.core import ports
from perry_jupyter.core.errors import InvalidInput
from perry_jupyter.core.ports import Dialed, PortClosed, listening, open_tunnel, validate_port
from tests.fake_engine import TEST_PREFIX, FakeEngine, make_manager, workspace_labels

LISTED = [{"port": 3000, "addresses": ["0.0.0.0"], "pid": 7, "command": "node server.js"}]


class Workspace:
    """perry-worker's ports and connect, as the test sets them."""

    def __init__(self):
        self.stale_once = False
        self.listed = LISTED
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, container, command, *, user, **_):
        self.calls.append((command, user))
        if command[:1] != ["perry-worker"]:
            return None
        if self.stale_once:
            self.stale_once = False
            return {"stdout": json.dumps({"error": {"code": "stale_worker", "message": "old"}}) + "\n", "exitCode": 3}
        if command[1] == "ports":
            return {"stdout": json.dumps({"ports": self.listed})}
        port = int(command[2])
        if port in [p["port"] for p in self.listed]:
            return {"stderr": "CONNECTED\n", "stdout": "HTTP/1.1 204 No Content\r\n\r\n"}
        return {"stderr": f"port {port}: Connection refused\n", "exitCode": 4}


@pytest.fixture
def setup(tmp_path):
    engine = FakeEngine()
    engine.add_container(f"{TEST_PREFIX}w", labels=workspace_labels("w"))
    inside = Workspace()
    engine.on_exec = inside
    ports._routes.clear()
    return make_manager(tmp_path, engine), engine, inside


@pytest.fixture
def local_server():
    """A TCP server on 127.0.0.1 standing for the container's address on a local engine."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server, server.getsockname()[1]
    server.close()


def on_a_local_engine(engine, inside, port: int, address: str) -> None:
    engine.local = True
    engine._find(f"{TEST_PREFIX}w")["addresses"] = ["127.0.0.1"]
    inside.listed = [{"port": port, "addresses": [address], "pid": 7, "command": "node server.js"}]


def connects(inside) -> list[list[str]]:
    return [c for c, _ in inside.calls if c[:2] == ["perry-worker", "connect"]]


def test_a_port_on_every_address_of_a_local_engines_container_is_connected_to_straight(setup, local_server):
    workspaces, engine, inside = setup
    server, port = local_server
    on_a_local_engine(engine, inside, port, "0.0.0.0")
    for _ in range(3):
        dialed = open_tunnel(workspaces, "w", port)
        assert isinstance(dialed, Dialed)
        accepted, _ = server.accept()
        dialed.socket.sendall(b"ping")
        assert accepted.recv(4) == b"ping"
        accepted.close()
        dialed.close()
    assert connects(inside) == []
    # The listing that chose the route is kept: one exec for the three connections.
    assert [c for c, _ in inside.calls if c[:2] == ["perry-worker", "ports"]] == [["perry-worker", "ports", "--json"]]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_a_loopback_only_port_takes_the_tunnel(setup, local_server, address):
    workspaces, engine, inside = setup
    _, port = local_server
    on_a_local_engine(engine, inside, port, address)
    assert not isinstance(open_tunnel(workspaces, "w", port), Dialed)
    assert connects(inside) == [["perry-worker", "connect", str(port)]]


def test_a_refused_connect_takes_the_tunnel(setup, local_server):
    workspaces, engine, inside = setup
    server, port = local_server
    server.close()  # the listing said it listens; the connect is refused
    on_a_local_engine(engine, inside, port, "::")
    assert not isinstance(open_tunnel(workspaces, "w", port), Dialed)
    assert connects(inside) == [["perry-worker", "connect", str(port)]]


def test_a_remote_engine_takes_the_tunnel_without_a_listing(setup, local_server):
    workspaces, engine, inside = setup
    _, port = local_server
    on_a_local_engine(engine, inside, port, "0.0.0.0")
    engine.local = False
    assert not isinstance(open_tunnel(workspaces, "w", port), Dialed)
    assert [c for c, _ in inside.calls if c[1] == "ports"] == []


def test_a_tunnel_is_the_ports_bytes_after_the_handshake(setup):
    workspaces, engine, inside = setup
    tunnel = open_tunnel(workspaces, "w", 3000)
    assert tunnel.recv() == b"HTTP/1.1 204 No Content\r\n\r\n"
    command, user = inside.calls[-1]
    assert command == ["perry-worker", "connect", "3000"] and user == "workspace"


def test_a_closed_port_names_the_ports_that_listen(setup):
    workspaces, engine, inside = setup
    with pytest.raises(PortClosed) as closed:
        open_tunnel(workspaces, "w", 8001)
    body = closed.value.to_json()["error"]
    assert closed.value.status == 502 and body["code"] == "port_closed" and body["openPorts"] == [3000]
    assert "port 8001" in body["message"] and "Connection refused" in body["message"]
    assert "listening: 3000" in body["message"]
    # The listing runs as root, so every process's sockets are seen.
    assert (["perry-worker", "ports", "--json"], "root") in inside.calls
    assert listening(workspaces, "w") == LISTED


def test_a_stale_worker_is_replaced_and_the_tunnel_opened(setup):
    workspaces, engine, inside = setup
    inside.stale_once = True
    tunnel = open_tunnel(workspaces, "w", 3000)
    assert tunnel.recv().startswith(b"HTTP/1.1 204")
    assert engine.archives and engine.archives[-1][1] == "/"  # the worker was copied in


@pytest.mark.parametrize("bad", ["0", "65536", "http", "", "80a", " 80", "-1", None])
def test_a_bad_port_is_refused_before_anything_runs(setup, bad):
    with pytest.raises(InvalidInput, match="port must be a TCP port number"):
        validate_port(bad)


def test_a_good_port_is_a_number():
    assert validate_port("4096") == 4096 and validate_port(1) == 1
