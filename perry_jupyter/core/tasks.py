"""Dispatched agent tasks: started in the workspace, followed, and called back when done.

The task itself runs inside the workspace under perry_worker's runner, so it
outlives this server; what Perry promised (the task, its callback and whether
that was delivered) lives in the state file, so a restarted server picks up
where the last one left: it learns the real final status from the workspace
and sends a callback that is still owed, once.
"""

from __future__ import annotations

import copy
import logging
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import requests

from perry_worker import agents as agent_registry

from .errors import Conflict, EngineUnavailable, InvalidInput, NotFound, PerryError
from .events import EventBus
from .names import HOME_DIR, validate_name, validate_text
from .sessions import validate_agent_name, validate_session_id
from .state import StateStore
from .worker import run_worker
from .workspaces import WorkspaceManager

log = logging.getLogger(__name__)

FINAL = ("succeeded", "failed", "cancelled")
TASK_ID = re.compile(r"tsk_[0-9a-f]{16}")
MODEL = re.compile(r"[\w./:@-]{1,200}")
CALLBACK_ATTEMPTS = 10
POLL_INTERVAL = 1.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public(task: dict[str, Any]) -> dict[str, Any]:
    """A task as the API shows it: the callback's token never leaves the server."""
    out = copy.deepcopy(task)
    callback = out.get("callback")
    if callback:
        callback.pop("token", None)
        callback.pop("nextAttempt", None)
    return out


def _validate_callback(callback: object) -> dict[str, Any] | None:
    if callback is None:
        return None
    if not isinstance(callback, Mapping) or not isinstance(callback.get("url"), str):
        raise InvalidInput("callback must be an object with a url (and optionally a token)")
    url = callback["url"]
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise InvalidInput(f"callback url {url!r} must be an http(s) URL")
    token = callback.get("token")
    if token is not None and not (isinstance(token, str) and token.isascii() and token.isprintable()):
        raise InvalidInput("callback token must be a string of printable ASCII characters (it is sent "
                           "in an HTTP Authorization header)")
    unknown = sorted(set(callback) - {"url", "token"})
    if unknown:
        raise InvalidInput(f"unknown callback field(s) {', '.join(unknown)}")
    return {"url": url, "token": token, "delivered": False, "attempts": 0, "lastError": None,
            "deliveredAt": None, "nextAttempt": 0.0}


def _running(workspaces: Any, name: str) -> dict[str, Any]:
    """Workspace ``name`` if it runs: 503 when its engine is unreachable, 409 when it is not running."""
    ws = workspaces.get(name)
    workspaces.require_reachable(ws)
    if ws["status"] != "running":
        raise Conflict(f"workspace {ws['name']!r} is {ws['status']}, not running: `perry start {ws['name']}` first")
    return ws


class TaskManager:
    def __init__(self, workspaces: WorkspaceManager, store: StateStore, events: EventBus,
                 post: Callable[..., Any] = requests.post,
                 on_end: Callable[[dict[str, Any]], None] | None = None):
        """``on_end(task)`` runs once a task reaches a final status (after its task.updated)."""
        self.workspaces = workspaces
        self._on_end = on_end
        self.store = store
        self.events = events
        self._post = post
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        # Tasks whose `task start` is under way: the workspace may not know them yet, so the poller
        # leaves them alone (it would fail them as "never started") and a cancel is passed on after.
        self._starting: set[str] = set()

    # -------------------------------------------------------------- the API

    def dispatch(self, name: str, *, agent: Any = agent_registry.DEFAULT, prompt: Any = None, session_id: Any = None,
                 model: Any = None, callback: Any = None) -> dict[str, Any]:
        validate_name(name)
        validate_agent_name(agent)
        validate_text(prompt, "prompt")
        if session_id is not None:
            validate_session_id(session_id)
        if model is not None and (not isinstance(model, str) or not MODEL.fullmatch(model)):
            raise InvalidInput(f"invalid model {model!r}")
        callback = _validate_callback(callback)
        ws = self.workspaces.woken(name, lambda: _running(self.workspaces, name))
        if ws.get("agents") is not None and agent not in ws["agents"]:
            wanted = ",".join(agent_registry.canonical([*ws["agents"], agent]))
            raise Conflict(f"{agent} is not installed in workspace {name!r} (its image has: "
                           f"{', '.join(ws['agents']) or 'no agents'}); build the image with "
                           f"`perry build --agents {wanted}` and create the workspace again",
                           code="agent_missing")
        if session_id is not None:
            try:  # a task that continues a session nobody has would only fail once started
                self._worker(name, "sessions", "get", session_id, "--agent", agent)
            except NotFound:
                raise NotFound(f"workspace {name!r} has no {agent} session {session_id!r}") from None

        task = {
            "id": f"tsk_{secrets.token_hex(8)}", "workspace": name, "agent": agent, "prompt": prompt,
            "model": model, "sessionId": session_id, "directory": ws.get("projectDir") or HOME_DIR,
            "status": "queued", "created": _now(), "started": None, "ended": None, "exitCode": None,
            "summary": None, "outputTail": [], "error": None, "callback": callback,
        }
        self._save(task)  # promised before anything runs: a crash now is a task that never started
        self.events.publish("task.created", name, data=public(task))
        args = ["task", "start", "--id", task["id"], "--agent", agent, "--dir", task["directory"],
                f"--prompt={prompt}"]  # one argument: a prompt starting with "--" is not an option
        if session_id:
            args += ["--session", session_id]
        if model:
            args += ["--model", model]
        self._starting.add(task["id"])
        try:
            started = self._worker(name, *args)
        except PerryError as e:
            task = self._update(task["id"], status="failed", ended=_now(), error=e.message)
        else:
            task = self._merge(task["id"], started)
            if task["status"] == "cancelled" and started.get("status") not in FINAL:
                # Cancelled while it was being started: the workspace did not know it then, it does now.
                task = self._merge(task["id"], self._worker(name, "task", "cancel", task["id"]))
        finally:
            self._starting.discard(task["id"])
        self._ensure_thread()
        return public(task)

    def list(self, name: str) -> list[dict[str, Any]]:
        self.workspaces.get(name)
        tasks = [t for t in self._tasks().values() if t["workspace"] == name]
        return [public(t) for t in sorted(tasks, key=lambda t: t["created"], reverse=True)]

    def get(self, name: str, task_id: str) -> dict[str, Any]:
        validate_name(name)
        task = self._tasks().get(task_id) if isinstance(task_id, str) else None
        if task is None or task["workspace"] != name:
            raise NotFound(f"workspace {name!r} has no task {task_id!r}")
        return public(task)

    def cancel(self, name: str, task_id: str) -> dict[str, Any]:
        task = self.get(name, task_id)
        if task["status"] in FINAL:
            return task
        try:
            result = self._worker(name, "task", "cancel", task_id)
        except NotFound:
            result = {"status": "cancelled", "ended": _now()}
        task = self._merge(task_id, result)
        self._wake.set()
        return public(task)

    # --------------------------------------------------------- output

    def output(self, name: str, task_id: str, offset: int = 0) -> dict[str, Any]:
        """The task's output from byte ``offset`` on (whole lines), the next offset, its status."""
        self.get(name, task_id)
        if not isinstance(offset, int) or offset < 0:
            raise InvalidInput("offset must be a whole number of bytes, 0 or more")
        return self._worker(name, "task", "output", task_id, "--offset", str(offset))

    def follow_output(self, name: str, task_id: str, on_text: Callable[[str], None],
                      stop: threading.Event, interval: float = 0.5) -> dict[str, Any] | None:
        """Hand the task's output to ``on_text`` from the start and as it grows, until the task
        ends (its last status is returned) or ``stop`` is set (None)."""
        offset = 0
        while True:
            try:
                part = self.output(name, task_id, offset)
            except Conflict:
                return {"status": self.get(name, task_id)["status"], "reason": "the workspace stopped"}
            if part["output"]:
                on_text(part["output"])
            offset = part["offset"]
            if part["ended"]:
                # Taken in now, not at the next poll: whoever followed it to its end reads it ended.
                self._merge(task_id, self._worker(name, "task", "status", task_id))
                return {"status": part["status"], "reason": "the task ended"}
            if stop.wait(interval):
                return None

    # --------------------------------------------------------- following

    def resume(self) -> None:
        """After a (re)start: follow unfinished tasks and owed callbacks."""
        if any(self._needs_attention(t) for t in self._tasks().values()):
            self._ensure_thread()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()

    def _ensure_thread(self) -> None:
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="perry-tasks", daemon=True)
                self._thread.start()
        self._wake.set()

    @staticmethod
    def _needs_attention(task: dict[str, Any]) -> bool:
        callback = task.get("callback")
        owed = callback is not None and not callback["delivered"] and callback["attempts"] < CALLBACK_ATTEMPTS
        return task["status"] not in FINAL or (task["status"] in FINAL and owed)

    def _loop(self) -> None:
        while not self._stop.is_set():
            pending = [t for t in self._tasks().values() if self._needs_attention(t)]
            if not pending:
                return  # the next dispatch starts a new one
            for task in pending:
                if task["id"] in self._starting:
                    continue
                try:
                    if task["status"] not in FINAL:
                        self._poll(task)
                    else:
                        self._deliver(task)
                except Exception:
                    log.exception("following task %s", task["id"])
            self._wake.wait(POLL_INTERVAL)
            self._wake.clear()

    def _poll(self, task: dict[str, Any]) -> None:
        name = task["workspace"]
        engine = self.workspaces.engine_name(name)
        # An engine known to be down is not asked (that would hold up the other tasks for its
        # connection timeout): the engines' probe notices its return.
        down = self.workspaces.engines.unreachable(engine)
        if down is None:
            try:
                result = self._worker(name, "task", "status", task["id"])
            except NotFound as e:
                gone = "the workspace no longer exists" if "does not exist" in e.message else \
                    "the workspace has no record of it (it never started)"
                result = {"status": "failed", "ended": _now(), "error": gone}
            except Conflict:
                result = {"status": "failed", "ended": _now(), "error": "the workspace stopped while the task ran"}
            except EngineUnavailable as e:
                down = e.message
            except PerryError as e:
                log.info("task %s: cannot reach its workspace yet: %s", task["id"], e.message)
                return
        if down is not None:
            self._engine_down(task, engine, down)
            return
        if task.get("engineDown"):
            log.info("task %s: engine %s is back", task["id"], engine)
            self._update(task["id"], engineDown=None)
        updated = self._merge(task["id"], result)
        if updated["status"] in FINAL:
            self._deliver(updated)

    def _engine_down(self, task: dict[str, Any], engine: str, why: str) -> None:
        """The task's engine is unreachable: its record stays, and it is followed again once the engine
        is back; after ``engine_down_task_timeout`` seconds it is marked failed and called back."""
        since = (task.get("engineDown") or {}).get("since")
        if since is None:
            log.warning("task %s: its engine %s is unreachable; following it again when it is back", task["id"], engine)
            self._update(task["id"], engineDown={"engine": engine, "since": _now()})
            return
        timeout = self.workspaces.settings.engine_down_task_timeout
        if (datetime.now(timezone.utc) - datetime.fromisoformat(since)).total_seconds() < timeout:
            return
        self._update(task["id"], engineDown=None)
        failed = self._merge(task["id"], {
            "status": "failed", "ended": _now(),
            "error": f"engine {engine!r} was unreachable for more than {timeout:g} s (since {since}), so what became "
                     f"of the task there is unknown (PerryApp.engine_down_task_timeout); last error: {why}"})
        self._deliver(failed)

    def _deliver(self, task: dict[str, Any]) -> None:
        callback = task.get("callback")
        if not callback or callback["delivered"] or time.time() < callback.get("nextAttempt", 0):
            return
        verb = {"succeeded": "Done", "failed": "Failed", "cancelled": "Cancelled"}[task["status"]]
        # A failed task's words are its error line: whatever the agent said last is not why it failed.
        summary = (task.get("error") if task["status"] == "failed" else None) or task.get("summary") or \
            task.get("error") or f"{task['agent']} task in {task['workspace']}"
        payload = {"text": f"{verb}: {summary}", "mode": "now", "task": public(task)}
        # Delivery is at least once (a crash between the answer and saving it repeats the POST):
        # the key lets a receiver drop the repeat.
        headers = {"Idempotency-Key": task["id"]}
        if callback.get("token"):
            headers["Authorization"] = f"Bearer {callback['token']}"
        attempts = callback["attempts"] + 1
        try:
            response = self._post(callback["url"], json=payload, headers=headers, timeout=10)
            ok = 200 <= response.status_code < 300
            error = None if ok else f"HTTP {response.status_code}"
        except requests.RequestException as e:
            ok, error = False, type(e).__name__
        changes = {"attempts": attempts, "lastError": error}
        if ok:
            changes.update(delivered=True, deliveredAt=_now())
        else:
            # 1, 2, 4 ... 60 s between tries.
            changes["nextAttempt"] = time.time() + min(2 ** (attempts - 1), 60)
            log.info("callback for task %s failed (%s), attempt %d", task["id"], error, attempts)
        with self.store.transaction() as data:
            stored = data.setdefault("tasks", {}).get(task["id"])
            if stored is not None and stored.get("callback"):
                stored["callback"].update(changes)
                task = copy.deepcopy(stored)
        self.events.publish("task.updated", task["workspace"], data=public(task))

    # ------------------------------------------------------------ storage

    def _worker(self, name: str, *args: str) -> dict[str, Any]:
        return run_worker(self.workspaces, name, *args)

    def _tasks(self) -> dict[str, dict[str, Any]]:
        return self.store.read().get("tasks", {})

    def _save(self, task: dict[str, Any]) -> None:
        with self.store.transaction() as data:
            data.setdefault("tasks", {})[task["id"]] = task

    def _update(self, task_id: str, **changes: Any) -> dict[str, Any]:
        with self.store.transaction() as data:
            task = data.setdefault("tasks", {})[task_id]
            task.update(changes)
            result = copy.deepcopy(task)
        self.events.publish("task.updated", result["workspace"], data=public(result))
        return result

    def _merge(self, task_id: str, worker_view: Mapping[str, Any]) -> dict[str, Any]:
        """Take what the workspace says of the task; publish only when something changed."""
        fields = ("status", "started", "ended", "exitCode", "sessionId", "summary", "outputTail", "error")
        with self.store.transaction() as data:
            task = data.setdefault("tasks", {})[task_id]
            before = {k: task.get(k) for k in fields}
            if task["status"] in FINAL and worker_view.get("status") not in FINAL:
                # An end Perry recorded (a cancel before the workspace knew the task) is not undone
                # by an older answer saying it runs.
                worker_view = {k: v for k, v in worker_view.items() if k in ("sessionId", "outputTail")}
            for key in fields:
                if key in worker_view and (worker_view[key] is not None or key in ("error",)):
                    task[key] = worker_view[key]
            if task["status"] == "queued" and worker_view.get("status"):
                task["status"] = worker_view["status"]
            changed = before != {k: task.get(k) for k in fields}
            result = copy.deepcopy(task)
        if changed:
            self.events.publish("task.updated", result["workspace"], data=public(result))
        if self._on_end is not None and before["status"] not in FINAL and result["status"] in FINAL:
            try:  # what follows a task's end must not break telling of it
                self._on_end(public(result))
            except Exception:
                log.exception("after task %s ended", task_id)
        return result
