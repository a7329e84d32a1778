"""Workspace terminals: Perry's terminal WebSocket against `docker exec -it` in a local pty.

    .venv/bin/python bench/terminal.py [--keys N] [--mb N] [--runs N]

A benchmark, not a test: it prints figures and asserts nothing. Against one real
workspace, served by a real `perry serve` subprocess, it measures

1. keystroke echo round-trip: N single characters (default 500) typed one at a time at
   a `cat` running in the terminal (`stty -echo -icanon`, so each character comes back
   from cat itself), p50 and p99;
2. output throughput: `head -c <MB> /dev/zero | base64` (default 50 MB in, ~67.6 MB of
   output), in MB/s of terminal output received;
3. open-to-prompt: from the first byte on the wire to bash's first prompt;

each through Perry (`/perry/terminal/{name}`: WebSocket -> the server's pty -> `docker exec
-it` -> the container's pty) and directly (`docker exec -it` on a pty of this process, the
same command line the server runs), with the ratios Perry/direct taken run by run. Both
clients are plain Python loops on this machine, and both sides have one pty on this host
and the same docker CLI, so the difference is Perry's share: the WebSocket, the JSON frames
and the server's event loop. A third side, the WebSocket floor, sends the same frames to a
bare tornado WebSocket that answers each keystroke at once: what the WebSocket round trip
alone costs here, the least any WebSocket terminal adds to the echo.

Every figure is the median of `--runs` runs (each side in turn in every run) with the
lowest and highest run.

Everything it makes is named `perry-bench-term-*` (the container, its volumes, the
network), uses SSH host ports 2690-2699 and a temporary state directory; all of it is
removed in a `finally`, with the server process. Objects of other prefixes are never
touched.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import requests
import websocket
from harness import Server, any_free_port, clean_up, now, open_engine, pct, say, table

PREFIX = "perry-bench-term-"
NETWORK = "perry-bench-term"
WORKSPACE = "bench"
CONTAINER = PREFIX + WORKSPACE
SSH_PORTS = (2690, 2699)
ROWS, COLS = 50, 200
PROMPT = "$ "
END = "@@END@@"
# The command line Perry's server runs for a terminal (perry_jupyter/terminals.py), minus
# its shell probe: the direct side runs the same docker exec.
EXEC = ["docker", "exec", "-it", "-u", "workspace", "-w", "/home/workspace",
        "-e", "TERM=xterm-256color", "-e", "LANG=C.UTF-8", "-e", "LC_ALL=C.UTF-8", CONTAINER, "bash", "-l"]


# ------------------------------------------------------------- terminals

class Terminal:
    """What the two sides have in common: send text, wait for text, count bytes."""

    received = 0

    def send(self, text: str) -> None:
        raise NotImplementedError

    def read(self, timeout: float) -> str:
        """Whatever output is there next ('' at the timeout)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def hang_up(self) -> None:
        """End what runs in the terminal: ^C stops the cat (it replaced the shell), `exit` a shell.

        Closing a terminal from outside leaves its processes running in the container
        (docker exec does not end an exec whose client went away), so end them from inside.
        """
        try:
            self.send("\x03")
            time.sleep(0.05)
            self.send("exit\r")
            deadline = now() + 5
            while now() < deadline:
                self.read(0.5)
        except (EOFError, OSError):
            pass

    def read_until(self, marker: str, timeout: float = 60.0) -> str:
        deadline = now() + timeout
        seen = ""
        while marker not in seen:
            left = deadline - now()
            if left <= 0:
                raise TimeoutError(f"no {marker!r} within {timeout:.0f} s; last output {seen[-200:]!r}")
            seen += self.read(left)
        return seen

    def drain(self, quiet: float = 0.3) -> None:
        while self.read(quiet):
            pass

    def start_cat(self) -> None:
        """Turn the shell into a `cat` that echoes each character itself, and wait until it does."""
        self.send("stty -echo -icanon min 1 time 0 && exec cat\r")
        self.drain()
        for _ in range(50):  # cat is ready when a probe comes back
            self.send("#")
            try:
                self.read_until("#", timeout=0.5)
                break
            except TimeoutError:
                continue
        else:
            raise RuntimeError("cat never echoed")
        self.drain()

    def echo_times(self, keys: int) -> list[float]:
        times = []
        for i in range(keys):
            ch = "abcdefghijklmnopqrstuvwxyz"[i % 26]
            t0 = now()
            self.send(ch)
            self.read_until(ch, timeout=10)
            times.append(now() - t0)
        return times

    def throughput(self, megabytes: int) -> tuple[int, float]:
        """Bytes of output and seconds for `head -c MB | base64` (the shell at its prompt)."""
        # The marker is typed split ('@@''END@@') so the echoed command line does not match it.
        start_count = self.received
        t0 = now()
        self.send(f"head -c {megabytes * 1_000_000} /dev/zero | base64; printf '%s\\n' '@@''END@@'\r")
        tail = ""
        while True:
            chunk = self.read(60)
            if not chunk:
                raise TimeoutError(f"the output stalled for 60 s after {self.received - start_count} bytes; "
                                   f"last output {tail!r}")
            tail += chunk
            if END in tail:
                break
            tail = tail[-len(END):]
        return self.received - start_count, now() - t0


class PerryTerminal(Terminal):
    """A terminal through Perry, as `perry shell` opens one: POST a terminal, attach its WebSocket."""

    def __init__(self, base_url: str, token: str):
        self.received = 0
        self.base_url, self.headers = base_url, {"Authorization": f"token {token}"}
        self.t_open = now()
        r = requests.post(f"{base_url}/perry/api/workspaces/{WORKSPACE}/terminals", headers=self.headers, timeout=30)
        r.raise_for_status()
        self.name = r.json()["name"]
        url = base_url.replace("http://", "ws://", 1) + f"/perry/terminal/{WORKSPACE}?terminal={self.name}"
        # As `perry shell` does: websocket-client's own UTF-8 check is pure Python, byte by byte.
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {token}"],
                                              suppress_origin=True, timeout=30, skip_utf8_validation=True)
        self.ws.send(json.dumps(["set_size", ROWS, COLS]))

    def send(self, text: str) -> None:
        self.ws.send(json.dumps(["stdin", text]))

    def read(self, timeout: float) -> str:
        deadline = now() + timeout
        while True:  # skip the frames that are not output (setup)
            self.ws.settimeout(max(deadline - now(), 0.001))
            try:
                frame = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                return ""
            except websocket.WebSocketConnectionClosedException:
                raise EOFError("the terminal WebSocket closed") from None
            message = json.loads(frame) if frame else None
            if not message:
                raise EOFError("the terminal WebSocket closed")
            if message[0] == "stdout":
                self.received += len(message[1].encode("utf-8"))
                return message[1]
            if message[0] == "disconnect":
                raise EOFError("the terminal ended")

    def close(self) -> None:
        self.hang_up()
        self.ws.shutdown()
        requests.delete(f"{self.base_url}/perry/api/workspaces/{WORKSPACE}/terminals/{self.name}",
                        headers=self.headers, timeout=30)


class DirectTerminal(Terminal):
    """`docker exec -it` on a pty of this process: what Perry replaces."""

    def __init__(self):
        self.received = 0
        self.t_open = now()
        pid, fd = pty.fork()
        if pid == 0:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
            os.execvp(EXEC[0], EXEC)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def read(self, timeout: float) -> str:
        readable, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not readable:
            return ""
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            raise EOFError("docker exec ended")
        self.received += len(data)
        return self._decoder.decode(data)

    def close(self) -> None:
        self.hang_up()
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.fd)


# ------------------------------------------------------ the WebSocket floor

# A WebSocket server that answers each terminado stdin frame with the stdout frame a terminal
# would send: the same client, framing, JSON and tornado loop as Perry's, with no pty, no
# docker and no Jupyter behind it. Its round trip is the least Perry's echo can add.
ECHO_SERVER = """
import asyncio, json, sys
import tornado.web, tornado.websocket
class Echo(tornado.websocket.WebSocketHandler):
    def open(self):
        self.set_nodelay(True)
        self.write_message(json.dumps(["setup", {}]))
    def on_message(self, message):
        command = json.loads(message)
        if command[0] == "stdin":
            self.write_message(json.dumps(["stdout", command[1]]))
async def main():
    tornado.web.Application([(r"/", Echo)]).listen(int(sys.argv[1]), "127.0.0.1")
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


class EchoServer:
    def __init__(self):
        self.port = any_free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(self.port)],
                                     stdout=subprocess.PIPE, text=True)
        self.proc.stdout.readline()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class FloorTerminal(PerryTerminal):
    """The floor's WebSocket, with PerryTerminal's client side."""

    def __init__(self, port: int):
        self.received = 0
        self.t_open = now()
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/", suppress_origin=True, timeout=30,
                                              skip_utf8_validation=True)

    def start_cat(self) -> None:
        self.drain(0.1)

    def close(self) -> None:
        self.ws.close()


# -------------------------------------------------------------------- main

def open_at_prompt(make) -> tuple[Terminal, float]:
    term = make()
    term.read_until(PROMPT, timeout=60)
    opened = now() - term.t_open
    term.drain()
    return term, opened


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """The median, with the lowest and highest in brackets."""
    return (f"{statistics.median(values) * scale:.{digits}f} "
            f"({min(values) * scale:.{digits}f}-{max(values) * scale:.{digits}f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=500, help="keystrokes to time per run (default 500)")
    parser.add_argument("--mb", type=int, default=50, help="MB of /dev/zero fed to base64 (default 50)")
    parser.add_argument("--runs", type=int, default=5,
                        help="runs, each side in turn in every run; figures are medians of the runs (default 5)")
    args = parser.parse_args()
    # A SIGTERM (timeout, CI) unwinds through the finally below, like ^C.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    client = open_engine(PREFIX, NETWORK)
    if client is None:
        return 2
    tmp = Path(tempfile.mkdtemp(prefix=PREFIX))
    server = Server(tmp / "state", tmp / "serve.log", prefix=PREFIX, network=NETWORK, ssh_ports=SSH_PORTS)
    terminals: list[Terminal] = []
    floor: EchoServer | None = None
    try:
        say("starting perry serve")
        server.start()
        say(f"creating workspace {WORKSPACE} ({CONTAINER})")
        server.session.post(f"{server.url}/workspaces", json={"name": WORKSPACE}, timeout=600).raise_for_status()
        floor = EchoServer()

        sides = {"perry": lambda: PerryTerminal(server.base, server.token), "direct": DirectTerminal,
                 "floor": lambda: FloorTerminal(floor.port)}
        # Per run and side: p50, p99 and mean echo, MB/s, open-to-prompt.
        runs: list[dict[str, dict[str, float]]] = []
        for run in range(1, args.runs + 1):
            figures: dict[str, dict[str, float]] = {side: {} for side in sides}
            for side, make in sides.items():
                say(f"run {run}/{args.runs}, {side}: open, then {args.keys} keystrokes at cat")
                if side == "floor":
                    term, opened = make(), 0.0
                else:
                    term, opened = open_at_prompt(make)
                terminals.append(term)
                term.start_cat()
                term.echo_times(20)  # warm-up
                echo = term.echo_times(args.keys)
                term.close()
                terminals.remove(term)
                figures[side].update(open=opened, p50=pct(echo, 50), p99=pct(echo, 99), mean=statistics.mean(echo))
            for side in ("perry", "direct"):
                say(f"run {run}/{args.runs}, {side}: throughput ({args.mb} MB through base64)")
                term, _ = open_at_prompt(sides[side])
                terminals.append(term)
                nbytes, seconds = term.throughput(args.mb)
                term.close()
                terminals.remove(term)
                figures[side]["mbps"] = nbytes / 1e6 / seconds
            runs.append(figures)

        def column(side: str, key: str) -> list[float]:
            return [r[side][key] for r in runs]

        def ratio(key: str, over: str = "direct") -> list[float]:
            return [r["perry"][key] / r[over][key] for r in runs]

        def extra(key: str) -> list[float]:
            return [r["perry"][key] - r["direct"][key] for r in runs]

        rows = []
        for key, label in (("p50", "echo p50"), ("p99", "echo p99"), ("mean", "echo mean")):
            rows.append([f"{label} (ms)", spread(column("perry", key), 1000, 3), spread(column("direct", key), 1000, 3),
                         spread(ratio(key)) + "x", spread(extra(key), 1000, 3),
                         spread(column("floor", key), 1000, 3)])
        rows.append(["throughput (MB/s)", spread(column("perry", "mbps"), digits=1),
                     spread(column("direct", "mbps"), digits=1), spread(ratio("mbps")) + "x", "", ""])
        rows.append(["open to prompt (ms)", spread(column("perry", "open"), 1000, 1),
                     spread(column("direct", "open"), 1000, 1), spread(ratio("open")) + "x",
                     spread(extra("open"), 1000, 1), ""])
        table(f"Workspace terminal: Perry WebSocket vs docker exec -it on a local pty "
              f"({args.runs} runs of {args.keys} keys and {args.mb} MB; median (min-max) of the runs)",
              ["", "perry", "direct", "perry/direct", "perry - direct", "WebSocket floor"], rows,
              note="echo: one character typed at cat until it comes back; throughput: terminal output\n"
                   "bytes received per second (pty CRLF included); ratios > 1x for times and < 1x for\n"
                   "MB/s are Perry's cost, taken run by run. perry = WebSocket + terminado pty + docker exec;\n"
                   "direct = docker exec on a pty of this process; WebSocket floor = the same client's\n"
                   "frames echoed by a bare tornado WebSocket (no pty, no docker, no Jupyter).")
        return 0
    finally:
        for term in terminals:
            with contextlib.suppress(Exception):  # a broken terminal must not stop the clean-up
                term.close()
        if floor is not None:
            with contextlib.suppress(Exception):
                floor.stop()
        if server.proc is not None:
            # Through Perry first, so that its state forgets the workspace too.
            with contextlib.suppress(requests.RequestException):
                server.session.delete(f"{server.url}/workspaces/{WORKSPACE}", timeout=120)
        clean_up(client, server, tmp, PREFIX, NETWORK)


if __name__ == "__main__":
    sys.exit(main())
