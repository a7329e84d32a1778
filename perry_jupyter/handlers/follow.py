"""Followed output as server-sent events: a workspace's container log, a task's output.

The source blocks (a Docker log stream, polling the worker), so it is read in a thread of
its own; a follow can last hours and must not hold one of the executor's few workers. The
thread hands lines to the loop; the stream ends when the source ends (the workspace
stopped, the task ended) or when the client leaves, which closes the source so the thread
and its Docker connection end with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import datetime
from typing import Any, Callable

from tornado.iostream import StreamClosedError

from ..core.errors import InvalidInput, PerryError
from ..core.names import shown
from .base import PerryHandler, api

log = logging.getLogger(__name__)

KEEPALIVE = 15.0  # seconds; a comment line through proxies that close idle connections
MAX_TAIL = 100_000

Emit = Callable[[str, Any], None]


def tail_argument(handler: PerryHandler, default: int = 200) -> int:
    raw = handler.get_argument("tail", str(default))
    try:
        tail = int(raw)
    except ValueError:
        raise InvalidInput(f"tail must be a whole number of lines, not {shown(raw)}") from None
    if not 1 <= tail <= MAX_TAIL:
        raise InvalidInput(f"tail must be between 1 and {MAX_TAIL}")
    return tail


def since_argument(handler: PerryHandler) -> float | None:
    """``since``: seconds since the epoch, or an ISO 8601 time with its zone (2026-11-30T03:00:00Z)."""
    raw = handler.get_argument("since", None)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"since must be seconds since the epoch or an ISO 8601 time "
                               f"such as 2026-11-30T03:00:00Z, not {shown(raw)}") from None
        if when.tzinfo is None:
            raise InvalidInput("since must name its time zone (end it with Z for UTC)")
        value = when.timestamp()
    if not 0 <= value < 1e11:  # NaN and infinities fail this too
        raise InvalidInput("since must be a time after 1970")
    return value


def follow_argument(handler: PerryHandler) -> bool:
    raw = handler.get_argument("follow", "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidInput(f"follow must be true or false, not {shown(raw)}")
    return raw in ("true", "1")


def event_text(kind: str, data: Any) -> str:
    """One server-sent event; a line of text goes as it is (a carriage return would end it early)."""
    # A terminal's line end (\r\n, as sshd writes) is one end, not an empty line more.
    text = data.removesuffix("\r") if isinstance(data, str) else json.dumps(data)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    head = "" if kind == "message" else f"event: {kind}\n"
    return head + "".join(f"data: {line}\n" for line in lines) + "\n"


class EventStreamHandler(PerryHandler):
    """A GET answered with ``text/event-stream``: ``message`` events (one line of output each),
    then one ``end`` event (or ``error``, with the usual error body)."""

    _left: threading.Event | None = None
    _cancel: Callable[[], None] | None = None

    def on_connection_close(self) -> None:
        if self._left is not None:
            self._left.set()
        if self._cancel is not None:
            self._cancel()
        super().on_connection_close()

    async def stream(self, produce: Callable[[Emit, threading.Event], None],
                     cancel: Callable[[], None] = lambda: None) -> None:
        """Run ``produce(emit, left)`` in a thread; every ``emit(kind, data)`` becomes an event.
        ``cancel`` (and the ``left`` event) tell the producer the client has gone."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        self._left, self._cancel = threading.Event(), cancel

        def emit(kind: str, data: Any) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(queue.put_nowait, (kind, data))

        def run() -> None:
            try:
                produce(emit, self._left)
            except PerryError as e:
                emit("error", e.to_json())
            except Exception:
                if not self._left.is_set():
                    log.exception("following %s", self.request.path)
                    emit("error", {"error": {"code": "internal", "message": "following ended by an error"}})
            finally:
                cancel()
                emit("", None)

        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx would hold the stream back
        threading.Thread(target=run, name="perry-follow", daemon=True).start()
        try:
            self.write(": following\n\n")
            await self.flush()
            while True:
                try:
                    kind, data = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except asyncio.TimeoutError:
                    self.write(": keep-alive\n\n")
                    await self.flush()
                    continue
                if not kind:
                    break
                self.write(event_text(kind, data))
                if queue.empty():
                    await self.flush()
        except StreamClosedError:
            pass
        finally:
            self._left.set()
            cancel()


class TaskOutputHandler(EventStreamHandler):
    """A task's output: what there is (JSON), or followed as it grows (``follow=true``)."""
    auth_resource = "perry:tasks"

    @api
    async def get(self, name: str, task_id: str) -> None:
        follow, tasks = follow_argument(self), self.perry.tasks
        if not follow:
            raw = self.get_argument("offset", "0")
            if not raw.isdigit():
                raise InvalidInput(f"offset must be a whole number of bytes, not {shown(raw)}")
            self.reply(await self.blocking(tasks.output, name, task_id, int(raw)))
            return
        await self.blocking(tasks.get, name, task_id)  # an unknown task is a 404, not a stream

        def produce(emit: Emit, left: threading.Event) -> None:
            def lines(text: str) -> None:
                for line in text.rstrip("\n").split("\n"):
                    emit("message", line)

            ended = tasks.follow_output(name, task_id, lines, left)
            if ended is not None:
                emit("end", ended)

        await self.stream(produce)
