"""When each workspace was last used, and what is under way in it: the idle check's cheap half.

Handlers and managers touch it on every use (an exec, a proxied request, a terminal's
output, a conversation), so it must cost next to nothing: a dict write under an
uncontended lock. What only the workspace knows (SSH sessions, agents at work) the idle
check asks the workspace itself, and only once this record says it looks idle.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class Activity:
    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._open: dict[object, str] = {}  # a use under way -> its workspace

    def touch(self, name: str, at: float | None = None) -> None:
        at = self.clock() if at is None else at
        with self._lock:
            if at > self._last.get(name, 0.0):
                self._last[name] = at

    def begin(self, name: str) -> object:
        """A use that lasts (a request, an exec): busy until ``end(key)``."""
        key = object()
        with self._lock:
            self._open[key] = name
        self.touch(name)
        return key

    def end(self, key: object) -> None:
        """The use ``key`` is over (ending one twice is harmless: a handler may see both its finish and
        its connection's close)."""
        with self._lock:
            name = self._open.pop(key, None)
        if name is not None:
            self.touch(name)

    @contextmanager
    def using(self, name: str) -> Iterator[None]:
        key = self.begin(name)
        try:
            yield
        finally:
            self.end(key)

    def busy(self, name: str) -> bool:
        with self._lock:
            return name in self._open.values()

    def last(self, name: str) -> float | None:
        with self._lock:
            return self._last.get(name)

    def forget(self, name: str) -> None:
        with self._lock:
            self._last.pop(name, None)
