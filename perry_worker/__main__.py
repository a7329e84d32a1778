"""`perry-worker` command line: `--version`, `health`, and (later) agent session commands."""

import argparse
import json
import os
import socket
import sys
import time
from typing import Callable, Dict, List, Optional

from . import __version__

READY_FILE = "/run/perry/ready"
DOCKER_SOCKET = "/var/run/docker.sock"
SSH_ADDRESS = ("127.0.0.1", 22)


def dind_enabled() -> bool:
    return os.environ.get("PERRY_DIND", "1") != "0"


def check_sshd(address=SSH_ADDRESS, timeout: float = 1.0) -> bool:
    """True when sshd answers on the address with an SSH-2.0 banner."""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.settimeout(timeout)
            banner = b""
            while b"\n" not in banner and len(banner) < 256:
                chunk = sock.recv(256)
                if not chunk:
                    break
                banner += chunk
            ok = banner.startswith(b"SSH-2.0")
            if ok:
                # Identify ourselves before closing: sshd then logs one line, not two.
                try:
                    sock.sendall(b"SSH-2.0-perry-worker-health\r\n")
                except OSError:
                    pass
            return ok
    except OSError:
        return False


def check_docker(path: str = DOCKER_SOCKET, timeout: float = 1.0) -> bool:
    """True when the Docker engine on the unix socket answers GET /_ping with 200 OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = b""
            while b"\r\n" not in reply and len(reply) < 1024:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                reply += chunk
            status_line = reply.split(b"\r\n", 1)[0].split()
            return len(status_line) >= 2 and status_line[1] == b"200"
    except OSError:
        return False


def _pid1_started() -> Optional[float]:
    """When this PID namespace's init started (epoch seconds), or None if unknown."""
    try:
        with open("/proc/1/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of the line: starttime, in clock ticks since boot
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def check_ready(path: str = READY_FILE) -> bool:
    """True when the entrypoint wrote the ready file during this container start.

    /run survives a container restart: a file older than the container's init is stale
    (the entrypoint removes it, but a probe may come first).
    """
    try:
        written = os.stat(path).st_mtime
    except OSError:
        return False
    started = _pid1_started()
    return started is None or written >= started - 1.0


def health(ready_file: str = READY_FILE) -> Dict[str, object]:
    sshd = check_sshd()
    docker = check_docker() if dind_enabled() else None
    ready = check_ready(ready_file)
    return {
        "ok": bool(sshd and ready and docker is not False),
        "sshd": sshd,
        "docker": docker,
        "ready": ready,
        "version": __version__,
    }


def wait_for_health(
    seconds: float,
    probe: Callable[[], Dict[str, object]] = health,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Dict[str, object]:
    """Poll `probe` until it says ok or `seconds` have passed; return the last report."""
    deadline = clock() + max(0.0, seconds)
    interval = 0.05
    report = probe()
    while not report["ok"]:
        left = deadline - clock()
        if left <= 0:
            break
        sleep(min(interval, left))
        interval = min(interval * 1.5, 0.25)
        report = probe()
    return report


def cmd_health(args: argparse.Namespace) -> int:
    report = wait_for_health(args.wait) if args.wait else health()
    if args.json:
        print(json.dumps(report))
    else:
        def word(value: object) -> str:
            return "n/a" if value is None else ("yes" if value else "no")

        print("ok: %s" % word(report["ok"]))
        for key in ("sshd", "docker", "ready"):
            print("%s: %s" % (key, word(report[key])))
    return 0 if report["ok"] else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perry-worker", description="Perry's helper inside a workspace container."
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("health", help="report whether sshd, docker and the workspace are up")
    p.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS",
        help="poll until healthy or SECONDS have passed",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_health)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
