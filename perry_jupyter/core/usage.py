"""Live use of the running workspaces (CPU %, memory used of its limit), from one cached sample.

Docker's stats API answers for one container at a time and slowly (0.7 s a container one-shot,
2 s when it waits for its own second reading, on the project's 2-core machine), so no request
ever waits for it: a background thread samples every running workspace every ``interval``
seconds (longer when a round is slow) while someone has asked within ``idle`` seconds, and
requests read the last sample.
CPU % is the difference of two samples, so it appears from the second one on.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from .errors import PerryError

log = logging.getLogger(__name__)


class UsageSampler:
    def __init__(self, workspaces: Any, interval: float = 2.0, idle: float = 60.0, readers: int = 4):
        """``workspaces``: the WorkspaceManager whose running containers are sampled."""
        self.workspaces = workspaces
        self.interval = interval
        self.idle = idle
        self._readers = readers
        self._lock = threading.Lock()
        self._sampled = threading.Condition(self._lock)
        self._use: dict[str, dict[str, Any]] = {}
        self._readings: dict[str, dict[str, Any]] = {}  # container id -> its last raw reading
        self._rounds = 0
        self._asked = 0.0
        self._thread: threading.Thread | None = None

    def read(self) -> dict[str, dict[str, Any]]:
        """{workspace: use} of the last sample (running workspaces only); starts sampling if it sleeps."""
        return dict(self.sample()[1])

    def sample(self) -> tuple[int, dict[str, dict[str, Any]]]:
        """read() and the number of its round: the same round, the same use (do not change it)."""
        with self._lock:
            self._asked = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="perry-usage", daemon=True)
                self._thread.start()
            return self._rounds, self._use

    def of(self, name: str, wait: float = 0.0) -> dict[str, Any] | None:
        """The use of workspace ``name``; with ``wait``, up to that long for a first sample of it."""
        self.read()
        deadline = time.monotonic() + wait
        with self._lock:
            rounds = self._rounds
            # Two rounds at most: the one under way may have listed the containers before ``name`` ran.
            while name not in self._use and self._rounds < rounds + 2 and time.monotonic() < deadline:
                self._sampled.wait(deadline - time.monotonic())
            return self._use.get(name)

    def _run(self) -> None:
        with ThreadPoolExecutor(self._readers, thread_name_prefix="perry-usage-read") as pool:
            while True:
                with self._lock:
                    if time.monotonic() - self._asked > self.idle:
                        self._thread = None  # asleep until the next read
                        return
                started = time.monotonic()
                try:
                    self._sample(pool)
                except RuntimeError:  # the interpreter is exiting and its pools take no more work
                    with self._lock:
                        self._thread = None
                    return
                except Exception:  # one failed round must not end the sampling
                    log.warning("sampling the workspaces' use failed", exc_info=True)
                took = time.monotonic() - started
                # A slow round (many containers, a busy engine) spaces the next: the engine's time
                # spent on sampling stays about a third at most.
                time.sleep(max(0.2, self.interval - took, 2 * took))

    def _sample(self, pool: ThreadPoolExecutor) -> None:
        running = self.workspaces.running_containers()

        def reading(item: tuple[str, str, str]) -> dict[str, Any] | None:
            try:
                return self.workspaces.engines.get(item[1]).stats(item[2])
            except PerryError:
                return None

        readings = list(pool.map(reading, running))
        use, kept = {}, {}
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for (name, _engine, cid), now in zip(running, readings):
            if now is None:
                continue
            kept[cid] = now
            use[name] = {"cpuPercent": _cpu_percent(self._readings.get(cid), now), "memoryUsed": now["memoryUsed"],
                         "memoryLimit": now["memoryLimit"], "cpus": now["onlineCpus"], "pids": now["pids"], "at": at}
        with self._lock:
            self._use, self._readings = use, kept
            self._rounds += 1
            self._sampled.notify_all()


def _cpu_percent(before: dict[str, Any] | None, now: dict[str, Any]) -> float | None:
    """CPU use between two readings as `docker stats` shows it: 100 is one CPU busy."""
    if before is None or None in (before["cpuTotal"], before["systemTotal"], now["cpuTotal"], now["systemTotal"]):
        return None
    used, elapsed = now["cpuTotal"] - before["cpuTotal"], now["systemTotal"] - before["systemTotal"]
    if elapsed <= 0 or used < 0:
        return None
    return round(used / elapsed * (now["onlineCpus"] or 1) * 100, 1)
