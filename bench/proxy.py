"""A 50 MB download from a workspace's dev server: through Perry's proxy against inside the workspace.

    .venv/bin/python bench/proxy.py [--mb 50] [--rounds 7]

A benchmark, not a test: it prints figures and asserts nothing. One real workspace, made
through a real `perry serve`, runs `python3 -m http.server` on a file of MB megabytes. The
same curl command line downloads it (to /dev/null) in each way, ROUNDS times:

1. inside: `docker exec` runs curl in the workspace against 127.0.0.1 (the download from the
   workspace to itself). Two figures: curl's own time (the download alone), and the wall time
   of the whole `docker exec` (what the plain Docker way costs from this machine);
2. docker exec stdout: the same curl inside, its output carried to this machine on `docker
   exec`'s stdout (the plain Docker way to get the bytes out);
3. proxy: curl on this machine through `/perry/proxy/{name}/PORT/` (token auth), Jupyter's
   handler, on each of its two routes (core/ports.py): "direct", a server listening on
   0.0.0.0 (port 8001), connected to at the container's address; "tunnel", the same server
   on 127.0.0.1 only (port 8000), one `docker exec perry-worker connect` per request, the
   bytes on the engine's stream;
4. forward: curl on this machine through `perry forward`'s local port (a WebSocket to the
   server, then the same two routes).

It prints medians with their spread (min-max) and the speed ratios against inside. The
issue's target: the proxy at >= 0.5x the speed of the download inside.

Everything it makes is named `perry-bench-proxy-*` (the container, its volumes, the network),
uses SSH host ports 2680-2689 and a temporary state directory; all of it is removed in a
`finally`, with the server process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import VENV_BIN, Server, any_free_port, clean_up, clean_up_on_signals, now, open_engine, say, table

PREFIX = "perry-bench-proxy-"
NETWORK = "perry-bench-proxy"
WORKSPACE = "bench"
CONTAINER = PREFIX + WORKSPACE
SSH_PORTS = (2680, 2689)
PORT = 8000  # the server on 127.0.0.1: the tunnel
WILD_PORT = 8001  # the same files served on 0.0.0.0: the direct route
CURL = ["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{time_total} %{size_download}"]


def curl_time(argv: list[str], size: int) -> tuple[float, float]:
    """(curl's own seconds, the wall seconds of argv) of one run that must fetch ``size`` bytes."""
    t0 = now()
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    wall = now() - t0
    if int(float(out[1])) != size:
        raise RuntimeError(f"{argv} fetched {out[1]} bytes, not {size}")
    return float(out[0]), wall


def piped_time(argv: list[str], size: int) -> float:
    t0 = now()
    got = 0
    with subprocess.Popen(argv, stdout=subprocess.PIPE) as proc:
        while chunk := proc.stdout.read(1 << 20):
            got += len(chunk)
    wall = now() - t0
    if got != size:
        raise RuntimeError(f"{argv} carried {got} bytes, not {size}")
    return wall


def summary(values: list[float], size: int) -> list[str]:
    mb = size / 1e6
    return [f"{statistics.median(values) * 1000:.0f}", f"{min(values) * 1000:.0f}-{max(values) * 1000:.0f}",
            f"{mb / statistics.median(values):.0f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=50, help="size of the download (default 50)")
    parser.add_argument("--rounds", type=int, default=7, help="downloads per way (default 7)")
    args = parser.parse_args()
    size = args.mb * 1024 * 1024

    client = open_engine(PREFIX, NETWORK)
    if client is None:
        return 1
    clean_up_on_signals()
    tmp = Path(tempfile.mkdtemp(prefix="perry-bench-proxy-"))
    server = Server(tmp / "state", tmp / "serve.log", prefix=PREFIX, network=NETWORK, ssh_ports=SSH_PORTS)
    forwards: list[subprocess.Popen] = []
    try:
        say("starting perry serve")
        server.start()
        say(f"creating workspace {WORKSPACE}")
        r = server.session.post(f"{server.url}/workspaces", json={"name": WORKSPACE}, timeout=600)
        r.raise_for_status()
        subprocess.run(["docker", "exec", "-u", "workspace", "-w", "/home/workspace", CONTAINER, "sh", "-c",
                        f"mkdir -p site && head -c {size} /dev/urandom > site/big.bin"], check=True)
        for port, bind in ((PORT, "127.0.0.1"), (WILD_PORT, "0.0.0.0")):
            subprocess.run(["docker", "exec", "-d", "-u", "workspace", "-w", "/home/workspace/site", CONTAINER,
                            "python3", "-m", "http.server", str(port), "--bind", bind], check=True)
        inside_url = f"http://127.0.0.1:{PORT}/big.bin"
        deadline = time.monotonic() + 30
        while any(subprocess.run(["docker", "exec", CONTAINER, "curl", "-s", "-f", "-o", "/dev/null", url]).returncode
                  for url in (inside_url, f"http://127.0.0.1:{WILD_PORT}/big.bin")):
            if time.monotonic() > deadline:
                raise RuntimeError("the dev server did not answer")
            time.sleep(0.2)

        env = {**os.environ, "PERRY_URL": server.base, "PERRY_TOKEN": server.token}
        locals_ = {}
        forwards = []
        for port in (PORT, WILD_PORT):
            locals_[port] = any_free_port()
            forwards.append(subprocess.Popen([str(VENV_BIN / "perry"), "forward", WORKSPACE, str(port), "--local",
                                              str(locals_[port])], env=env, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True))
            say(forwards[-1].stdout.readline().strip())

        inside_argv = ["docker", "exec", "-u", "workspace", CONTAINER, *CURL, inside_url]
        piped_argv = ["docker", "exec", "-u", "workspace", CONTAINER, "curl", "-s", "-f", inside_url]
        ways = {}
        for route, port in (("direct", WILD_PORT), ("tunnel", PORT)):
            ways[f"proxy {route}"] = [*CURL, "-H", f"Authorization: token {server.token}",
                                      f"{server.base}/perry/proxy/{WORKSPACE}/{port}/big.bin"]
            ways[f"forward {route}"] = [*CURL, f"http://127.0.0.1:{locals_[port]}/big.bin"]
        runs: dict[str, list[float]] = {k: [] for k in ("inside", "inside+exec", "piped", *ways)}
        # One warm-up each, then the rounds interleaved so a busy moment of the machine hits every way.
        for argv in (inside_argv, *ways.values()):
            curl_time(argv, size)
        for i in range(args.rounds):
            own, wall = curl_time(inside_argv, size)
            runs["inside"].append(own)
            runs["inside+exec"].append(wall)
            runs["piped"].append(piped_time(piped_argv, size))
            for way, argv in ways.items():
                runs[way].append(curl_time(argv, size)[0])
            say(f"round {i + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1] * 1000:.0f} ms" for k, v in runs.items()))

        inside = statistics.median(runs["inside"])
        labels = {"inside": "inside (curl's own time)", "inside+exec": "inside, wall time of the docker exec",
                  "piped": "docker exec stdout to this machine",
                  "proxy direct": "/perry/proxy, direct (server on 0.0.0.0)",
                  "proxy tunnel": "/perry/proxy, tunnel (server on 127.0.0.1)",
                  "forward direct": "perry forward, direct", "forward tunnel": "perry forward, tunnel"}
        rows = [[labels[k], *summary(v, size), f"{inside / statistics.median(v):.2f}x"] for k, v in runs.items()]
        table(f"{args.mb} MB download, {args.rounds} rounds", ["way", "median ms", "min-max ms", "MB/s", "speed vs inside"],
              rows, note="speed vs inside: the median time inside divided by this way's median time (1.00x = as fast)")
        for route in ("direct", "tunnel"):
            proxy = statistics.median(runs[f"proxy {route}"])
            print(f"\nproxy ({route})/inside speed ratio: {inside / proxy:.2f}x (target >= 0.5x); against the wall "
                  f"time of the docker exec: {statistics.median(runs['inside+exec']) / proxy:.2f}x; against the same "
                  f"bytes on docker exec's stdout: {statistics.median(runs['piped']) / proxy:.2f}x")
        return 0
    finally:
        for forward in forwards:
            forward.send_signal(2)
            try:
                forward.wait(10)
            except subprocess.TimeoutExpired:
                forward.kill()
        clean_up(client, server, tmp, PREFIX, NETWORK)


if __name__ == "__main__":
    sys.exit(main())
