"""`sessions watch`: one JSON line per session change, for live views.

Polling, because the worker is standard library only and the stores are plain files: each
round stats the SQLite database and its ``-wal`` file, the JSON and JSONL files, and re-reads
only what changed (JSONL files from where the last round stopped). Lines:

    {"type": "watch.ready"}                                   once, after the first scan
    {"type": "session.created", "session": {...}}             a session appeared
    {"type": "session.updated", "session": {...}}             messageCount, lastActivity or title changed
    {"type": "session.deleted", "session": {"sessionId", "agent"}}   its store no longer has it

Sessions that exist when the watch starts are the baseline: they are not announced.
Every line is flushed at once. The watch runs until killed: SIGTERM, SIGINT, a closed
stdout (SIGPIPE or a reader that went away) end it quietly with status 0.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from typing import IO, Any, Callable, Dict, Optional, Tuple

from .sessions import SessionStore

WATCHED_FIELDS = ("messageCount", "lastActivity", "title")


class StdoutClosed(Exception):
    pass


def _changed(before: Dict[str, Any], after: Dict[str, Any]) -> bool:
    return any(before.get(k) != after.get(k) for k in WATCHED_FIELDS)


def diff(before: Dict[Tuple[str, str], Dict[str, Any]],
         after: Dict[Tuple[str, str], Dict[str, Any]]) -> list:
    events = []
    for key, s in after.items():
        old = before.get(key)
        if old is None:
            events.append({"type": "session.created", "session": s})
        elif _changed(old, s):
            events.append({"type": "session.updated", "session": s})
    for key, s in before.items():
        if key not in after:
            events.append({"type": "session.deleted", "session": {"sessionId": s["sessionId"], "agent": s["agent"]}})
    events.sort(key=lambda e: e["session"].get("lastActivity") or "")
    return events


def _reader_gone(stream: IO[str]) -> bool:
    """True when stdout is a pipe or socket whose other end was closed."""
    try:
        fd = stream.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLERR | select.POLLHUP)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def run(store: SessionStore, interval: float = 0.5, out: Optional[IO[str]] = None,
        should_stop: Callable[[], bool] = lambda: False) -> int:
    out = out or sys.stdout

    def emit(event: Dict[str, Any]) -> None:
        try:
            out.write(json.dumps(event) + "\n")
            out.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise StdoutClosed() from None

    interval = max(0.05, float(interval))
    try:
        previous = store.summaries()
        emit({"type": "watch.ready"})
        while not should_stop():
            time.sleep(interval)
            if _reader_gone(out):
                raise StdoutClosed()
            current = store.summaries()
            for event in diff(previous, current):
                emit(event)
            previous = current
    except StdoutClosed:
        _silence_stdout()
    except KeyboardInterrupt:
        pass
    return 0


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush cannot complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def install_signal_handlers() -> None:
    """SIGTERM ends the watch like Ctrl-C, with status 0.

    SIGPIPE stays ignored (Python's default), so a closed stdout shows up as a failed
    write, which ends the watch quietly too.
    """
    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
