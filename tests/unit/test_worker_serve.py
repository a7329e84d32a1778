"""`perry-worker sessions serve` as a real process on real stores: every answer equals a fresh
`perry-worker sessions list`, before and after the stores change under it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.worker_homes import CODEX_REAL, OC_SESSION, OC_SESSION_2, make_home, oc_db_path

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


class Lister:
    def __init__(self, home: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "perry_worker", "--home", str(home), "sessions", "serve", *extra],
            cwd=str(REPO), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)

    def ask(self, agent: str | None = None):
        self.proc.stdin.write(json.dumps({"agent": agent}).encode() + b"\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> int:
        self.proc.stdin.close()
        return self.proc.wait(10)


@pytest.fixture
def home(tmp_path):
    return make_home(tmp_path)


@pytest.fixture
def lister(home):
    lister = Lister(home)
    yield lister
    if lister.proc.poll() is None:
        lister.proc.kill()
        lister.proc.wait()


def fresh(home: Path, *args: str) -> list:
    out = subprocess.run([sys.executable, "-m", "perry_worker", "--home", str(home), "sessions", "list", *args,
                          "--json"], cwd=str(REPO), capture_output=True, env=ENV, check=True).stdout
    return json.loads(out)


def test_answers_equal_a_fresh_read_as_the_stores_change(home, lister):
    first = lister.ask()["sessions"]
    assert first == fresh(home) and len(first) > 5
    assert lister.ask() == {"sessions": first}
    assert lister.ask("codex")["sessions"] == fresh(home, "--agent", "codex")

    # OpenCode writes a message: its row, and the session's totals and time on the session row.
    db = sqlite3.connect(str(oc_db_path(home)))
    now = int(time.time() * 1000)
    db.execute("INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?, ?, ?, ?, ?)",
               ("msg_zzz", OC_SESSION, now, now, json.dumps({"role": "assistant", "time": {"created": now},
                                                              "tokens": {"input": 5, "output": 7}, "cost": 0.25})))
    db.execute("UPDATE session SET time_updated = ?, tokens_input = tokens_input + 5, "
               "tokens_output = tokens_output + 7, cost = cost + 0.25 WHERE id = ?", (now, OC_SESSION))
    db.commit()
    after = lister.ask()["sessions"]
    assert after == fresh(home)
    oc = next(s for s in after if s["sessionId"] == OC_SESSION)
    before = next(s for s in first if s["sessionId"] == OC_SESSION)
    assert oc["messageCount"] == before["messageCount"] + 1 and oc["cost"] == before["cost"] + 0.25
    assert oc["tokens"]["input"] == before["tokens"]["input"] + 5 and after[0] == oc  # newest first

    # A new session in a checkpointed WAL: the WAL restarts from its start with a new salt.
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated) "
               "VALUES ('ses_new', 'global', 'new-one', '/home/workspace/x', 'New one', '1.18.33', ?, ?)",
               (now + 1, now + 1))
    db.commit()
    db.close()
    newest = lister.ask()["sessions"]
    assert newest[0]["sessionId"] == "ses_new" and newest == fresh(home)

    # A Codex rollout grows by a line; a Claude transcript appears.
    rollout = next((home / ".codex" / "sessions").rglob(f"*{CODEX_REAL}.jsonl"))
    with open(rollout, "a") as f:
        f.write(json.dumps({"timestamp": "2027-01-01T00:00:00.000Z", "type": "response_item",
                            "payload": {"type": "message", "role": "user",
                                        "content": [{"type": "input_text", "text": "more"}]}}) + "\n")
    grown = lister.ask()["sessions"]
    assert grown[0]["sessionId"] == CODEX_REAL and grown == fresh(home)
    assert grown[0]["messageCount"] == next(s for s in first if s["sessionId"] == CODEX_REAL)["messageCount"] + 1
    assert lister.close() == 0  # stdin's end is the end


def test_bad_requests_are_answered_and_the_lister_goes_on(lister, home):
    assert lister.ask("nobody")["error"]["code"] == "bad_request"
    lister.proc.stdin.write(b"{not json\n")
    lister.proc.stdin.flush()
    assert json.loads(lister.proc.stdout.readline())["error"]["code"] == "bad_request"
    assert lister.ask()["sessions"] == fresh(home)


def test_it_ends_when_idle(home):
    lister = Lister(home, "--idle", "0.3")
    assert lister.proc.wait(10) == 0


def test_a_stale_worker_says_so_and_ends(home):
    proc = subprocess.run([sys.executable, "-m", "perry_worker", "--home", str(home), "sessions", "serve"],
                          cwd=str(REPO), input=b'{"agent": null}\n', capture_output=True, timeout=30,
                          env=dict(ENV, PERRY_WORKER_EXPECT="not-this-one"))
    assert json.loads(proc.stdout)["error"]["code"] == "stale_worker" and proc.returncode == 3


# -- the index a new process starts from (~/.cache/perry/opencode-sessions.json)


def index_file(home: Path) -> Path:
    return home / ".cache" / "perry" / "opencode-sessions.json"


def test_a_new_process_answers_an_unchanged_database_from_the_index(home):
    first = fresh(home, "--agent", "opencode")
    saved = json.loads(index_file(home).read_text())
    assert set(saved["cache"]) == {OC_SESSION, OC_SESSION_2}  # the SQLite sessions (not the JSON storage's)
    assert OC_SESSION in {s["sessionId"] for s in first}
    # Mark the index: a process that answers from it shows the mark, one that reads the database not.
    saved["cache"][OC_SESSION]["title"] = "from the index"
    index_file(home).write_text(json.dumps(saved))
    assert next(s for s in fresh(home, "--agent", "opencode") if s["sessionId"] == OC_SESSION)["title"] \
        == "from the index"


def test_a_new_process_reads_what_changed_since_the_index(home):
    fresh(home)  # writes the index
    db = sqlite3.connect(str(oc_db_path(home)))
    now = int(time.time() * 1000)
    db.execute("INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?, ?, ?, ?, ?)",
               ("msg_idx", OC_SESSION, now, now, json.dumps({"role": "user", "time": {"created": now}})))
    db.execute("UPDATE session SET time_updated = ? WHERE id = ?", (now, OC_SESSION))
    db.execute("INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated) "
               "VALUES ('ses_idx', 'global', 'idx', '/home/workspace/x', 'Indexed later', '1.18.33', ?, ?)",
               (now + 1, now + 1))
    db.execute("DELETE FROM message WHERE session_id = (SELECT id FROM session WHERE id != ? AND id != 'ses_idx' "
               "AND parent_id IS NULL LIMIT 1)", (OC_SESSION,))
    db.commit()
    db.close()
    from_index = fresh(home)
    index_file(home).unlink()
    assert from_index == fresh(home)  # the same as a read of the whole database
    assert from_index[0]["sessionId"] == "ses_idx"


def test_a_database_replaced_by_another_file_is_read_whole(home):
    fresh(home)
    saved = json.loads(index_file(home).read_text())
    saved["cache"][OC_SESSION]["title"] = "from the index"
    index_file(home).write_text(json.dumps(saved))
    db = oc_db_path(home)
    for suffix in ("-wal", "-shm"):  # a clean copy, as a restore from a backup would be
        Path(str(db) + suffix).unlink(missing_ok=True)
    copy = db.with_name("copy.db")
    copy.write_bytes(db.read_bytes())
    os.replace(copy, db)
    assert "from the index" not in {s["title"] for s in fresh(home)}


def test_no_index_in_a_home_the_worker_does_not_own(home):
    from perry_worker import opencode

    os.chown(home, 4321, 4321)
    try:
        assert opencode.index_path(str(home), {}) is None
    finally:
        os.chown(home, os.getuid(), os.getgid())
