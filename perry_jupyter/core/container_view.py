"""Each engine's workspace containers, kept in memory from Docker's event stream: lists without a Docker call.

A list of the containers costs a Docker call (about 20 ms at 50 workspaces on the project's 2-core
machine) and the workspace list is asked for far more often than containers change. So each engine
has a view: a thread follows the engine's container events and asks Docker again about the one
container each event names. The view is trusted only while its stream is live: until the stream is
up and a full list taken after it, and from the moment the stream breaks (the engine restarted, the
network dropped) until the next full list, every read asks Docker as before. The stream is opened
again every ``resync`` seconds with a full list, so whatever an event could not tell lasts that long.

Perry's own changes do not wait for their event: the engine tells the view of every container it
created, started, stopped, updated or removed as the call returns (``Engine.watchers``), and the next
read asks Docker about those first. Reads and the thread may ask about the same container at once:
each answer is applied only if no answer asked for later was applied before it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any, Callable

from .errors import PerryError
from .names import LABEL_MANAGED, LABEL_WORKSPACE

log = logging.getLogger(__name__)

# (engine, workspace or None for all) -> {workspace: container}, from Docker: WorkspaceManager._containers.
Fetch = Callable[[str, "str | None"], "dict[str, dict[str, Any]]"]
# More workspaces to ask about than this: one full list is cheaper than a call for each.
MANY = 4
RETRY_FIRST, RETRY_MAX = 0.5, 30.0


class _View:
    def __init__(self) -> None:
        self.containers: dict[str, dict[str, Any]] = {}
        self.ids: dict[str, str] = {}  # container id -> workspace
        self.live = False
        self.unsupported = False  # the engine streams no events: every read asks Docker
        self.all_stale = 0  # the mark of a change to a container the view could not name (0: none)
        self.dirty: dict[str, int] = {}  # workspace -> the mark of its last change
        self.applied: dict[str, int] = {}  # workspace -> the mark of the answer it shows
        self.engine: Any = None  # the engine object whose watchers tell this view
        self.stream: Any = None
        self.thread: threading.Thread | None = None
        self.asked = 0.0


class ContainerViews:
    def __init__(self, engines: Any, fetch: Fetch, container_name: Callable[[str], str], prefix: str,
                 resync: float = 30.0, idle: float = 120.0,
                 on_died: Callable[[str, float | None], None] | None = None):
        """``engines``: the Engines; ``container_name(workspace)``: its container's name, of ``prefix``.
        A view nobody read for ``idle`` seconds stops following (and reads ask Docker until it is live again).
        ``on_died(workspace, when)``: a workspace's container stopped (``when`` in epoch seconds, if known),
        told even when it was started again before the view asked Docker about it."""
        self.on_died = on_died
        self.engines = engines
        self.fetch = fetch
        self.container_name = container_name
        self.prefix = prefix
        self.resync = resync
        self.idle = idle
        self._lock = threading.Lock()
        self._marks = itertools.count(1)
        self._views: dict[str, _View] = {}
        self._closed = threading.Event()
        self._version = 0  # grows with every change any view shows

    # ------------------------------------------------------------ reads

    def containers(self, engine_name: str) -> dict[str, dict[str, Any]]:
        """{workspace: container} on engine ``engine_name``, as Docker has them now; raises what a
        Docker list raises when the view cannot answer and the engine cannot either."""
        return self.read(engine_name)[0]

    def read(self, engine_name: str) -> tuple[dict[str, dict[str, Any]], int | None]:
        """containers(), and the version of the views it is (None when Docker answered instead): a
        reader may keep what it made of an answer until the version changes."""
        view = self._view(engine_name)
        with self._lock:
            # An engine a call found unreachable is asked (and found down) until a call succeeds again,
            # whatever its stream has not yet noticed.
            trusted = (view.live and not view.all_stale and view.engine is self.engines.get(engine_name)
                       and self.engines.unreachable(engine_name) is None)
            dirty = list(view.dirty)
        if not trusted or len(dirty) > MANY:
            return self._full(engine_name, view), None
        for workspace in dirty:
            self._one(engine_name, view, workspace)
        with self._lock:
            return dict(view.containers), self._version

    def known(self, engine_name: str) -> int | None:
        """The version read() would answer at from memory alone, without a Docker call; None when it
        would ask Docker (the view is not live, or has containers Perry changed to ask about first)."""
        view = self._view(engine_name)
        with self._lock:
            if (view.live and not view.all_stale and not view.dirty and view.engine is self.engines.get(engine_name)
                    and self.engines.unreachable(engine_name) is None):
                return self._version
            return None

    def changed(self, engine_name: str, container: str) -> None:
        """Container ``container`` (a name or an id) of engine ``engine_name`` was changed by Perry."""
        with self._lock:
            view = self._views.get(engine_name)
            if view is None:
                return
            mark = next(self._marks)
            workspace = view.ids.get(container)
            if workspace is None and container.startswith(self.prefix):
                workspace = container[len(self.prefix):]
            if workspace is None:
                view.all_stale = mark
            else:
                view.dirty[workspace] = mark

    def close(self) -> None:
        """Stop following every engine (reads then ask Docker)."""
        self._closed.set()
        with self._lock:
            streams = [v.stream for v in self._views.values() if v.stream is not None]
            for view in self._views.values():
                view.live = False
        for stream in streams:
            stream.close()

    # ------------------------------------------------------------ inside

    def _view(self, engine_name: str) -> _View:
        with self._lock:
            view = self._views.setdefault(engine_name, _View())
            view.asked = time.monotonic()
            if view.thread is None and not view.unsupported and not self._closed.is_set():
                view.thread = threading.Thread(target=self._follow, args=(engine_name, view),
                                               name=f"perry-containers-{engine_name}", daemon=True)
                view.thread.start()
            return view

    def _full(self, engine_name: str, view: _View) -> dict[str, dict[str, Any]]:
        with self._lock:
            mark = next(self._marks)
        found = self.fetch(engine_name, None)
        with self._lock:
            for workspace in set(view.containers) | set(found):
                self._apply(view, workspace, found.get(workspace), mark)
            view.dirty = {w: m for w, m in view.dirty.items() if m > mark}
            if view.all_stale < mark:
                view.all_stale = 0
        return found

    def _one(self, engine_name: str, view: _View, workspace: str) -> None:
        with self._lock:
            mark = next(self._marks)
        found = self.fetch(engine_name, workspace).get(workspace)
        with self._lock:
            self._apply(view, workspace, found, mark)
            if view.dirty.get(workspace, mark) < mark:
                del view.dirty[workspace]

    def _apply(self, view: _View, workspace: str, container: dict[str, Any] | None, mark: int) -> None:
        """Show ``container`` (None: there is none) for ``workspace``, unless a later answer shows already."""
        if view.applied.get(workspace, 0) > mark:
            return
        view.applied[workspace] = mark
        before = view.containers.pop(workspace, None)
        if before != container:
            self._version += 1
        if before is not None:
            view.ids.pop(before["id"], None)
        if container is not None:
            view.containers[workspace] = container
            view.ids[container["id"]] = workspace

    def _follow(self, engine_name: str, view: _View) -> None:
        """The view's thread: a stream and a full list after it, again at its end or after a failure."""
        retry = RETRY_FIRST
        while not self._closed.is_set():
            with self._lock:
                if time.monotonic() - view.asked > self.idle or engine_name not in self.engines.names():
                    view.live, view.thread = False, None
                    return
            try:
                self._stream_once(engine_name, view)
                retry = RETRY_FIRST
            except PerryError as e:
                with self._lock:
                    view.live = False
                    if e.code == "events_unsupported":
                        view.unsupported, view.thread = True, None
                        return
                log.debug("following the containers of engine %s: %s", engine_name, e.message)
                self._closed.wait(retry)
                retry = min(RETRY_MAX, retry * 2)
            except Exception:  # a bug must not end the following: reads ask Docker meanwhile
                with self._lock:
                    view.live = False
                log.warning("following the containers of engine %s failed", engine_name, exc_info=True)
                self._closed.wait(retry)
                retry = min(RETRY_MAX, retry * 2)

    def _stream_once(self, engine_name: str, view: _View) -> None:
        engine = self.engines.get(engine_name)
        with self._lock:
            if view.engine is not engine:
                engine.watchers.append(lambda container: self.changed(engine_name, container))
                view.engine = engine
        until = time.time() + self.resync
        stream = engine.events({LABEL_MANAGED: "true"}, until=until)
        with self._lock:
            view.stream = stream
        try:
            if self._closed.is_set():
                return
            # Listed after the stream is open: a change made in between is in both, never in neither.
            self._full(engine_name, view)
            with self._lock:
                view.live = True
            for event in stream.events():
                workspace = event["labels"].get(LABEL_WORKSPACE)
                if workspace and event["name"] == self.container_name(workspace):
                    pass
                elif workspace is None and event["id"] in view.ids:
                    workspace = view.ids[event["id"]]
                else:
                    continue
                if event["action"] == "die" and self.on_died is not None:
                    self.on_died(workspace, event.get("time"))
                self._one(engine_name, view, workspace)
        finally:
            with self._lock:
                view.stream = None
                if time.time() < until - 1:
                    view.live = False  # the engine ended the stream early (it is going away): ask it
            stream.close()
