"""perry_worker's ports: the listing read from this machine's real /proc, and the relay with real sockets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

from perry_worker.ports import listening

WORKER = [sys.executable, "-m", "perry_worker"]


def test_listening_names_the_port_its_addresses_and_this_process():
    four = socket.create_server(("127.0.0.1", 0))
    port = four.getsockname()[1]
    six = socket.socket(socket.AF_INET6)
    try:
        six.bind(("::1", port))
        six.listen()
        has_six = True
    except OSError:  # no IPv6 loopback here
        has_six = False
    idle = socket.create_connection(("127.0.0.1", port))  # a connected socket is not a listening one
    try:
        found = {p["port"]: p for p in listening()}
        assert found[port]["pid"] == os.getpid()
        assert "python" in found[port]["command"]
        assert sorted(found[port]["addresses"]) == sorted(["127.0.0.1"] + (["::1"] if has_six else []))
        assert idle.getsockname()[1] not in found
    finally:
        for s in (idle, four, six):
            s.close()
    assert port not in {p["port"] for p in listening()}


def test_worker_ports_json():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        out = subprocess.run([*WORKER, "ports", "--json"], capture_output=True, text=True, check=True).stdout
    assert port in [p["port"] for p in json.loads(out)["ports"]]


def test_connect_relays_both_ways_and_passes_the_half_close_on():
    server = socket.create_server(("127.0.0.1", 0))
    received = []

    def answer():
        conn, _ = server.accept()
        data = b""
        while chunk := conn.recv(65536):  # until the relay passes the client's EOF on
            data += chunk
        received.append(data)
        conn.sendall(data.upper())
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        r = subprocess.run([*WORKER, "connect", str(server.getsockname()[1])], input=b"hello " * 50000,
                           capture_output=True, timeout=30)
    finally:
        server.close()
    assert r.returncode == 0
    assert r.stderr == b"CONNECTED\n"
    assert received == [b"hello " * 50000]
    assert r.stdout == b"HELLO " * 50000


def test_connect_to_a_closed_port_says_so_on_stderr():
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    r = subprocess.run([*WORKER, "connect", str(port)], input=b"", capture_output=True, timeout=30)
    assert r.returncode == 4 and r.stdout == b""
    assert r.stderr.decode().startswith(f"port {port}: ")
    assert "refused" in r.stderr.decode().lower()
