"""`perry-worker sessions watch` as a real process: events within about a second of a change."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from perry_worker import watch
from tests.fixtures.worker_homes import CLAUDE_P, CODEX_REAL, OC_SESSION, claude_dir, make_home, oc_db_path

REPO = Path(__file__).resolve().parents[2]
PROMPT_DEADLINE = 1.5  # "within ~1 s": the poll interval is 0.5 s, leave room for a slow CI


class Watcher:
    def __init__(self, home: Path, *extra: str, pump: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "perry_worker", "--home", str(home), "sessions", "watch", *extra],
            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)))
        self.lines: "queue.Queue[dict]" = queue.Queue()
        if pump:
            threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, timeout: float) -> dict:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no watch event within %.1f s" % timeout) from None

    def expect(self, kind: str, session_id: str, timeout: float = PROMPT_DEADLINE) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if event["type"] == kind and event["session"]["sessionId"] == session_id:
                return event

    def quiet(self, seconds: float) -> None:
        try:
            event = self.lines.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError("unexpected event %r" % event)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)


@pytest.fixture
def home(tmp_path):
    return make_home(tmp_path)


@pytest.fixture
def watcher(home):
    w = Watcher(home)
    yield w
    w.stop()


def line(**rec) -> str:
    return json.dumps(rec) + "\n"


def test_claude_session_created_then_updated(home, watcher):
    assert watcher.next(10) == {"type": "watch.ready"}
    watcher.quiet(0.8)  # what was there before is not announced
    sid = "77777777-0000-4000-8000-000000000001"
    path = claude_dir(home) / (sid + ".jsonl")
    base = {"sessionId": sid, "cwd": "/home/workspace/new", "isSidechain": False, "version": "2.1.197"}
    t0 = time.monotonic()
    with open(path, "a") as f:
        f.write(line(type="queue-operation", operation="enqueue", sessionId=sid, timestamp="2026-12-01T00:00:00.000Z"))
        f.write(line(type="user", uuid="u1", parentUuid=None, timestamp="2026-12-01T00:00:01.000Z",
                     message={"role": "user", "content": "Build the thing"}, **base))
    created = watcher.expect("session.created", sid)
    assert time.monotonic() - t0 < PROMPT_DEADLINE
    assert created["session"]["title"] == "Build the thing" and created["session"]["messageCount"] == 1
    assert created["session"]["agent"] == "claude"
    t0 = time.monotonic()
    with open(path, "a") as f:
        f.write(line(type="assistant", uuid="a1", parentUuid="u1", timestamp="2026-12-01T00:00:02.000Z",
                     message={"id": "msg_1", "role": "assistant", "content": [{"type": "text", "text": "On it."}],
                              "usage": {"input_tokens": 100, "output_tokens": 7}}, **base))
    updated = watcher.expect("session.updated", sid)
    assert time.monotonic() - t0 < PROMPT_DEADLINE
    s = updated["session"]
    assert s["messageCount"] == 2 and s["lastActivity"] == "2026-12-01T00:00:02.000Z"
    assert s["tokens"]["input"] == 100 and s["tokens"]["output"] == 7
    # A bookkeeping line changes neither the count nor the activity: no event.
    with open(path, "a") as f:
        f.write(line(type="last-prompt", lastPrompt="Build the thing", sessionId=sid))
    watcher.quiet(1.0)
    # An existing session gets a new message.
    t0 = time.monotonic()
    old = claude_dir(home) / (CLAUDE_P + ".jsonl")
    leaf = [json.loads(x) for x in old.read_text().splitlines() if '"uuid"' in x][-1]["uuid"]
    with open(old, "a") as f:
        f.write(line(type="user", uuid="u9", parentUuid=leaf, timestamp="2026-12-01T00:00:03.000Z",
                     message={"role": "user", "content": "more"}, sessionId=CLAUDE_P, isSidechain=False))
    assert watcher.expect("session.updated", CLAUDE_P)["session"]["messageCount"] == 6
    assert time.monotonic() - t0 < PROMPT_DEADLINE
    assert watcher.stop() == 0
    assert watcher.proc.stderr.read() == ""


def test_opencode_sqlite_and_codex_changes(home, watcher):
    assert watcher.next(10) == {"type": "watch.ready"}
    db = sqlite3.connect(str(oc_db_path(home)))  # WAL, as OpenCode writes it
    now = int(time.time() * 1000)
    t0 = time.monotonic()
    db.execute("INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?, ?, ?, ?, ?)",
               ("msg_new1", OC_SESSION, now, now, json.dumps({"role": "user", "time": {"created": now}})))
    db.commit()
    event = watcher.expect("session.updated", OC_SESSION)
    assert time.monotonic() - t0 < PROMPT_DEADLINE
    assert event["session"]["messageCount"] == 8
    t0 = time.monotonic()
    db.execute("INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated) "
               "VALUES ('ses_new', 'global', 'new-one', '/home/workspace/x', 'New session', '1.18.33', ?, ?)",
               (now + 1, now + 1))
    db.execute("INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?, ?, ?, ?, ?)",
               ("msg_new2", "ses_new", now + 2, now + 2, json.dumps({"role": "user"})))
    db.commit()
    created = watcher.expect("session.created", "ses_new")
    assert time.monotonic() - t0 < PROMPT_DEADLINE
    assert created["session"]["title"] == "New session" and created["session"]["messageCount"] == 1
    # The title OpenCode generates afterwards updates the session too.
    db.execute("UPDATE session SET title = 'Named', time_updated = ? WHERE id = 'ses_new'", (now + 3,))
    db.commit()
    assert watcher.expect("session.updated", "ses_new")["session"]["title"] == "Named"
    db.execute("DELETE FROM message WHERE session_id = 'ses_new'")
    db.execute("DELETE FROM session WHERE id = 'ses_new'")
    db.commit()
    db.close()
    assert watcher.expect("session.deleted", "ses_new")["session"] == {"sessionId": "ses_new", "agent": "opencode"}
    rollout = next((home / ".codex" / "sessions").rglob("*%s.jsonl" % CODEX_REAL))
    t0 = time.monotonic()
    with open(rollout, "a") as f:
        f.write(line(timestamp="2026-12-01T00:00:00.000Z", type="response_item",
                     payload={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}))
    assert watcher.expect("session.updated", CODEX_REAL)["session"]["messageCount"] == 6
    assert time.monotonic() - t0 < PROMPT_DEADLINE


def test_stores_that_appear_after_the_start(tmp_path):
    home = tmp_path / "empty"
    home.mkdir()
    w = Watcher(home, "--interval", "0.2")
    try:
        assert w.next(10) == {"type": "watch.ready"}
        full = make_home(tmp_path / "src")
        os.rename(str(full / ".claude"), str(home / ".claude"))
        os.rename(str(full / ".local"), str(home / ".local"))
        created = set()
        deadline = time.monotonic() + 3
        while len(created) < 7 and time.monotonic() < deadline:
            event = w.next(deadline - time.monotonic())
            assert event["type"] == "session.created"
            created.add(event["session"]["sessionId"])
        assert len(created) == 7  # 4 Claude, 2 OpenCode SQLite, 1 OpenCode JSON
    finally:
        assert w.stop() == 0


def test_closed_stdout_ends_the_watch_quietly(home):
    w = Watcher(home, "--interval", "0.1", pump=False)  # a reader thread would block close()
    assert json.loads(w.proc.stdout.readline()) == {"type": "watch.ready"}
    w.proc.stdout.close()
    # Make something to report, in case the closed pipe is only noticed on write.
    with open(claude_dir(home) / (CLAUDE_P + ".jsonl"), "a") as f:
        f.write(line(type="user", uuid="zz", parentUuid=None, timestamp="2027-01-01T00:00:00.000Z",
                     message={"role": "user", "content": "x"}, isSidechain=False))
    assert w.proc.wait(timeout=10) == 0
    assert w.proc.stderr.read() == ""


def test_sigterm_right_after_start(home):
    w = Watcher(home)
    w.next(10)
    assert w.stop() == 0
    assert w.proc.stderr.read() == ""


def test_diff_events():
    a = {"sessionId": "a", "agent": "claude", "messageCount": 1, "lastActivity": "2026-01-01T00:00:00.000Z",
         "title": "t"}
    before = {("claude", "a"): a}
    assert watch.diff(before, before) == []
    same_but_tokens = dict(a, tokens={"input": 5})
    assert watch.diff(before, {("claude", "a"): same_but_tokens}) == []
    newer = dict(a, lastActivity="2026-01-01T00:00:01.000Z")
    assert [e["type"] for e in watch.diff(before, {("claude", "a"): newer})] == ["session.updated"]
    assert [e["type"] for e in watch.diff({}, before)] == ["session.created"]
    assert watch.diff(before, {}) == [{"type": "session.deleted", "session": {"sessionId": "a", "agent": "claude"}}]
