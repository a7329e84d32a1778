"""A container Perry has just started: its output attached before the start, so that the
entrypoint's "perry: ready" line says when it is ready (no exec into it, no polling), and
the copy of the worker and the user's files made while it boots.
"""

from __future__ import annotations

import re
import threading
from typing import Callable

from .engine import LogStream

# "perry: ready (dind: starting)"; an entrypoint from before the Docker-in-Docker state says
# only "perry: ready", and then the engine's readiness is asked for inside.
READY_LINE = re.compile(r"perry: ready(?: \(dind: (\w+)\))?")


class Startup:
    def __init__(self, output: LogStream, copy: Callable[[], None]):
        """``output``: the container's, attached before its start; ``copy``: runs now, alongside."""
        self._output = output
        self._copy_error: BaseException | None = None
        self._copy = threading.Thread(target=self._copying, args=(copy,), name="perry-startup-copy", daemon=True)
        self._copy.start()

    def _copying(self, copy: Callable[[], None]) -> None:
        try:
            copy()
        except BaseException as e:  # raised in the waiting thread, by copied()
            self._copy_error = e

    def wait(self, timeout: float) -> tuple[bool, str | None]:
        """(ready, the inner engine's state as the entrypoint said it): (False, None) when the
        container stopped or ``timeout`` seconds passed first, (True, None) when the entrypoint
        does not say its state. The copy is done (or raised) when this returns."""
        timer = threading.Timer(timeout, self._output.close)
        timer.daemon = True
        timer.start()
        try:
            for line in self._output.lines():
                found = READY_LINE.search(line)
                if found:
                    return True, found.group(1)
            return False, None
        finally:
            timer.cancel()
            self._output.close()
            self.copied()

    def copied(self) -> None:
        """Wait for the copy; raise what it raised."""
        self._copy.join()
        if self._copy_error is not None:
            error, self._copy_error = self._copy_error, None
            raise error

    def abandon(self) -> None:
        """Given up (the create failed on): stop reading, let the copy end, raise nothing."""
        self._output.close()
        self._copy.join()
