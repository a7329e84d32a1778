"""perry_worker's OpenCode readers on stores the real OpenCode wrote (SQLite 1.18, JSON 1.1)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time

import pytest

from perry_worker import opencode
from perry_worker.__main__ import main
from perry_worker.sessions import PROMPT_TITLE_LIMIT, SessionStore
from tests.fixtures.worker_homes import (
    FIXTURES,
    OC_JSON_SESSION,
    OC_SESSION,
    OC_SESSION_2,
    make_home,
    oc_db_path,
    opencode_db,
)


@pytest.fixture
def home(tmp_path):
    return make_home(tmp_path, claude=False, codex=False)


def run_json(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr().out
    return rc, json.loads(out)


def test_list_titles_counts_and_tokens_match_opencode(home, capsys):
    rc, sessions = run_json(capsys, "--home", str(home), "sessions", "list", "--json")
    assert rc == 0
    by_id = {s["sessionId"]: s for s in sessions}
    assert set(by_id) == {OC_SESSION, OC_SESSION_2, OC_JSON_SESSION}
    s = by_id[OC_SESSION]
    assert s == {
        "sessionId": OC_SESSION, "agent": "opencode", "title": "Create hello file",
        "directory": "/home/workspace/proj", "messageCount": 7,
        "lastActivity": "2026-11-25T10:48:19.756Z",
        "tokens": {"input": 31453, "output": 47, "reasoning": 0, "cacheRead": 0, "cacheWrite": 0},
        "cost": 0.0,
    }
    # OpenCode keeps its own running totals on the session row: ours (summed over the
    # assistant messages) agree with them.
    conn = sqlite3.connect(str(oc_db_path(home)))
    for sid in (OC_SESSION, OC_SESSION_2):
        row = conn.execute("SELECT tokens_input, tokens_output, tokens_reasoning, tokens_cache_read, "
                           "tokens_cache_write, cost FROM session WHERE id = ?", (sid,)).fetchone()
        t = by_id[sid]["tokens"]
        assert (t["input"], t["output"], t["reasoning"], t["cacheRead"], t["cacheWrite"], by_id[sid]["cost"]) == row
        assert by_id[sid]["messageCount"] == conn.execute(
            "SELECT COUNT(*) FROM message WHERE session_id = ?", (sid,)).fetchone()[0]
    # newest first
    assert [x["lastActivity"] for x in sessions] == sorted((x["lastActivity"] for x in sessions), reverse=True)


def test_messages_have_text_reasoning_and_tool_parts(home, capsys):
    rc, page = run_json(capsys, "--home", str(home), "sessions", "messages", OC_SESSION, "--json")
    assert rc == 0
    assert (page["sessionId"], page["total"], page["offset"], page["limit"]) == (OC_SESSION, 7, 0, 50)
    msgs = page["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "assistant", "user", "assistant", "user", "assistant"]
    # `opencode run` quotes a message that has spaces: that is what it stored.
    assert msgs[0]["parts"] == [{"type": "text", "text": '"Create hello.txt saying hello world"'}]
    first_reply = msgs[1]["parts"]
    assert [p["type"] for p in first_reply] == ["reasoning", "text", "tool"]  # step-start/finish, patch skipped
    assert first_reply[0]["text"] == "The user wants a file."
    tool = first_reply[2]
    assert tool["tool"] == "write" and tool["status"] == "completed"
    assert tool["input"] == {"filePath": "/home/workspace/proj/hello.txt", "content": "hello world\n"}
    assert tool["output"] == "Wrote file successfully."
    assert msgs[2]["parts"] == [{"type": "text", "text": "Created hello.txt with the greeting."}]
    assert msgs[0]["time"] == "2026-11-25T10:38:18.921Z"
    assert all(set(m) == {"id", "role", "time", "parts"} for m in msgs)


def test_messages_paging(home, capsys):
    rc, page = run_json(capsys, "--home", str(home), "sessions", "messages", OC_SESSION,
                        "--limit", "2", "--offset", "3", "--json")
    assert rc == 0 and page["total"] == 7 and page["offset"] == 3 and page["limit"] == 2
    assert [m["role"] for m in page["messages"]] == ["user", "assistant"]
    assert page["messages"][0]["parts"][0]["text"] == '"And now say something else"'
    rc, page = run_json(capsys, "--home", str(home), "sessions", "messages", OC_SESSION, "--offset", "7", "--json")
    assert rc == 0 and page["messages"] == [] and page["total"] == 7


def test_a_page_is_the_same_slice_of_the_whole_conversation(home):
    """Pages are read in SQL (only their rows and parts); they must match the whole, sliced."""
    store = opencode.SqliteStore(str(oc_db_path(home)))
    everything = store.messages(OC_SESSION)
    assert len(everything) == 7
    for limit in (1, 2, 3, 7, 50):
        for offset in range(0, 9):
            assert store.page(OC_SESSION, limit, offset) == (7, everything[offset: offset + limit]), (limit, offset)
    assert store.page("ses_unknown", 5, 0) is None


def test_json_storage_of_older_opencode(home, capsys):
    rc, s = run_json(capsys, "--home", str(home), "sessions", "get", OC_JSON_SESSION, "--json")
    assert rc == 0
    assert s["title"] == "Old storage session" and s["messageCount"] == 3
    assert s["directory"] == "/home/workspace/projold"
    assert s["tokens"]["input"] == 11766 + 11856 and s["tokens"]["output"] == 18 + 3
    rc, page = run_json(capsys, "--home", str(home), "sessions", "messages", OC_JSON_SESSION, "--json")
    parts = page["messages"][1]["parts"]
    assert [p["type"] for p in parts] == ["reasoning", "text", "tool"]
    assert parts[2]["tool"] == "write" and parts[2]["output"] == "Wrote file successfully."


def test_sqlite_copy_wins_over_json_copy(tmp_path):
    home = make_home(tmp_path, claude=False, codex=False)
    storage = home / ".local" / "share" / "opencode" / "storage"
    # The same session id in the JSON storage with a stale title: the database's copy counts.
    (storage / "session" / "global" / (OC_SESSION + ".json")).write_text(json.dumps(
        {"id": OC_SESSION, "title": "stale", "directory": "/x", "time": {"created": 1, "updated": 2}}))
    store = SessionStore(str(home), ["opencode"])
    assert store.get(OC_SESSION)["title"] == "Create hello file"
    assert [s["sessionId"] for s in store.list()].count(OC_SESSION) == 1


def test_child_and_archived_sessions_are_not_listed_but_found(home):
    conn = sqlite3.connect(str(oc_db_path(home)))
    conn.execute("UPDATE session SET parent_id = ? WHERE id = ?", (OC_SESSION, OC_SESSION_2))
    conn.commit()
    store = SessionStore(str(home), ["opencode"])
    assert OC_SESSION_2 not in {s["sessionId"] for s in store.list()}
    assert store.get(OC_SESSION_2)["messageCount"] == 2
    conn.execute("UPDATE session SET parent_id = NULL, time_archived = 1 WHERE id = ?", (OC_SESSION_2,))
    conn.commit()
    conn.close()
    store = SessionStore(str(home), ["opencode"])
    assert OC_SESSION_2 not in {s["sessionId"] for s in store.list()}


def test_reader_works_while_a_writer_holds_a_wal_transaction(home):
    db = oc_db_path(home)
    writer = sqlite3.connect(str(db), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE session SET title = 'uncommitted' WHERE id = ?", (OC_SESSION,))
    writer.execute("INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES "
                   "('msg_x', ?, 1, 1, '{\"role\":\"user\"}')", (OC_SESSION,))
    try:
        t0 = time.monotonic()
        store = SessionStore(str(home), ["opencode"])
        s = store.get(OC_SESSION)
        assert time.monotonic() - t0 < 1.0  # WAL readers do not wait for the writer
        assert s["title"] == "Create hello file" and s["messageCount"] == 7
        assert len(store.messages(OC_SESSION)["messages"]) == 7
    finally:
        writer.execute("COMMIT")
        writer.close()
    store = SessionStore(str(home), ["opencode"])
    assert store.get(OC_SESSION)["title"] == "uncommitted"
    assert store.get(OC_SESSION)["messageCount"] == 8


def test_exclusive_lock_is_retried_then_read(tmp_path, monkeypatch):
    """A rollback-journal database locked by a writer: wait for it briefly, then read."""
    db = opencode_db(oc_db_path(tmp_path), wal=False)
    writer = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.4, lambda: writer.execute("COMMIT")).start()
    reader = opencode.SqliteStore(str(db))
    t0 = time.monotonic()
    found = reader.summaries()
    assert OC_SESSION in found and time.monotonic() - t0 >= 0.3
    writer.close()


def test_a_lock_that_stays_gives_an_empty_answer_not_a_crash(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(opencode, "RETRY_FOR", 0.3)
    monkeypatch.setattr(opencode, "BUSY_TIMEOUT", 0.05)
    db = opencode_db(oc_db_path(tmp_path), wal=False)
    writer = sqlite3.connect(str(db), isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        rc = main(["--home", str(tmp_path), "sessions", "list", "--agent", "opencode", "--json"])
        captured = capsys.readouterr()
        assert rc == 0 and json.loads(captured.out) == []
        assert "locked" in captured.err
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_read_only_open_never_writes(home):
    db = oc_db_path(home)
    # Checkpoint and drop the WAL, make the files read-only: reading must still work.
    conn = sqlite3.connect(str(db))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = db.read_bytes()
    db.chmod(0o444)
    store = SessionStore(str(home), ["opencode"])
    assert store.get(OC_SESSION)["messageCount"] == 7
    assert db.read_bytes() == before


def test_cleanly_closed_wal_database_gets_no_files_of_ours(home):
    """OpenCode removes -wal/-shm when it closes: a reader (maybe root) must not create them."""
    db = oc_db_path(home)
    for suffix in ("-wal", "-shm"):
        assert not db.with_name(db.name + suffix).exists()  # sqlite3 closed it cleanly
    store = SessionStore(str(home), ["opencode"])
    assert store.get(OC_SESSION)["messageCount"] == 7
    assert len(store.messages(OC_SESSION)["messages"]) == 7
    assert sorted(p.name for p in db.parent.iterdir() if p.name.startswith("opencode.db")) == ["opencode.db"]


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100, None])
def test_broken_or_fresh_database_is_empty(tmp_path, content, capsys):
    db = oc_db_path(tmp_path)
    if content is None:
        opencode_db(db, rows=False)  # migrated schema, no sessions yet
    else:
        db.parent.mkdir(parents=True)
        db.write_bytes(content)
    rc = main(["--home", str(tmp_path), "sessions", "list", "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out) == []


def test_unmigrated_database_without_tables(tmp_path, capsys):
    db = oc_db_path(tmp_path)
    db.parent.mkdir(parents=True)
    sqlite3.connect(str(db)).execute("CREATE TABLE other (x)").connection.commit()
    assert main(["--home", str(tmp_path), "sessions", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_bad_rows_and_unknown_fields_are_tolerated(home):
    conn = sqlite3.connect(str(oc_db_path(home)))
    conn.execute("INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES "
                 "('msg_zz1', ?, 1795700000000, 1795700000000, '{not json')", (OC_SESSION,))
    conn.execute("INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES "
                 "('msg_zz2', ?, 1795700000001, 1795700000001, ?)",
                 (OC_SESSION, json.dumps({"role": "assistant", "tokens": {"input": "12", "output": None,
                                                                          "cache": "weird"},
                                          "cost": "0.5", "newField": {"x": 1}})))
    conn.execute("INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES "
                 "('prt_zz1', 'msg_zz2', ?, 1, 1, ?)", (OC_SESSION, json.dumps({"type": "hologram", "x": 1})))
    conn.execute("INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES "
                 "('prt_zz2', 'msg_zz2', ?, 1, 1, ?)", (OC_SESSION, json.dumps({"type": "text", "text": "hi"})))
    conn.execute("INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES "
                 "('prt_zz3', 'msg_zz2', ?, 1, 1, '[broken')", (OC_SESSION,))
    conn.commit()
    conn.close()
    store = SessionStore(str(home), ["opencode"])
    s = store.get(OC_SESSION)
    assert s["messageCount"] == 8  # the unreadable row is not a message
    # The totals are the session row's, which OpenCode keeps (the junk above was written past it).
    assert s["tokens"]["input"] == 31453 and s["cost"] == 0.0
    # A database whose session rows have no totals (before OpenCode kept them) is summed, junk and all.
    conn = sqlite3.connect(str(oc_db_path(home)))
    conn.execute("ALTER TABLE session DROP COLUMN cost")
    conn.commit()
    conn.close()
    s = SessionStore(str(home), ["opencode"]).get(OC_SESSION)
    assert s["tokens"]["input"] == 31453 + 12 and s["cost"] == 0.5
    page = store.messages(OC_SESSION)
    assert page["total"] == 8 and len(page["messages"]) == 8  # the page counts what the list counts
    assert page["messages"][-1]["parts"] == [{"type": "text", "text": "hi"}]
    last = store.messages(OC_SESSION, limit=1, offset=7)["messages"]
    assert [m["id"] for m in last] == ["msg_zz2"]


def test_python_fallback_without_json_functions(home):
    """Old SQLite builds lack json_extract: the same numbers come from Python."""
    reader = opencode.SqliteStore(str(oc_db_path(home)))
    conn = reader._connect()
    try:
        ids = [OC_SESSION, OC_SESSION_2]
        assert reader._stats_sql(conn, ids) == reader._stats_python(conn, ids)
    finally:
        conn.close()

    class WithoutJson(sqlite3.Connection):
        def execute(self, sql, *args):
            if "json_" in sql:
                raise sqlite3.OperationalError("no such function: json_valid")
            return super().execute(sql, *args)

    conn = sqlite3.connect(str(oc_db_path(home)), factory=WithoutJson)
    try:
        assert reader._page(conn, OC_SESSION, 2, 3) == (7, reader.messages(OC_SESSION)[3:5])
    finally:
        conn.close()


def test_json_storage_half_written_files(tmp_path, capsys):
    home = make_home(tmp_path, opencode=False, claude=False, codex=False)
    storage = home / ".local" / "share" / "opencode" / "storage"
    (storage / "session" / "global" / "ses_half.json").write_text('{"id": "ses_half", "title": "x"')
    msg_dir = storage / "message" / OC_JSON_SESSION
    (msg_dir / "msg_zzzz.json").write_text('{"id": "msg_zzzz", "role": "assis')
    rc, sessions = run_json(capsys, "--home", str(home), "sessions", "list", "--json")
    assert rc == 0 and [s["sessionId"] for s in sessions] == [OC_JSON_SESSION]
    assert sessions[0]["messageCount"] == 3


def test_xdg_data_home_is_honoured_without_home_option(tmp_path, monkeypatch, capsys):
    data = tmp_path / "xdg"
    shutil.copytree(FIXTURES / "opencode" / "storage", data / "opencode" / "storage")
    monkeypatch.setenv("HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "none"))
    rc, sessions = run_json(capsys, "sessions", "list", "--json")
    assert [s["sessionId"] for s in sessions] == [OC_JSON_SESSION]


# --------------------------------------------------------------------------- default titles


@pytest.mark.parametrize("default", ["New session - 2026-11-25T10:38:53.521Z",
                                     "Child session - 2026-11-25T10:38:53.521Z", ""])
def test_a_default_title_shows_the_first_prompt(home, capsys, default):
    # OpenCode keeps "New session - <time>" when the model names nothing (offline, title request failed).
    with sqlite3.connect(str(oc_db_path(home))) as db:
        db.execute("UPDATE session SET title = ? WHERE id = ?", (default, OC_SESSION))
    rc, sessions = run_json(capsys, "--home", str(home), "sessions", "list", "--json")
    listed = {s["sessionId"]: s["title"] for s in sessions}
    assert listed[OC_SESSION] == '"Create hello.txt saying hello world"'  # the stored prompt, as OpenCode stored it
    assert listed[OC_SESSION_2] == "Create hello file"  # a title of the model's own stays
    rc, one = run_json(capsys, "--home", str(home), "sessions", "get", OC_SESSION, "--json")
    assert one["title"] == '"Create hello.txt saying hello world"'


def test_a_long_first_prompt_is_one_short_line(home):
    with sqlite3.connect(str(oc_db_path(home))) as db:
        db.execute("UPDATE session SET title = 'New session - 2026-01-02T03:04:05.678Z' WHERE id = ?", (OC_SESSION,))
        [(mid,)] = db.execute("SELECT id FROM message WHERE session_id = ? AND json_extract(data, '$.role') = 'user' "
                              "ORDER BY time_created LIMIT 1", (OC_SESSION,))
        for pid, data in db.execute("SELECT id, data FROM part WHERE message_id = ?", (mid,)).fetchall():
            part = json.loads(data)
            if part.get("type") == "text":
                part["text"] = "Refactor the parser\nso that " + "every rule " * 30
                db.execute("UPDATE part SET data = ? WHERE id = ?", (json.dumps(part), pid))
    title = SessionStore(str(home)).get(OC_SESSION)["title"]
    assert title.startswith("Refactor the parser so that every rule every rule") and "\n" not in title
    assert title.endswith("\u2026") and len(title) <= PROMPT_TITLE_LIMIT + 1


def test_a_title_that_only_looks_default_stays(home):
    with sqlite3.connect(str(oc_db_path(home))) as db:
        db.execute("UPDATE session SET title = 'New session - notes' WHERE id = ?", (OC_SESSION,))
    assert SessionStore(str(home)).get(OC_SESSION)["title"] == "New session - notes"


def test_the_json_storage_default_title_shows_the_first_prompt(tmp_path):
    home = make_home(tmp_path, opencode=False, claude=False, codex=False)
    [path] = (home / ".local/share/opencode/storage/session").rglob(f"{OC_JSON_SESSION}.json")
    info = json.loads(path.read_text())
    info["title"] = "New session - 2026-11-25T10:38:53.521Z"
    path.write_text(json.dumps(info))
    assert SessionStore(str(home)).get(OC_JSON_SESSION)["title"] == '"write a.txt please"'


def test_a_failed_turn_shows_its_reason_not_an_empty_reply():
    # As OpenCode 1.18 stores a turn the model refused: an assistant message with no parts.
    info = {"role": "assistant", "time": {"created": 1764460000000},
            "error": {"name": "APIError", "data": {"message": "Incorrect API key provided: sk-te***st.",
                                                   "statusCode": 401, "isRetryable": False}}}
    message = opencode.convert_message("msg_1", info, None, [])
    assert message["parts"] == [{"type": "error", "text": "Incorrect API key provided: sk-te***st. (HTTP 401)"}]
    ok = opencode.convert_message("msg_2", {"role": "assistant"}, None, [{"type": "text", "text": "hi"}])
    assert ok["parts"] == [{"type": "text", "text": "hi"}]
