"""Agent sessions inside workspaces, read by perry_worker through the Docker API.

Perry never reaches into a workspace by its IP: every read is a `docker exec` of
perry_worker (which knows the agents' stores), and live changes come from one
long-running `perry-worker sessions watch` exec per watched workspace, whose
JSON lines become events on the bus. SessionWatchers decides which run.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any, Hashable

from perry_worker import agents as agent_registry

from .errors import Conflict, InvalidInput, NotFound, PerryError
from .events import Event, EventBus
from .names import HOME_DIR, validate_name, validate_text
from .worker import run_worker
from .workspaces import WorkspaceManager

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
# The watcher ends when its stdin closes: that is how Perry stops it, from any engine.
WATCH_COMMAND = ["sh", "-c", "perry-worker sessions watch & w=$!; cat >/dev/null; kill $w 2>/dev/null; wait $w"]


def validate_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
        raise InvalidInput(f"invalid session id {session_id!r}")
    return session_id


def validate_agent_name(agent: object) -> str:
    if not isinstance(agent, str) or agent not in agent_registry.AGENTS:  # a JSON object is no name (nor hashable)
        raise InvalidInput(f"unknown agent {agent!r}; known agents: {', '.join(agent_registry.NAMES)}")
    return agent  # type: ignore[return-value]


def validate_agent(agent: object) -> str | None:
    if agent in (None, ""):
        return None
    return validate_agent_name(agent)  # type: ignore[return-value]


class AgentSessions:
    def __init__(self, workspaces: WorkspaceManager, events: EventBus):
        self.workspaces = workspaces
        self.events = events
        self.watchers = SessionWatchers(self)

    # ---------------------------------------------------------------- reads

    def _worker(self, name: str, *args: str) -> Any:
        return run_worker(self.workspaces, name, *args)

    def list(self, name: str, agent: str | None = None) -> list[dict[str, Any]]:
        agent = validate_agent(agent)
        args = ["sessions", "list", *(["--agent", agent] if agent else [])]
        answer = self._worker(name, *args)
        return answer["sessions"] if isinstance(answer, dict) else answer

    def get(self, name: str, session_id: str) -> dict[str, Any]:
        return self._worker(name, "sessions", "get", validate_session_id(session_id))

    def resume_target(self, name: str, session_id: Any, agent: Any = None) -> dict[str, Any]:
        """What a terminal needs to resume a session interactively: its agent, directory and command.

        404 for a session the workspace does not hold (of ``agent``, when given), 409
        ``agent_missing`` when the workspace's image lacks the agent's CLI. Blocks (Docker).
        """
        session_id = validate_session_id(session_id)
        agent = validate_agent(agent)
        ws = self.workspaces.get(name)
        if ws["status"] != "running":
            raise Conflict(f"workspace {name!r} is {ws['status']}, not running: `perry start {name}` first")
        try:
            session = self._worker(name, "sessions", "get", session_id, *(["--agent", agent] if agent else []))
        except NotFound:
            raise NotFound(f"workspace {name!r} has no {agent + ' ' if agent else ''}session {session_id!r}") from None
        entry = agent_registry.AGENTS[session["agent"]]
        if ws.get("agents") is not None and entry.name not in ws["agents"]:
            raise Conflict(f"{entry.label} ({entry.cli}) is not installed in workspace {name!r} (its image has: "
                           f"{', '.join(ws['agents']) or 'no agents'}), so session {session_id!r} cannot be "
                           f"resumed there; build the image with `perry build --agents "
                           f"{','.join(agent_registry.canonical([*ws['agents'], entry.name]))}`",
                           code="agent_missing")
        return {"workspace": name, "sessionId": session_id, "agent": entry.name, "title": session.get("title"),
                "directory": session.get("directory") or ws.get("projectDir") or HOME_DIR,
                "command": entry.resume_argv(session_id)}

    def messages(self, name: str, session_id: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        if not (1 <= limit <= 1000) or offset < 0:
            raise InvalidInput("limit must be 1-1000 and offset 0 or more")
        return self._worker(name, "sessions", "messages", validate_session_id(session_id),
                            "--limit", str(limit), "--offset", str(offset))

    def send(self, name: str, session_id: str, text: Any, timeout: float = 300.0) -> dict[str, Any]:
        """Continue a conversation: the agent's reply, within ``timeout`` seconds."""
        validate_text(text, "text")
        session_id = validate_session_id(session_id)

        def publish(event: dict) -> None:  # the reply as it grows, for every listener
            if event.get("type") == "reply.part":
                self.events.publish("session.reply", name, data={"sessionId": session_id, "part": event.get("part")})

        with self.workspaces.activity.using(name):
            return self.workspaces.woken(name, lambda: run_worker(
                self.workspaces, name, "chat", session_id, f"--text={text}", "--timeout", str(timeout),
                "--stream", on_event=publish))

    def usage(self, name: str) -> dict[str, Any]:
        return self._worker(name, "usage")

    def usage_all(self) -> dict[str, Any]:
        """Usage of every running workspace, and the sum."""
        per_workspace = {}
        total = {"tokens": {}, "cost": 0.0}
        for ws in self.workspaces.list():
            if ws["status"] != "running":
                continue
            try:
                usage = self.usage(ws["name"])
            except PerryError as e:
                per_workspace[ws["name"]] = {"error": e.message}
                continue
            per_workspace[ws["name"]] = usage["total"]
            for key, value in (usage["total"].get("tokens") or {}).items():
                total["tokens"][key] = total["tokens"].get(key, 0) + (value or 0)
            total["cost"] += usage["total"].get("cost") or 0.0
        return {"workspaces": per_workspace, "total": total}

    def stop_all(self) -> None:
        self.watchers.stop_all()


class SessionWatchers:
    """Who listens for session changes, and the watcher execs that serve them.

    A listener asks for one workspace or for all. A workspace's watcher runs while
    anyone listens for it and it runs: it ends when the workspace stops or the last
    listener leaves, and comes back when a watched workspace runs again. The count
    of listeners is read from who subscribed, never kept apart, so it cannot drift.
    """

    def __init__(self, sessions: AgentSessions):
        self.sessions = sessions
        self._lock = threading.Lock()
        self._listeners: dict[Hashable, str | None] = {}
        self._watchers: dict[str, _Watcher] = {}
        sessions.events.subscribe(self._on_event)

    def subscribe(self, listener: Hashable, workspace: str | None) -> None:
        """``listener`` wants the session changes of ``workspace`` (None: of every workspace).

        Blocks: it asks Docker which of them run now."""
        if workspace is not None:
            validate_name(workspace)
        with self._lock:
            self._listeners[listener] = workspace
        try:
            if workspace is not None:
                running = [workspace] if self.sessions.workspaces.get(workspace)["status"] == "running" else []
            else:
                running = [w["name"] for w in self.sessions.workspaces.list() if w["status"] == "running"]
        except PerryError:
            return  # unknown yet, or no engine: its watcher starts when it runs
        for name in running:
            self._ensure(name)

    def unsubscribe(self, listener: Hashable) -> None:
        with self._lock:
            self._listeners.pop(listener, None)
            idle = [name for name in self._watchers if not self._count(name)]
            stopping = [self._watchers.pop(name) for name in idle]
        for watcher in stopping:
            watcher.stop()

    def stop_all(self) -> None:
        with self._lock:
            watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            watcher.stop()

    def _count(self, name: str) -> int:
        return sum(1 for wanted in self._listeners.values() if wanted is None or wanted == name)

    def _ensure(self, name: str) -> None:
        with self._lock:
            watcher = self._watchers.get(name)
            if not self._count(name) or (watcher is not None and watcher.alive):
                return
            watcher = self._watchers[name] = _Watcher(self.sessions, name)
            watcher.start()

    def _drop(self, name: str) -> None:
        with self._lock:
            watcher = self._watchers.pop(name, None)
        if watcher is not None:
            watcher.stop()

    def _on_event(self, event: Event) -> None:
        # A stopped workspace's exec is gone; a started one needs a new one.
        name = event.get("workspace")
        if name is None:
            return
        if event["type"] == "workspace.updated":
            if (event.get("data") or {}).get("status") == "running":
                self._ensure(name)
            else:
                self._drop(name)
        elif event["type"] == "workspace.deleted":
            self._drop(name)


class _Watcher(threading.Thread):
    """One `perry-worker sessions watch` exec, its lines turned into events."""

    def __init__(self, sessions: AgentSessions, name: str):
        super().__init__(name=f"perry-watch-{name}", daemon=True)
        self.sessions = sessions
        self.name_ = name
        self.alive = True
        self._stream = None
        self._stopping = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        manager = self.sessions.workspaces
        try:
            engine = manager.engine_of(self.name_)
            self._stream = engine.exec_stream(manager.naming.container(self.name_), WATCH_COMMAND,
                                              user="workspace", env={"HOME": HOME_DIR})
            if self._stopping.is_set():
                return
            for line in self._stream.lines():
                self._line(line)
        except Exception as e:  # the workspace stopped, the engine went away: the watch ends
            if not self._stopping.is_set():
                log.info("session watch of %s ended: %s", self.name_, e)
        finally:
            self.alive = False
            self.ready.set()
            self._close()

    def _line(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        kind = event.get("type")
        if kind == "watch.ready":
            self.ready.set()
            # Clients may want to know from when on they see every change.
            self.sessions.events.publish("sessions.watching", self.name_)
        elif kind in ("session.created", "session.updated"):
            self.sessions.events.publish(kind, self.name_, data=event.get("session"))

    def stop(self) -> None:
        self._stopping.set()
        self._close()

    def _close(self) -> None:
        if self._stream is not None:
            self._stream.close()  # stdin EOF: the watcher inside exits
