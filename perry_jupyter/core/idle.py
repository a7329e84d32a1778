"""The idle check: a workspace nobody used for its idleTimeout is stopped, with stopReason "idle".

Used means any of: a task of it that has not ended; a use under way or recent in the
activity record (exec, proxied request, conversation, terminal output or input: see
core/activity.py); and, asked of the workspace only when all that says idle, a terminal
written to (SSH's or Perry's), a command running over SSH, or an agent's processes using
CPU since the last check (`perry-worker activity`).

Deadlines are not kept anywhere but derived each round from the state file and the record,
so a restarted server rebuilds them by itself: a restart counts as a use, so no workspace
stops sooner than its timeout after the server came up.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from .errors import Conflict, PerryError
from .tasks import FINAL
from .worker import run_worker

log = logging.getLogger(__name__)

MIN_INTERVAL, MAX_INTERVAL = 1.0, 30.0


class IdleWatcher:
    def __init__(self, workspaces: Any, *, last_terminal_use: Callable[[str], float | None] = lambda name: None,
                 before_stop: Callable[[str], None] = lambda name: None):
        """``last_terminal_use(name)``: when a terminal of it last had output or input (epoch), or None;
        ``before_stop(name)``: closes its terminals with a word on why (a blocking call)."""
        self.workspaces = workspaces
        self.store = workspaces.store
        self.activity = workspaces.activity
        self.last_terminal_use = last_terminal_use
        self.before_stop = before_stop
        self.started = time.time()
        self._agent_cpu: dict[str, int] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ the thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="perry-idle", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()

    def _loop(self) -> None:
        wait = MIN_INTERVAL
        while not self._stopping.wait(wait):
            try:
                wait = self.check()
            except Exception:  # one failed round must not end the check
                log.warning("the idle check failed", exc_info=True)
                wait = MAX_INTERVAL

    # ------------------------------------------------------------- a round

    def check(self) -> float:
        """One round (blocking: it may ask workspaces and stop some); the seconds until the next."""
        state = self.store.read()
        working = {t.get("workspace") for t in state.get("tasks", {}).values() if t.get("status") not in FINAL}
        now = time.time()
        soonest = MAX_INTERVAL
        for name, record in state["workspaces"].items():
            timeout = self.workspaces.idle_timeout(record)
            if record.get("status") != "running" or timeout <= 0:
                continue
            if name in working or self.activity.busy(name) or self.workspaces.operations.busy(name):
                self.activity.touch(name, now)
            idle_for = now - max(self.started, self.activity.last(name) or 0.0,
                                 self.last_terminal_use(name) or 0.0)
            if idle_for >= timeout and not self._busy_inside(name, now, timeout):
                self._stop(name, timeout)
                continue
            # Check again a quarter of the timeout on, or when it would run out.
            soonest = min(soonest, max(timeout - idle_for, timeout / 4))
        return max(MIN_INTERVAL, soonest)

    def _busy_inside(self, name: str, now: float, timeout: int) -> bool:
        """Ask the workspace (one exec); it counts as busy when it cannot say."""
        try:
            seen = run_worker(self.workspaces, name, "activity")
        except Conflict:
            return True  # not running after all (stopped outside Perry, or busy): nothing to stop
        except PerryError as e:
            log.info("idle check: cannot ask workspace %s (%s); leaving it running", name, e.message)
            return True
        cpu, before = int(seen.get("agentCpu") or 0), self._agent_cpu.get(name)
        self._agent_cpu[name] = cpu
        if seen.get("sshCommands") or (cpu and cpu != before):
            self.activity.touch(name, now)
            return True
        written = float(seen.get("ttyWritten") or 0.0)
        if now - written < timeout:
            self.activity.touch(name, written)
            return True
        return False

    def _stop(self, name: str, timeout: int) -> None:
        log.info("workspace %s was idle for %ss: stopping it", name, timeout)
        try:
            self.before_stop(name)
            if self.activity.busy(name):
                return  # used while its terminals closed: it stays
            ws = self.workspaces.stop(name, reason="idle")
        except PerryError as e:  # busy (a user's operation began), deleted, engine down: next round
            log.info("idle check: could not stop workspace %s: %s", name, e.message)
            return
        self._agent_cpu.pop(name, None)
        # The workspace itself (with its stopReason and idleTimeout), as workspace.updated carries it.
        self.workspaces.events.publish("workspace.idle_stopped", name, data=ws)
