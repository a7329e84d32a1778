"""Workspace terminals: Perry's terminal WebSocket against `docker exec -it` in a local pty.

    .venv/bin/python bench/terminal.py [--keys N] [--mb N] [--rounds N]

A benchmark, not a test: it prints figures and asserts nothing. Against one real
workspace, served by a real `perry serve` subprocess, it measures

1. keystroke echo round-trip: N single characters (default 500) typed one at a time at
   a `cat` running in the terminal (`stty -echo -icanon`, so each character comes back
   from cat itself), p50 and p99;
2. output throughput: `head -c <MB> /dev/zero | base64` (default 50 MB in, ~67.6 MB of
   output), in MB/s of terminal output received;
3. open-to-prompt: from the first byte on the wire to bash's first prompt;

each through Perry (`/perry/terminal/{name}`: WebSocket -> terminado pty -> `docker exec
-it` -> the container's pty) and directly (`docker exec -it` on a pty of this process,
the same command line the server runs), with the ratios Perry/direct. Both clients are
plain Python loops on this machine, so the difference is Perry's share: the WebSocket,
the JSON frames, terminado's extra pty and the server's event loop.

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
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

import requests
import websocket
from harness import Server, clean_up, now, open_engine, pct, say, table

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


# -------------------------------------------------------------------- main

def open_at_prompt(make) -> tuple[Terminal, float]:
    term = make()
    term.read_until(PROMPT, timeout=60)
    opened = now() - term.t_open
    term.drain()
    return term, opened


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=500, help="keystrokes to time (default 500)")
    parser.add_argument("--mb", type=int, default=50, help="MB of /dev/zero fed to base64 (default 50)")
    parser.add_argument("--rounds", type=int, default=1, help="throughput runs per side; the best counts")
    args = parser.parse_args()
    # A SIGTERM (timeout, CI) unwinds through the finally below, like ^C.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    client = open_engine(PREFIX, NETWORK)
    if client is None:
        return 2
    tmp = Path(tempfile.mkdtemp(prefix=PREFIX))
    server = Server(tmp / "state", tmp / "serve.log", prefix=PREFIX, network=NETWORK, ssh_ports=SSH_PORTS)
    terminals: list[Terminal] = []
    try:
        say("starting perry serve")
        server.start()
        say(f"creating workspace {WORKSPACE} ({CONTAINER})")
        server.session.post(f"{server.url}/workspaces", json={"name": WORKSPACE}, timeout=600).raise_for_status()

        def perry() -> Terminal:
            return PerryTerminal(server.base, server.token)

        sides = {"perry": perry, "direct": DirectTerminal}
        results: dict[str, dict] = {side: {} for side in sides}

        for side, make in sides.items():
            say(f"{side}: open, then {args.keys} keystrokes at cat")
            term, opened = open_at_prompt(make)
            terminals.append(term)
            results[side]["open"] = opened
            term.start_cat()
            term.echo_times(20)  # warm-up
            results[side]["echo"] = term.echo_times(args.keys)
            term.close()
            terminals.remove(term)

        for side, make in sides.items():
            best = None
            for n in range(args.rounds):
                say(f"{side}: throughput run {n + 1}/{args.rounds} ({args.mb} MB through base64)")
                term, _ = open_at_prompt(make)
                terminals.append(term)
                nbytes, seconds = term.throughput(args.mb)
                term.close()
                terminals.remove(term)
                if best is None or nbytes / seconds > best[0] / best[1]:
                    best = (nbytes, seconds)
            results[side]["bytes"], results[side]["seconds"] = best

        p, d = results["perry"], results["direct"]

        def ms(x: float) -> str:
            return f"{x * 1000:.2f}"

        rows = []
        for label, q in (("p50", 50), ("p99", 99)):
            a, b = pct(p["echo"], q), pct(d["echo"], q)
            rows.append([f"echo {label} (ms)", ms(a), ms(b), f"{a / b:.2f}x"])
        a, b = sum(p["echo"]) / len(p["echo"]), sum(d["echo"]) / len(d["echo"])
        rows.append(["echo mean (ms)", ms(a), ms(b), f"{a / b:.2f}x"])
        rows.append(["echo max (ms)", ms(max(p["echo"])), ms(max(d["echo"])),
                     f"{max(p['echo']) / max(d['echo']):.2f}x"])
        mbps = {s: results[s]["bytes"] / 1e6 / results[s]["seconds"] for s in results}
        rows.append(["throughput (MB/s)", f"{mbps['perry']:.1f}", f"{mbps['direct']:.1f}",
                     f"{mbps['perry'] / mbps['direct']:.2f}x"])
        rows.append(["  output (MB) / time (s)", f"{p['bytes'] / 1e6:.1f} / {p['seconds']:.2f}",
                     f"{d['bytes'] / 1e6:.1f} / {d['seconds']:.2f}", ""])
        rows.append(["open to prompt (ms)", ms(p["open"]), ms(d["open"]), f"{p['open'] / d['open']:.2f}x"])
        table(f"Workspace terminal: Perry WebSocket vs docker exec -it on a local pty "
              f"({args.keys} keys, {args.mb} MB)",
              ["", "perry", "direct", "perry/direct"], rows,
              note="echo: one character typed at cat until it comes back; throughput: terminal output\n"
                   "bytes received per second (pty CRLF included); ratios > 1x for times and < 1x for\n"
                   "MB/s are Perry's cost. perry = WebSocket + terminado pty + docker exec; direct =\n"
                   "docker exec on a pty of this process.")
        return 0
    finally:
        for term in terminals:
            with contextlib.suppress(Exception):  # a broken terminal must not stop the clean-up
                term.close()
        if server.proc is not None:
            # Through Perry first, so that its state forgets the workspace too.
            with contextlib.suppress(requests.RequestException):
                server.session.delete(f"{server.url}/workspaces/{WORKSPACE}", timeout=120)
        clean_up(client, server, tmp, PREFIX, NETWORK)


if __name__ == "__main__":
    sys.exit(main())
