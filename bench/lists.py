"""`GET /workspaces` under load and the server at scale, against one Docker list call.

    .venv/bin/python bench/lists.py [--sizes 50,200] [--repeat 3] [--seconds 3] [--running 0]

A benchmark, not a test: it prints figures and asserts nothing. For each size N it makes N
labelled workspace containers of the workspace image that never start (what Perry adopts as
stopped workspaces: cheap, so 200 fit on a small machine), of which ``--running`` run a sleep
instead (adopted as running), then, ``--repeat`` times:

1. starts a real ``perry serve`` (start-up to its first answer includes reconciling the N);
2. times one Docker list call (``api.containers``, the labels Perry asks for) as the baseline;
3. times ``GET /perry/api/workspaces`` with 1, 10 and 20 concurrent clients (keep-alive
   connections, each client a thread of its own in one of up to 4 client processes), for
   ``--seconds`` each: p50, p99 and requests/s;
4. reads the server's memory (RSS) and, idle for ``--idle`` seconds after the load, its CPU
   (with ``--listeners``: an events WebSocket open on each running workspace meanwhile, and
   measured once the usage sampler has gone to sleep, a minute after the last list).

Jupyter's own ``GET /api/status`` (authenticated, no Perry code) with 20 clients is measured too:
the most requests/s any route of this server can answer on the machine at that moment. So is
Jupyter Server's own start, side by side with each run's: a bare ServerApp (no extension at all)
and ``jupyter server`` as installed (every enabled extension but Perry's), each to its first authenticated
``/api/status``.

Each figure is the median of the repeats with their range. Which Perry runs is the one
``perry_jupyter`` imports (PYTHONPATH): run it once on each side of a change. Everything it makes
is named ``perry-bench-lists-*`` and is removed in a ``finally``; nothing else is touched.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from harness import (
    IMAGE,
    VENV_BIN,
    Server,
    any_free_port,
    clean_up,
    clean_up_on_signals,
    now,
    open_engine,
    pct,
    say,
    table,
)

from perry_jupyter.core.names import LABEL_CREATED, LABEL_DIND, LABEL_MANAGED, LABEL_WORKSPACE

PREFIX = "perry-bench-lists-"
NETWORK = "perry-bench-lists"
SSH_PORTS = (2900, 2949)  # no workspace here publishes one; the server needs a range
CLIENTS = (1, 10, 20)


def _client_process(host: str, port: int, path: str, token: str, threads: int, seconds: float, out) -> None:
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def one() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        headers = {"Authorization": f"token {token}"}
        mine = []
        start.wait()
        end = time.perf_counter() + seconds
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                break
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(latencies)


def load(server: Server, clients: int, seconds: float,
         path: str = "/perry/api/workspaces") -> tuple[list[float], float]:
    """(latencies, requests/s) of ``clients`` concurrent keep-alive clients for ``seconds``."""
    host, port = server.base.split("//")[1].split(":")
    processes = min(clients, 4)
    share = [clients // processes + (1 if k < clients % processes else 0) for k in range(processes)]
    queue = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(
        target=_client_process, args=(host, int(port), path, server.token, n, seconds, queue))
        for n in share]
    for p in procs:
        p.start()
    latencies = [x for _ in procs for x in queue.get(timeout=seconds + 120)]
    for p in procs:
        p.join()
    return latencies, len(latencies) / seconds


class Listeners:
    """One events WebSocket per workspace (`?workspace=NAME`), as a panel or `perry watch` keeps open;
    for a running workspace the server then runs its session watcher."""

    def __init__(self, server: Server, names: list[str]):
        import asyncio

        self._loop = asyncio.new_event_loop()
        self._sockets: list = []
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()
        asyncio.run_coroutine_threadsafe(self._open(server, names), self._loop).result(timeout=300)

    def _run(self, ready: threading.Event) -> None:
        import asyncio

        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(ready.set)
        self._loop.run_forever()

    async def _open(self, server: Server, names: list[str]) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        for name in names:
            url = server.base.replace("http", "ws", 1) + f"/perry/api/events?workspace={name}"
            ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {server.token}"}))
            await ws.read_message()  # hello
            self._sockets.append(ws)

    def close(self) -> None:
        for ws in self._sockets:
            self._loop.call_soon_threadsafe(ws.close)
        self._loop.call_soon_threadsafe(self._loop.stop)


def process_cpu(pid: int) -> float:
    """CPU seconds the process and its threads used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def reconcile_seconds(tmp: Path) -> tuple[float, float]:
    """In-process ``reconcile()`` on a new state directory: (adopting every container, then again
    with nothing to change), the part of the server's start-up that grows with the workspaces."""
    from perry_jupyter.app import PerryApp
    from perry_jupyter.core.services import Perry

    state = tmp / f"reconcile-{time.time_ns()}"
    perry = Perry(state, PerryApp(state_dir=str(state), workspace_prefix=PREFIX, image_tag=IMAGE, network=NETWORK,
                                  ssh_port_range=list(SSH_PORTS), ssh_public_keys=[], git_config=None).core_config())
    t0 = now()
    perry.workspaces.reconcile()
    first = now() - t0
    t0 = now()
    perry.workspaces.reconcile()
    again = now() - t0
    perry.engine.close()
    return first, again


# A ServerApp with no extension: not the ones enabled in the Jupyter paths either.
BARE_JUPYTER = ("import sys; from jupyter_server.serverapp import ServerApp; app = ServerApp.instance(); "
                "app.initialize(sys.argv[1:], find_extensions=False); app.start()")


def jupyter_start(tmp: Path, bare: bool) -> float:
    """Seconds from starting Jupyter Server alone to its first authenticated ``GET /api/status``,
    polled as Server.start polls Perry's."""
    port, token = any_free_port(), "bench"
    # As installed, but for Perry's extension: Jupyter's own share of the start.
    command = ([sys.executable, "-c", BARE_JUPYTER] if bare
               else [str(VENV_BIN / "jupyter"), "server", "--ServerApp.jpserver_extensions=perry_jupyter=False"])
    options = [f"--port={port}", "--ip=127.0.0.1", "--ServerApp.port_retries=0", "--no-browser",
               "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp}"]
    t0 = now()
    proc = subprocess.Popen([*command, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=tmp)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"Jupyter Server exited with {proc.returncode}")
            try:
                r = requests.get(f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"},
                                 timeout=5)
                if r.status_code == 200:
                    return now() - t0
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("Jupyter Server did not answer within 60 s")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def one_run(client, server: Server, size: int, seconds: float, idle: float, listeners: int = 0) -> dict:
    adopt, again = reconcile_seconds(server.state_dir.parent)
    jupyter_bare = jupyter_start(server.state_dir.parent, bare=True)
    jupyter_installed = jupyter_start(server.state_dir.parent, bare=False)
    boot = server.start()
    listed = len(server.get("workspaces")["workspaces"])
    assert listed >= size, f"the server lists {listed} of {size}"
    label = {"label": [f"{LABEL_MANAGED}=true"], "name": PREFIX}
    docker_calls = []
    for _ in range(30):
        t0 = now()
        client.api.containers(all=True, filters=label)
        docker_calls.append(now() - t0)
    row = {"boot": boot, "docker": statistics.median(docker_calls), "adopt": adopt, "again": again,
           "jupyter_bare": jupyter_bare, "jupyter_installed": jupyter_installed}
    for n in CLIENTS:
        load(server, n, min(1.0, seconds))  # warm-up
        latencies, rate = load(server, n, seconds)
        row[n] = {"p50": pct(latencies, 50), "p99": pct(latencies, 99), "rate": rate}
    # The ceiling: Jupyter's own cheapest authenticated route, no Perry code at all.
    latencies, rate = load(server, CLIENTS[-1], seconds, "/api/status")
    row["ceiling"] = {"p50": pct(latencies, 50), "p99": pct(latencies, 99), "rate": rate}
    pid = server.proc.pid
    opened = Listeners(server, [f"w{k:03d}" for k in range(listeners)]) if listeners else None
    # Past the usage sampler's minute: idle means nobody asked for a while.
    time.sleep(65.0 if listeners else 2.0)
    row["rss"] = process_rss(pid)
    cpu0, t0 = process_cpu(pid), now()
    time.sleep(idle)
    row["idle_cpu"] = (process_cpu(pid) - cpu0) / (now() - t0)
    if opened is not None:
        opened.close()
    server.stop()
    return row


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="50,200")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds of load per client count")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds the idle CPU is measured over")
    ap.add_argument("--running", type=int, default=0, help="how many of the containers run (a sleep)")
    ap.add_argument("--listeners", action="store_true", help="an events WebSocket open on each running workspace")
    args = ap.parse_args()
    import perry_jupyter

    say(f"Perry from {Path(perry_jupyter.__file__).parent}")
    clean_up_on_signals()
    client = open_engine(PREFIX, NETWORK)
    if client is None:
        return 2
    tmp = Path(tempfile.mkdtemp(prefix=PREFIX))
    server = Server(tmp / "state", tmp / "serve.log", prefix=PREFIX, network=NETWORK, ssh_ports=SSH_PORTS)
    results = {}
    made = 0
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            say(f"{size} workspaces ({min(args.running, size)} running)")
            # Grown from the last size: the names w000.. of the smaller one stay.
            for k in range(made, size):
                make_containers_from(client, k, min(args.running, size))
            made = size
            runs = []
            for r in range(args.repeat):
                row = one_run(client, server, size, args.seconds, args.idle,
                              min(args.running, size) if args.listeners else 0)
                say(f"  run {r + 1}: start-up {row['boot']:.2f} s (Jupyter alone: bare {row['jupyter_bare']:.2f} s, "
                    f"as installed {row['jupyter_installed']:.2f} s), docker list {row['docker'] * 1000:.1f} ms, "
                    + ", ".join(f"{n} client(s) p50 {row[n]['p50'] * 1000:.2f} ms {row[n]['rate']:.0f}/s" for n in CLIENTS)
                    + f", RSS {row['rss'] / 2**20:.0f} MB, idle CPU {row['idle_cpu'] * 100:.1f}%")
                runs.append(row)
            results[size] = runs
    finally:
        clean_up(client, server, tmp, PREFIX, NETWORK)
    rows = []
    for size, runs in results.items():
        docker_ms = [r["docker"] * 1000 for r in runs]
        rows.append([f"{size}", "Docker list call", spread(docker_ms, "{:.2f}"), "", "", "1.00x"])
        for n in CLIENTS:
            p50 = [r[n]["p50"] * 1000 for r in runs]
            ratio = statistics.median(p50) / statistics.median(docker_ms)
            rows.append([f"{size}", f"GET /workspaces, {n} client(s)", spread(p50, "{:.2f}"),
                         spread([r[n]["p99"] * 1000 for r in runs], "{:.2f}"),
                         spread([r[n]["rate"] for r in runs], "{:.0f}"), f"{ratio:.2f}x"])
        rows.append([f"{size}", f"Jupyter's GET /api/status, {CLIENTS[-1]} clients",
                     spread([r["ceiling"]["p50"] * 1000 for r in runs], "{:.2f}"),
                     spread([r["ceiling"]["p99"] * 1000 for r in runs], "{:.2f}"),
                     spread([r["ceiling"]["rate"] for r in runs], "{:.0f}"), "(ceiling)"])
    table(f"GET /workspaces, medians of {args.repeat} runs (range)",
          ["workspaces", "what", "p50 ms", "p99 ms", "req/s", "p50 / Docker"], rows)
    table("the server at scale, medians (range)",
          ["workspaces", "start-up s", "Jupyter alone: bare / as installed, s", "reconcile s (adopting / again)",
           "RSS MB", "idle CPU % of a core"],
          [[f"{size} ({min(args.running, size)} running)", spread([r["boot"] for r in runs], "{:.2f}"),
            spread([r["jupyter_bare"] for r in runs], "{:.2f}") + " / "
            + spread([r["jupyter_installed"] for r in runs], "{:.2f}"),
            spread([r["adopt"] for r in runs], "{:.3f}") + " / " + spread([r["again"] for r in runs], "{:.3f}"),
            spread([r["rss"] / 2**20 for r in runs], "{:.0f}"), spread([r["idle_cpu"] * 100 for r in runs], "{:.2f}")]
           for size, runs in results.items()])
    return 0


def make_containers_from(client, k: int, running: int) -> None:
    created = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    name = f"w{k:03d}"
    labels = {LABEL_MANAGED: "true", LABEL_WORKSPACE: name, LABEL_CREATED: created, LABEL_DIND: "off"}
    c = client.containers.create(IMAGE, name=f"{PREFIX}{name}", hostname=name, labels=labels,
                                 entrypoint=["sleep", "infinity"], detach=True)
    if k < running:
        c.start()


if __name__ == "__main__":
    sys.exit(main())
