"""WebSocket `/perry/api/events`: workspace (later session and task) changes as JSON."""

from __future__ import annotations

import json

from tornado.ioloop import IOLoop

from ..core.names import validate_name
from .base import PerrySocket


class EventsSocket(PerrySocket):
    _watched: tuple = ()  # a list of this connection's watched workspaces once open

    def check_arguments(self) -> None:
        only = self.get_argument("workspace", None)
        if only is not None:
            validate_name(only)

    def open(self) -> None:
        only = self.get_argument("workspace", None)
        if only is not None:
            validate_name(only)
        loop = IOLoop.current()
        # Session changes come from a watcher inside each workspace, run while someone listens.
        self._watched = []

        def deliver(event: dict) -> None:
            if only is None or event.get("workspace") == only:
                loop.add_callback(self._send, event)
            # A workspace that starts while we listen gets its sessions watched too.
            name = event.get("workspace")
            if (only is None and event.get("type") == "workspace.updated" and name not in self._watched
                    and (event.get("data") or {}).get("status") == "running"):
                loop.run_in_executor(self.settings["perry_executor"], self._watch_one, name)

        self._unsubscribe = self.perry.events.subscribe(deliver)
        loop.run_in_executor(self.settings["perry_executor"], self._watch_sessions, only)
        self.write_message(json.dumps({"type": "hello", "workspace": only}))

    def _watch_sessions(self, only: str | None) -> None:
        try:
            names = [only] if only else [w["name"] for w in self.perry.workspaces.list() if w["status"] == "running"]
        except Exception:  # no engine: workspace events still flow, session events cannot
            return
        for name in names:
            if name not in self._watched:
                self._watched.append(name)
                self.perry.sessions.watch(name)
        if self.ws_connection is None:  # closed meanwhile
            self._unwatch()

    def _watch_one(self, name: str) -> None:
        if self.ws_connection is not None and name not in self._watched:
            self._watched.append(name)
            self.perry.sessions.watch(name)

    def _unwatch(self) -> None:
        watched, self._watched = list(self._watched), []
        for name in watched:
            self.perry.sessions.unwatch(name)

    def _send(self, event: dict) -> None:
        if self.ws_connection is not None:
            self.write_message(json.dumps(event))

    def on_message(self, message) -> None:
        pass  # the stream is one-way; clients send nothing we act on

    def on_close(self) -> None:
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe:
            unsubscribe()
        self._unwatch()
