"""The core's side of changes without a Docker engine: what reaches perry-worker, what is refused
before it, and the changes.updated event a task's end sends (which never breaks the task)."""

from __future__ import annotations

import time

import pytest

from perry_jupyter.core.changes import Changes
from perry_jupyter.core.errors import InvalidInput, PerryError
from perry_jupyter.core.events import EventBus
from perry_jupyter.core.tasks import TaskManager
from tests.fake_engine import TEST_PREFIX, FakeEngine, make_manager, worker, workspace_labels

SUMMARY = {"state": "branch", "branch": "main", "totals": {"files": 2, "added": 5, "removed": 1},
           "head": {"sha": "a" * 40, "subject": "s"}, "files": []}


class Worker:
    def __init__(self):
        self.calls: list[list[str]] = []
        self.changes: dict | PerryError = SUMMARY
        self.task = {"status": "running"}

    def __call__(self, args: list[str]):
        self.calls.append(args)
        if args[:1] == ["changes"]:
            if isinstance(self.changes, PerryError):
                raise self.changes
            return self.changes
        if args[:2] == ["task", "start"]:
            return {"id": args[args.index("--id") + 1], "status": "running"}
        if args[:2] == ["task", "status"]:
            return {"id": args[2], **self.task}
        raise AssertionError(f"unexpected worker call {args}")


@pytest.fixture
def setup(tmp_path):
    engine = FakeEngine()
    engine.add_container(f"{TEST_PREFIX}w", labels=workspace_labels("w"))
    answers = Worker()
    engine.on_exec = worker(answers)
    bus = EventBus()
    events: list[dict] = []
    bus.subscribe(events.append)
    workspaces = make_manager(tmp_path, engine)
    changes = Changes(workspaces, bus)
    tasks = TaskManager(workspaces, workspaces.store, bus, on_end=changes.task_ended)
    yield changes, tasks, answers, events
    tasks.close()


def test_what_reaches_the_worker(setup):
    changes, _, answers, _ = setup
    changes.state("w")
    changes.state("w", "proj/sub", commits=3)
    changes.diff("w", file="--x", base="HEAD~2", directory="/home/workspace/proj", max_bytes=100)
    assert answers.calls == [
        ["changes", "--dir=/home/workspace", "--commits", "10"],
        ["changes", "--dir=/home/workspace/proj/sub", "--commits", "3"],
        ["changes", "diff", "--dir=/home/workspace/proj", "--max-bytes", "100", "--file=--x", "--base=HEAD~2"],
    ]


@pytest.mark.parametrize("call, words", [
    (lambda c: c.state("w", "../etc"), "outside the workspace's home"),
    (lambda c: c.state("w", "/etc"), "outside the workspace's home"),
    (lambda c: c.state("w", "a\x00b"), "NUL"),
    (lambda c: c.state("w", commits=101), "commits must be 0-100"),
    (lambda c: c.diff("w", base="--output=/tmp/x"), "not a git revision"),
    (lambda c: c.diff("w", file="a\nb"), "printable"),
    (lambda c: c.diff("w", max_bytes=0), "maxBytes"),
    (lambda c: c.state("Bad_Name"), "invalid workspace name"),
])
def test_bad_input_is_refused_before_the_worker(setup, call, words):
    changes, _, answers, _ = setup
    with pytest.raises(InvalidInput, match=words):
        call(changes)
    assert answers.calls == []


def until(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    return result


def test_a_task_end_publishes_the_changes_once_after_the_task(setup, monkeypatch):
    monkeypatch.setattr("perry_jupyter.core.tasks.POLL_INTERVAL", 0.01)
    _, tasks, answers, events = setup
    task = tasks.dispatch("w", agent="opencode", prompt="p")
    answers.task = {"status": "succeeded", "exitCode": 0, "ended": "E"}
    until(lambda: any(e["type"] == "changes.updated" for e in events))
    time.sleep(0.1)
    kinds = [e["type"] for e in events if e["type"] in ("changes.updated", "task.updated")]
    assert kinds.count("changes.updated") == 1
    assert kinds[-1] == "changes.updated"  # after the task's final update
    [event] = [e for e in events if e["type"] == "changes.updated"]
    assert event["workspace"] == "w" and event["data"]["taskId"] == task["id"]
    assert event["data"]["totals"] == SUMMARY["totals"] and event["data"]["branch"] == "main"
    assert ["changes", "--dir=/home/workspace", "--commits", "1"] in answers.calls


def test_a_failed_read_still_tells_and_never_breaks_the_task(setup, monkeypatch):
    monkeypatch.setattr("perry_jupyter.core.tasks.POLL_INTERVAL", 0.01)
    _, tasks, answers, events = setup
    answers.changes = PerryError("git broke", code="git_error")
    task = tasks.dispatch("w", agent="opencode", prompt="p")
    answers.task = {"status": "failed", "exitCode": 1, "ended": "E", "error": "boom"}
    event = until(lambda: next((e for e in events if e["type"] == "changes.updated"), None))
    assert "git broke" in event["data"]["error"] and "totals" not in event["data"]
    assert tasks.get("w", task["id"])["status"] == "failed"
