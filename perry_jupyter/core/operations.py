"""One lifecycle operation per workspace at a time.

A start and a stop of one workspace that overlap leave it half done (the start waits
for an sshd the stop just killed). Every client reaches Docker through this one
server, so an in-process registry is enough: the second request is refused at once
with 409 `busy`, naming what holds the workspace, rather than queued behind it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from .errors import Conflict
from .names import validate_name


class Claim:
    """Proof that the holder runs ``operation`` on workspace ``name``; pass it on to
    core calls made under the same claim, so they do not refuse their own caller."""

    def __init__(self, name: str, operation: str):
        self.name = name
        self.operation = operation


class WorkspaceOperations:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, Claim] = {}

    @contextmanager
    def hold(self, name: str, operation: str, claim: Claim | None = None) -> Iterator[Claim]:
        """Run ``operation`` on ``name``, or raise 409 `busy` without waiting.

        A ``claim`` already held for ``name`` is reused (and stays held afterwards)."""
        validate_name(name)  # a bad name is a 400 however many ask at once
        with self._lock:
            current = self._held.get(name)
            if current is not None and current is claim:
                reused = True
            elif current is not None:
                raise Conflict(f"workspace {name!r} is busy: {current.operation} in progress; try again "
                               "when it has finished", code="busy")
            else:
                reused, claim = False, Claim(name, operation)
                self._held[name] = claim
        try:
            yield claim
        finally:
            if not reused:
                with self._lock:
                    del self._held[name]

    def busy(self, name: str) -> bool:
        """Whether an operation on ``name`` runs now."""
        with self._lock:
            return name in self._held
