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
from perry_worker import source_digest

from .errors import Conflict, InvalidInput, NotFound, PerryError
from .events import Event, EventBus
from .names import HOME_DIR, validate_name, validate_text
from .worker import run_worker
from .workspaces import WorkspaceManager

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
# The watcher ends when its stdin closes: that is how Perry stops it, from any engine.
WATCH_COMMAND = ["sh", "-c", "perry-worker sessions watch & w=$!; cat >/dev/null; kill $w 2>/dev/null; wait $w"]
# Ends at its stdin's EOF (Perry closed it) or after 10 idle minutes.
LISTER_COMMAND = ["perry-worker", "sessions", "serve"]
LISTER_TIMEOUT = 60.0  # seconds one list may take on a lister before it is given up for a new exec


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
        self.listers = Listers(workspaces, events)

    # ---------------------------------------------------------------- reads

    def _worker(self, name: str, *args: str) -> Any:
        return run_worker(self.workspaces, name, *args)

    def list(self, name: str, agent: str | None = None) -> list[dict[str, Any]]:
        """Every session in the workspace (of ``agent``, when given), newest first.

        Asked of the workspace's lister (a long-lived `perry-worker sessions serve`), whose
        readers remember what they read: an unchanged store answers from memory in a round
        trip on an open exec. A new exec and a full read cost about 40 and 100+ ms at 1,000
        sessions. When the lister cannot answer (the workspace stopped, an older worker, an
        engine without hijacked streams), one `perry-worker sessions list` answers instead,
        with its errors."""
        agent = validate_agent(agent)
        ws = self.workspaces.get(name)
        if ws["status"] == "running":
            sessions = self.listers.ask(name, {"agent": agent})
            if sessions is not None:
                return sessions
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
        self.listers.stop_all()


class Listers:
    """One long-lived `perry-worker sessions serve` exec per workspace whose sessions were listed.

    Each keeps its readers' memory inside the workspace between two lists, so a list costs a
    line written to an open exec and one read back. A lister that fails (the workspace
    stopped or was replaced, its worker is older than this server, the engine went away) is
    closed and the next list starts a new one; the list it failed answers by a one-shot exec.
    """

    def __init__(self, workspaces: WorkspaceManager, events: EventBus):
        self.workspaces = workspaces
        self._lock = threading.Lock()
        self._listers: dict[str, _Lister] = {}
        self._starting: dict[str, threading.Lock] = {}
        events.subscribe(self._on_event)

    def ask(self, name: str, request: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The lister's sessions, or None when it could not answer (the caller asks otherwise)."""
        for _attempt in range(2):  # a lister that ended since the last list: once more with a new one
            lister = self._get(name)
            if lister is None:
                return None
            try:
                answer = lister.ask(request)
            except Exception as e:  # noqa: BLE001 - any failure means: a new lister, or none
                log.info("session lister of %s failed: %s", name, e)
                self._drop(name, lister)
                continue
            if isinstance(answer, dict) and isinstance(answer.get("sessions"), list):
                return answer["sessions"]
            self._drop(name, lister)  # a stale worker, a bad request: the one-shot exec says why
            return None
        return None

    def _get(self, name: str) -> _Lister | None:
        with self._lock:
            lister = self._listers.get(name)
            gate = self._starting.setdefault(name, threading.Lock())
        if lister is not None:
            return lister
        with gate:  # one exec per workspace, however many lists arrive at once
            with self._lock:
                lister = self._listers.get(name)
            if lister is not None:
                return lister
            try:
                engine = self.workspaces.engine_of(name)
                lister = _Lister(engine.exec_socket(
                    self.workspaces.naming.container(name), LISTER_COMMAND, user="workspace",
                    env={"HOME": HOME_DIR, "PERRY_WORKER_EXPECT": source_digest()}))
            except Exception as e:  # noqa: BLE001 - no lister: the one-shot exec answers
                log.info("no session lister for %s: %s", name, e)
                return None
            with self._lock:
                self._listers[name] = lister
            return lister

    def _drop(self, name: str, lister: _Lister | None = None) -> None:
        with self._lock:
            if lister is None or self._listers.get(name) is lister:
                lister = self._listers.pop(name, None)
        if lister is not None:
            lister.close()

    def stop_all(self) -> None:
        with self._lock:
            listers, self._listers = list(self._listers.values()), {}
        for lister in listers:
            lister.close()

    def _on_event(self, event: Event) -> None:
        # A stopped or deleted workspace's exec is gone with it.
        name = event.get("workspace")
        if name is None:
            return
        data = event.get("data") or {}
        if event["type"] == "workspace.deleted" or (event["type"] == "workspace.updated" and "status" in data
                                                     and data["status"] != "running"):
            self._drop(name)


class _Lister:
    """One `perry-worker sessions serve`: a JSON line out, a JSON line back, one at a time."""

    def __init__(self, sock: Any):
        self._sock = sock
        self._pending = b""
        self._lock = threading.Lock()
        if getattr(sock, "socket", None) is not None:
            sock.socket.settimeout(LISTER_TIMEOUT)  # a paused workspace must not hang a request

    def ask(self, request: dict[str, Any]) -> Any:
        with self._lock:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
            while b"\n" not in self._pending:
                chunk = self._sock.recv(1 << 20)
                if not chunk:
                    raise EOFError("the lister ended")
                self._pending += chunk
            line, self._pending = self._pending.split(b"\n", 1)
            if isinstance(getattr(self._sock, "stderr", None), bytearray):
                self._sock.stderr.clear()  # the readers' warnings: kept by no one, so not kept
        return json.loads(line)

    def close(self) -> None:
        self._sock.close()


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
