"""WebSocket `/perry/api/events`: workspace (later session and task) changes as JSON."""

from __future__ import annotations

import json

from tornado.ioloop import IOLoop

from ..core.names import validate_name
from ..core.workspaces import as_reached
from .base import PerrySocket


class EventsSocket(PerrySocket):
    auth_resource = "perry:workspaces"
    _listening = False

    def check_arguments(self) -> None:
        only = self.get_argument("workspace", None)
        if only is not None:
            validate_name(only)

    def open(self) -> None:
        only = self.get_argument("workspace", None)
        if only is not None:
            validate_name(only)
        loop = IOLoop.current()

        def deliver(event: dict) -> None:
            if only is None or event.get("workspace") == only:
                loop.add_callback(self._send, event)

        self._unsubscribe = self.perry.events.subscribe(deliver)
        self._listening = True
        loop.run_in_executor(self.settings["perry_executor"], self._watch_sessions, only)
        self.write_message(json.dumps({"type": "hello", "workspace": only}))

    def _watch_sessions(self, only: str | None) -> None:
        # Session changes come from a watcher inside each workspace, run while someone listens.
        watchers = self.perry.sessions.watchers
        watchers.subscribe(self, only)
        if not self._listening:  # closed before the subscription was made
            watchers.unsubscribe(self)

    def _send(self, event: dict) -> None:
        if self.ws_connection is not None:
            if "data" in event:  # a workspace's SSH line names the host this client reached
                event = {**event, "data": as_reached(event["data"], self.request.host_name)}
            self.write_message(json.dumps(event))

    def on_message(self, message) -> None:
        pass  # the stream is one-way; clients send nothing we act on

    def on_close(self) -> None:
        self._listening = False
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe:
            unsubscribe()
        self.perry.sessions.watchers.unsubscribe(self)
