"""Whether each running workspace's own Docker engine (Docker-in-Docker) is ready yet.

A workspace is ready as soon as sshd answers: its inner engine may still be starting, and
`docker` inside waits for it by itself (the entrypoint hands dockerd a socket it made first,
so an early client waits in the socket's queue). What the API reports as ``dindStatus``:
"starting" until the engine answered, then "ready", or "off"; a workspace whose engine was
starting gets one background wait (one exec that waits inside), whose end is announced.
"""

from __future__ import annotations

import itertools
import time
import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)

STARTING, READY, OFF = "starting", "ready", "off"


class InnerEngines:
    def __init__(self, announce: Callable[[str], None]):
        """``announce(workspace)``: tell the clients its description changed."""
        self._announce = announce
        self._states: dict[str, str] = {}
        self._watches: dict[str, int] = {}  # the current watch of each workspace: older ones say nothing
        self._since: dict[str, float] = {}  # when each state was told (epoch seconds)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        # Grows with every change of a state: a list made at one version is still true at it.
        self.version = 0

    def state(self, name: str) -> str | None:
        """What its last start reported (and the wait since found); None if unknown here, such as
        for a workspace started before this server."""
        return self._states.get(name)

    def started(self, name: str, state: str | None, wait: Callable[[], bool]) -> None:
        """Its container is ready with the inner engine in ``state``; a starting one is watched:
        ``wait()`` blocks until the engine is ready, True when it is, False when it was not in time."""
        with self._lock:
            number = next(self._numbers)
            self._watches[name] = number
            self.version += 1
            if state is None:
                self._states.pop(name, None)
                return
            self._states[name] = state
            self._since[name] = time.time()
        if state == STARTING:
            threading.Thread(target=self._watch, args=(name, number, wait), name=f"perry-dind-{name}",
                             daemon=True).start()

    def forget(self, name: str) -> None:
        """Stopped or gone: nothing is known until its next start."""
        with self._lock:
            self.version += 1
            self._states.pop(name, None)
            self._watches.pop(name, None)

    def died(self, name: str, when: float | None) -> None:
        """Its container stopped at ``when``: a stop after the state was told (one behind Perry's back,
        a crash) makes it unknown, even if the container runs again (its inner engine starts anew).
        A stop before it (Perry's own restart, whose event comes late) changes nothing."""
        with self._lock:
            if name not in self._states or (when is not None and when < self._since.get(name, 0)):
                return
            self.version += 1
            self._states.pop(name, None)
            self._watches.pop(name, None)

    def _watch(self, name: str, number: int, wait: Callable[[], bool]) -> None:
        try:
            ready = wait()
        except Exception as e:  # stopped or removed meanwhile: forget() said so already
            log.debug("waiting for the inner engine of %s: %s", name, e)
            return
        with self._lock:
            if self._watches.get(name) != number:
                return
            if not ready:
                log.warning("the inner Docker engine of workspace %s is not ready yet; see "
                            "/var/log/dockerd.log inside it", name)
                return
            self._states[name] = READY
            self.version += 1
        try:
            self._announce(name)
        except Exception as e:
            log.debug("announcing the inner engine of %s: %s", name, e)
