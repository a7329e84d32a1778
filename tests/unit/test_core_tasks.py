"""Tasks without a Docker engine: the worker's answers merged into what Perry promised, and the
callback's back-off against a real local HTTP receiver on a clock the test moves."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from perry_jupyter.core import tasks as tasks_mod
from perry_jupyter.core.errors import NotFound, PerryError
from perry_jupyter.core.events import EventBus
from perry_jupyter.core.tasks import TaskManager
from tests.fake_engine import TEST_PREFIX, FakeEngine, make_manager, worker, workspace_labels


def until(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    return result


class Worker:
    """perry-worker's task commands, answering what the test sets."""

    def __init__(self):
        self.started: dict = {"status": "running", "started": "2026-11-29T10:00:00Z"}
        self.status: dict | PerryError = {"status": "running"}

    def __call__(self, args: list[str]):
        if args[:2] == ["task", "start"]:
            if isinstance(self.started, PerryError):
                raise self.started
            return {"id": args[args.index("--id") + 1], **self.started}
        if args[:2] == ["task", "status"]:
            if isinstance(self.status, PerryError):
                raise self.status
            return {"id": args[2], **self.status}
        if args[:2] == ["sessions", "get"]:
            return {"sessionId": args[2], "agent": args[4]}
        raise AssertionError(f"unexpected worker call {args}")


@pytest.fixture
def engine() -> FakeEngine:
    e = FakeEngine()
    e.add_container(f"{TEST_PREFIX}w", labels=workspace_labels("w"))
    return e


@pytest.fixture
def answers(engine) -> Worker:
    w = Worker()
    engine.on_exec = worker(w)
    return w


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    now = [1_000_000.0]
    monkeypatch.setattr(tasks_mod, "time", SimpleNamespace(time=lambda: now[0]))
    monkeypatch.setattr(tasks_mod, "POLL_INTERVAL", 0.01)
    return now


@pytest.fixture
def events() -> list[dict]:
    return []


@pytest.fixture
def manager(tmp_path, engine, answers, clock, events):
    bus = EventBus()
    bus.subscribe(lambda e: e["type"].startswith("task.") and events.append(e))
    workspaces = make_manager(tmp_path, engine)
    tasks = TaskManager(workspaces, workspaces.store, bus)
    yield tasks
    tasks.close()


def updates(events, task_id):
    return [e["data"] for e in events if e["type"] == "task.updated" and e["data"]["id"] == task_id]


def test_the_workers_answers_are_merged_into_the_task_and_only_changes_are_published(manager, answers, events):
    answers.started = {"status": "running", "started": "S", "sessionId": None, "summary": None}
    task = manager.dispatch("w", agent="opencode", prompt="do it", session_id="ses_given")
    assert (task["status"], task["started"], task["sessionId"]) == ("running", "S", "ses_given")
    assert task["directory"] == "/home/workspace" and task["prompt"] == "do it"

    answers.status = {"status": "running", "outputTail": ["working"], "summary": None}
    until(lambda: len(updates(events, task["id"])) == 2)
    time.sleep(0.1)  # many polls of the same answer
    assert len(updates(events, task["id"])) == 2  # the start, the output: no repeats

    answers.status = {"status": "succeeded", "ended": "E", "exitCode": 0, "summary": "done", "sessionId": None,
                      "error": None}
    done = until(lambda: (t := manager.get("w", task["id"]))["status"] == "succeeded" and t)
    # A value the worker does not know (None) keeps what Perry knew.
    assert (done["sessionId"], done["summary"], done["exitCode"], done["ended"]) == ("ses_given", "done", 0, "E")
    assert done["outputTail"] == ["working"] and done["error"] is None
    until(lambda: len(updates(events, task["id"])) == 3)
    time.sleep(0.05)
    assert len(updates(events, task["id"])) == 3 and updates(events, task["id"])[-1]["status"] == "succeeded"
    assert [e["type"] for e in events][0] == "task.created"


def test_a_prompt_that_looks_like_an_option_reaches_the_worker_as_the_prompt(manager, engine, answers):
    # Found by the fuzz run: "--help" as a prompt was read by the worker as its own option.
    from perry_worker.__main__ import build_parser

    manager.dispatch("w", agent="opencode", prompt="--help")
    start = next(e["command"] for e in engine.execs if e["command"][1:3] == ["task", "start"])
    assert build_parser().parse_args([c for c in start[1:] if c != "--json"]).prompt == "--help"


def test_a_start_the_worker_refuses_is_a_failed_task_with_the_reason(manager, answers):
    answers.started = PerryError("the agent crashed", code="agent_failed")
    task = manager.dispatch("w", agent="opencode", prompt="do it")
    assert task["status"] == "failed" and task["ended"]
    assert task["error"] == "the agent crashed"  # the agent's own line, nothing wrapped around it


def test_a_workspace_stopped_under_a_running_task_fails_it(manager, engine, answers):
    task = manager.dispatch("w", agent="opencode", prompt="do it")
    assert task["status"] == "running"
    engine.stop(f"{TEST_PREFIX}w", timeout=1)
    failed = until(lambda: (t := manager.get("w", task["id"]))["status"] == "failed" and t)
    assert failed["error"] == "the workspace stopped while the task ran"


def test_a_task_cancelled_while_it_is_being_started_is_cancelled_in_the_workspace_too(manager, engine, answers):
    # Found on the phone page: the worker's "running" from a slow start overwrote the cancel.
    release, starting = threading.Event(), threading.Event()
    cancelled_in_workspace: list[str] = []

    def slow_worker(args: list[str]):
        if args[:2] == ["task", "start"]:
            starting.set()
            release.wait(5)
        if args[:2] == ["task", "cancel"]:
            if not release.is_set():  # the workspace has no such task yet
                raise NotFound(f"no task {args[2]!r}")
            cancelled_in_workspace.append(args[2])
            return {"id": args[2], "status": "cancelled", "ended": "C"}
        return answers(args)

    engine.on_exec = worker(slow_worker)
    dispatched: list[dict] = []
    thread = threading.Thread(target=lambda: dispatched.append(manager.dispatch("w", agent="opencode", prompt="p")))
    thread.start()
    assert starting.wait(5)
    task_id = next(iter(manager.store.read()["tasks"]))
    time.sleep(0.05)  # the poller runs meanwhile: a task being started is not "never started"
    assert manager.cancel("w", task_id)["status"] == "cancelled"
    release.set()
    thread.join(5)
    assert dispatched[0]["status"] == "cancelled"
    assert cancelled_in_workspace == [task_id]
    time.sleep(0.05)
    assert manager.get("w", task_id)["status"] == "cancelled"


class Receiver:
    """A real HTTP endpoint on loopback answering each callback with the next status of ``codes``."""

    def __init__(self, codes: list[int]):
        self.codes = codes
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver([503, 500])
    yield r
    r.close()


def test_callback_backs_off_1_then_2_seconds_and_is_delivered_once(manager, answers, receiver, clock):
    answers.started = {"status": "succeeded", "ended": "E", "exitCode": 0, "summary": "all done"}
    task = manager.dispatch("w", agent="opencode", prompt="do it",
                            callback={"url": receiver.url, "token": "sekrit"})
    stored = lambda: manager.store.read()["tasks"][task["id"]]["callback"]  # noqa: E731

    until(lambda: stored()["attempts"] == 1)
    assert stored()["lastError"] == "HTTP 503" and stored()["nextAttempt"] == clock[0] + 1
    time.sleep(0.1)
    clock[0] += 0.5
    time.sleep(0.1)
    assert len(receiver.requests) == 1  # not before its time

    clock[0] += 0.5
    until(lambda: stored()["attempts"] == 2)
    assert stored()["lastError"] == "HTTP 500" and stored()["nextAttempt"] == clock[0] + 2
    clock[0] += 1
    time.sleep(0.1)
    assert len(receiver.requests) == 2

    clock[0] += 1
    until(lambda: stored()["delivered"])
    assert stored()["attempts"] == 3 and stored()["lastError"] is None and stored()["deliveredAt"]
    clock[0] += 100
    time.sleep(0.1)
    assert len(receiver.requests) == 3  # delivered: never again

    sent = receiver.requests[-1]
    assert sent["body"]["text"] == "Done: all done" and sent["body"]["task"]["id"] == task["id"]
    assert sent["headers"]["Authorization"] == "Bearer sekrit"
    assert sent["headers"]["Idempotency-Key"] == task["id"]
    # The token stays on the server.
    shown = manager.get("w", task["id"])["callback"]
    assert "token" not in shown and "nextAttempt" not in shown and "sekrit" not in json.dumps(sent["body"])


def test_callback_gives_up_after_its_attempts(manager, answers, clock, monkeypatch):
    monkeypatch.setattr(tasks_mod, "CALLBACK_ATTEMPTS", 2)
    closed = Receiver([])
    closed.close()  # nobody listens there any more
    answers.started = {"status": "failed", "ended": "E", "exitCode": 1, "error": "tests fail"}
    task = manager.dispatch("w", agent="opencode", prompt="do it", callback={"url": closed.url})
    stored = lambda: manager.store.read()["tasks"][task["id"]]["callback"]  # noqa: E731
    until(lambda: stored()["attempts"] == 1)
    assert stored()["lastError"] == "ConnectionError"
    clock[0] += 1
    until(lambda: stored()["attempts"] == 2)
    clock[0] += 1000
    time.sleep(0.1)
    assert stored()["attempts"] == 2 and not stored()["delivered"]
    until(lambda: not manager._thread.is_alive())
