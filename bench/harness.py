"""The scaffolding the benchmarks in this folder share; not a benchmark itself.

A real ``perry serve`` subprocess, the engine check and the removal of a benchmark's own
Docker objects, the clean-up every run ends with, and the timing and table helpers of the
reports. Each benchmark passes its own prefix, network and ports, so one benchmark's
clean-up never reaches objects it did not name. The scripts import it as ``harness``:
run as ``.venv/bin/python bench/<name>.py``, their folder is on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import NotFound

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
IMAGE = os.environ.get("PERRY_BENCH_IMAGE", "perry-workspace:latest")


# ------------------------------------------------------ timing and report

def now() -> float:
    return time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def table(title: str, header: list[str], rows: list[list[str]], note: str | None = None) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    for line in (note or "").strip().splitlines():
        print(f"  {line}")


# ------------------------------------------------------------------ ports

def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(lo: int, hi: int) -> int:
    for port in range(lo, hi + 1):
        if port_free(port):
            return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


def any_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------ the engine

def _remove(obj, what: str, removed: list[str], failed: list[str], **kwargs) -> None:
    """Remove one Docker object, tolerating 'already gone' and waiting out 'removal in progress'."""
    for _ in range(20):
        try:
            obj.remove(**kwargs)
            removed.append(what)
            return
        except NotFound:
            return
        except docker.errors.APIError as e:
            if "in progress" in str(e) or "in use" in str(e):
                time.sleep(0.5)  # an interrupted removal still running, or a container not yet gone
                continue
            failed.append(f"{what}: {e}")
            return
        except Exception as e:  # noqa: BLE001 - keep cleaning the rest
            failed.append(f"{what}: {e}")
            return
    failed.append(f"{what}: still busy after 10 s")


def remove_bench_objects(client: docker.DockerClient, prefix: str, network: str) -> list[str]:
    """Remove every container and volume named prefix* and the network; returns what went."""
    def ours(name: str) -> bool:
        return name.lstrip("/").startswith(prefix)

    removed: list[str] = []
    failed: list[str] = []
    try:
        for c in client.containers.list(all=True, filters={"name": prefix}):
            if ours(c.name):  # the name filter is a substring match: check the prefix ourselves
                _remove(c, f"container {c.name}", removed, failed, force=True)
        for v in client.volumes.list():
            if ours(v.name):
                _remove(v, f"volume {v.name}", removed, failed, force=True)
        for n in client.networks.list(names=[network]):
            if n.name == network:  # `names` matches substrings too
                _remove(n, f"network {n.name}", removed, failed)
    except Exception as e:  # noqa: BLE001 - cleanup reports, never stops
        failed.append(f"listing: {e}")
    for f in failed:
        print(f"cleanup: could not remove {f}", file=sys.stderr)
    return removed


def open_engine(prefix: str, network: str, timeout: int = 300) -> docker.DockerClient | None:
    """The engine, once the image is there and a killed run's leftovers are gone; None (said why) if not built."""
    client = docker.from_env(timeout=timeout)
    client.ping()
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        print(f"the image {IMAGE} is not built: run `.venv/bin/perry build` first", file=sys.stderr)
        return None
    leftovers = remove_bench_objects(client, prefix, network)
    if leftovers:
        say(f"removed leftovers of an earlier run: {', '.join(leftovers)}")
    return client


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def clean_up_on_signals() -> None:
    """SIGTERM (a timeout, CI) and SIGINT end the run through the caller's `finally`, which cleans up."""
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)


def ssh_key(directory: Path) -> Path:
    """A fresh key pair in directory; returns the public key, which the workspaces are given."""
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key.with_name(key.name + ".pub")


# ------------------------------------------------------------------ server

class Server:
    """A real `perry serve` on the benchmark's state directory, names and ports.

    `ports` is the range the server's own port comes from; None takes any free port.
    """

    def __init__(self, state_dir: Path, log_path: Path, *, prefix: str, network: str,
                 ssh_ports: tuple[int, int], ports: tuple[int, int] | None = None, options: tuple[str, ...] = ()):
        self.state_dir, self.log_path = state_dir, log_path
        self.prefix, self.network, self.ssh_ports, self.ports, self.options = prefix, network, ssh_ports, ports, options
        self.proc: subprocess.Popen | None = None
        self.base = ""  # the terminal WebSocket lives outside /perry/api
        self.url = ""
        self.token = ""
        self.session = requests.Session()

    def start(self) -> float:
        """Start it and wait until it answers with its token; returns the seconds that took."""
        port = pick_port(*self.ports) if self.ports else any_free_port()
        env = {**os.environ, "PERRY_CONFIG_DIR": str(self.state_dir)}
        # With PERRY_TOKEN set the server would take it and never write the token file read below;
        # PERRY_URL is a client setting of this shell, not the server's.
        env.pop("PERRY_TOKEN", None)
        env.pop("PERRY_URL", None)
        cmd = [str(VENV_BIN / "perry"), "serve", f"--port={port}", "--ip=127.0.0.1",
               f"--PerryApp.workspace_prefix={self.prefix}", f"--PerryApp.network={self.network}",
               f"--PerryApp.ssh_port_range={self.ssh_ports[0]}", f"--PerryApp.ssh_port_range={self.ssh_ports[1]}",
               f"--PerryApp.image_tag={IMAGE}", *self.options]
        t0 = now()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/perry/api"
        token_file = self.state_dir / "token"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"perry serve exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-2000:])
            if token_file.is_file() and token_file.read_text().strip():
                self.token = token_file.read_text().strip()
                self.session.headers["Authorization"] = f"token {self.token}"
                try:
                    if self.session.get(f"{self.url}/workspaces", timeout=5).status_code == 200:
                        return now() - t0
                except requests.ConnectionError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"perry serve did not answer within 60 s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def get(self, path: str, **params: Any) -> Any:
        r = self.session.get(f"{self.url}/{path}", params=params or None, timeout=120)
        r.raise_for_status()
        return r.json()


def clean_up(client: docker.DockerClient, server: Server, tmp: Path, prefix: str, network: str,
             perry=None) -> None:
    """The end of every run, an error's or Ctrl-C's too: the server, Perry's client, our Docker objects, tmp."""
    try:
        server.stop()
    except Exception as e:  # noqa: BLE001 - cleanup goes on
        print(f"cleanup: stopping perry serve: {e}", file=sys.stderr)
    if perry is not None:
        with contextlib.suppress(Exception):
            perry.engine.close()
    removed = remove_bench_objects(client, prefix, network)
    shutil.rmtree(tmp, ignore_errors=True)
    say(f"cleaned up: {len(removed)} Docker object(s), the server, {tmp}")
