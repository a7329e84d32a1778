"""The workspace's TCP ports: which ones listen (and who owns them), and a relay into one.

``listening()`` reads /proc/net/tcp and /proc/net/tcp6 of the container's network namespace
and finds each socket's process through /proc/PID/fd; run as root it sees every process,
as a user only that user's (the others are ``"unknown"``).

``relay(port)`` connects to 127.0.0.1:PORT (or [::1]:PORT) and copies stdin to the socket and
the socket to stdout, so the server reaches the port through `docker exec` alone, wherever the
engine runs. stderr is the control channel: one ``CONNECTED`` line once connected, or one line
saying why not; the bytes on stdout are the port's and nothing else.
"""

import os
import socket
import sys
import threading
from typing import Dict, List, Optional

LISTEN = "0A"
PERRY_SSH_PORT = 22  # the workspace's own sshd, Perry's way in: not something it serves
DOCKER_DNS = "127.0.0.11"  # the engine's resolver on a user-defined network
CONNECTED = b"CONNECTED\n"
CHUNK = 256 * 1024


def _address(hex_ip: str) -> str:
    raw = bytes.fromhex(hex_ip)
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(words) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, words)


def _sockets(proc: str = "/proc") -> List[Dict[str, object]]:
    """Listening sockets: {port, address, inode}."""
    found = []
    for table in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc, "net", table)) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN:
                continue
            hex_ip, hex_port = fields[1].split(":")
            found.append({"port": int(hex_port, 16), "address": _address(hex_ip), "inode": fields[9]})
    return found


def _owners(proc: str = "/proc") -> Dict[str, int]:
    """Socket inode -> pid, for every process whose fds this user may read."""
    owners = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        fd_dir = os.path.join(proc, entry, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                owners.setdefault(target[8:-1], int(entry))
    return owners


def _command(pid: int, proc: str = "/proc") -> Optional[str]:
    try:
        with open(os.path.join(proc, str(pid), "cmdline"), "rb") as f:
            argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None
    return " ".join(argv)[:300] or None


def listening(proc: str = "/proc") -> List[Dict[str, object]]:
    """``[{port, addresses, pid, command}]`` sorted by port; pid and command are "unknown" when
    the owning process cannot be seen. Perry's own sshd is left out."""
    owners = _owners(proc)
    ports: Dict[int, Dict[str, object]] = {}
    for s in _sockets(proc):
        if s["port"] == PERRY_SSH_PORT or s["address"] == DOCKER_DNS:
            continue
        entry = ports.setdefault(s["port"], {"port": s["port"], "addresses": [], "pid": "unknown",
                                             "command": "unknown"})
        if s["address"] not in entry["addresses"]:
            entry["addresses"].append(s["address"])
        pid = owners.get(s["inode"])
        if pid is not None and entry["pid"] == "unknown":
            entry["pid"] = pid
            entry["command"] = _command(pid, proc) or "unknown"
    return [ports[p] for p in sorted(ports)]


def _connect(port: int) -> socket.socket:
    error: Optional[OSError] = None
    for host in ("127.0.0.1", "::1"):  # dev servers listen on either loopback
        try:
            return socket.create_connection((host, port), timeout=5)
        except OSError as e:
            error = error or e
    raise error or OSError("no loopback address")


def relay(port: int) -> int:
    """Copy stdin to 127.0.0.1:PORT and back until the port's side ends; 4 when nothing answers."""
    try:
        sock = _connect(port)
    except OSError as e:
        os.write(2, ("port %d: %s\n" % (port, e.strerror or e)).encode())
        return 4
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    os.write(2, CONNECTED)

    def upstream() -> None:
        try:
            while True:
                data = os.read(0, CHUNK)
                if not data:
                    break
                sock.sendall(data)
            # The client has sent everything: pass its half-close on, keep reading the answer.
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=upstream, daemon=True).start()
    try:
        while True:
            data = sock.recv(CHUNK)
            if not data:
                break
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]
    except OSError:
        pass
    sys.stdout.flush()
    return 0
