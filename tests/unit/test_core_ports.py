"""core/ports.py on the in-memory engine: the tunnel's handshake, a closed port's error, a stale worker."""

from __future__ import annotations

import json

import pytest

from perry_jupyter.core.errors import InvalidInput
from perry_jupyter.core.ports import PortClosed, listening, open_tunnel, validate_port
from tests.fake_engine import TEST_PREFIX, FakeEngine, make_manager, workspace_labels

LISTED = [{"port": 3000, "addresses": ["0.0.0.0"], "pid": 7, "command": "node server.js"}]


class Workspace:
    """perry-worker's ports and connect, as the test sets them."""

    def __init__(self):
        self.stale_once = False
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, container, command, *, user, **_):
        self.calls.append((command, user))
        if command[:1] != ["perry-worker"]:
            return None
        if self.stale_once:
            self.stale_once = False
            return {"stdout": json.dumps({"error": {"code": "stale_worker", "message": "old"}}) + "\n", "exitCode": 3}
        if command[1] == "ports":
            return {"stdout": json.dumps({"ports": LISTED})}
        port = int(command[2])
        if port in [p["port"] for p in LISTED]:
            return {"stderr": "CONNECTED\n", "stdout": "HTTP/1.1 204 No Content\r\n\r\n"}
        return {"stderr": f"port {port}: Connection refused\n", "exitCode": 4}


@pytest.fixture
def setup(tmp_path):
    engine = FakeEngine()
    engine.add_container(f"{TEST_PREFIX}w", labels=workspace_labels("w"))
    inside = Workspace()
    engine.on_exec = inside
    return make_manager(tmp_path, engine), engine, inside


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
