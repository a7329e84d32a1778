"""A small thread-safe publish/subscribe bus for workspace, session and task changes.

The core publishes from whatever thread did the work; subscribers (the events
WebSocket) hop back onto their own event loop themselves.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger(__name__)

Event = dict[str, Any]
Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register ``callback``; returns a function that unregisters it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, type: str, workspace: str | None = None, **data: Any) -> Event:
        event = {"type": type, "workspace": workspace, "time": time.time(), **data}
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # one broken listener must not break the others
                log.exception("event subscriber failed")
        return event
