"""OpenCode's sessions: the SQLite store (1.2 and later) and the older JSON file storage.

SQLite (checked against OpenCode 1.18.33): ``$XDG_DATA_HOME/opencode/opencode.db`` (default
``~/.local/share``), WAL journal. Tables used:

- ``session``: id, parent_id (sub-agent sessions), directory, title, time_updated (ms),
  time_archived;
- ``message``: id, session_id, time_created, time_updated (ms), data JSON ``{role, time:
  {created, completed}, tokens: {input, output, reasoning, cache: {read, write}}, cost, ...}``;
- ``part``: id, message_id, session_id, data JSON ``{type: text|reasoning|tool|file|
  step-start|step-finish|patch|snapshot|..., ...}``.

JSON storage (checked against OpenCode 1.1.65), under ``.../opencode/storage``:
``session/<projectID>/<sessionID>.json``, ``message/<sessionID>/<messageID>.json``,
``part/<messageID>/<partID>.json`` with the same JSON objects as the SQLite data columns
(plus their ids). OpenCode 1.18 does not read it any more, so both may coexist: the SQLite
copy of a session wins.

The database is opened read-only (``mode=ro`` URI) with a busy timeout; a locked or
half-migrated database is retried briefly and otherwise reads as empty, with a warning.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .sessions import (
    add_tokens,
    empty_tokens,
    file_signature,
    load_json_file,
    make_session,
    prompt_title,
    to_float,
    to_int,
    warn,
)

AGENT = "opencode"
BUSY_TIMEOUT = 0.5  # seconds SQLite itself waits on a lock, per statement
RETRY_FOR = 2.0  # seconds we keep retrying a locked/busy database before giving up
SQL_CHUNK = 500  # ids per IN (...) list: old SQLite builds allow 999 variables
# The title OpenCode gives a session until the model names it (and keeps when that fails).
# OpenCode 1.18 keeps a session's running totals on its row. Checked with real `opencode run`
# writes (several turns, a tool call, cache reads, a priced model; tests/integration/
# test_session_index.py): each equals the sum over the session's assistant messages, so the
# list reads them instead of summing JSON over every message (a fresh list of 50,000 messages:
# 104 ms of CPU instead of 186). A database without them (older 1.x) is summed as before.
USAGE_COLUMNS = ("tokens_input", "tokens_output", "tokens_reasoning", "tokens_cache_read", "tokens_cache_write",
                 "cost")
DEFAULT_TITLE = re.compile(r"(?:New|Child) session - \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def index_path(home: str, env: Dict[str, str]) -> Optional[str]:
    """Where the summaries are kept between processes: the home owner's cache, written by no
    one else (a worker run as root must not leave root's files in the user's home)."""
    try:
        if os.stat(home).st_uid != os.geteuid():
            return None
    except OSError:
        return None
    base = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "perry", "opencode-sessions.json")


def data_dir(home: str, env: Dict[str, str]) -> str:
    base = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(base, "opencode")


# --------------------------------------------------------------------------- shared mapping


def message_tokens(info: Dict[str, Any]) -> Dict[str, int]:
    tokens = info.get("tokens")
    if not isinstance(tokens, dict):
        return empty_tokens()
    cache = tokens.get("cache") if isinstance(tokens.get("cache"), dict) else {}
    return {
        "input": to_int(tokens.get("input")),
        "output": to_int(tokens.get("output")),
        "reasoning": to_int(tokens.get("reasoning")),
        "cacheRead": to_int(cache.get("read")),
        "cacheWrite": to_int(cache.get("write")),
    }


def convert_part(part: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """An OpenCode part in the common shape; None for the kinds a user does not see."""
    kind = part.get("type")
    if kind == "text":
        if part.get("synthetic") or part.get("ignored"):
            return None  # text OpenCode adds for the model (file contents, reminders)
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "reasoning":
        return {"type": "reasoning", "text": str(part.get("text") or "")}
    if kind == "tool":
        state = part.get("state") if isinstance(part.get("state"), dict) else {}
        status = state.get("status") or "pending"
        output = state.get("output")
        if status == "error" and output is None:
            output = state.get("error")
        out = {"type": "tool", "tool": str(part.get("tool") or ""), "input": state.get("input"),
               "output": output, "status": status}
        if part.get("callID"):
            out["callId"] = part["callID"]
        if state.get("title"):
            out["title"] = state["title"]
        return out
    if kind == "file":
        out = {"type": "file"}
        for key in ("mime", "filename", "url"):
            if part.get(key) is not None:
                out[key] = part[key]
        return out
    return None  # step-start, step-finish, snapshot, patch, agent, subtask, compaction, ...


def first_text(parts: Iterable[Any]) -> Optional[str]:
    """The first text a user sees among a message's raw parts."""
    for p in parts:
        c = convert_part(p) if isinstance(p, dict) else None
        if c is not None and c["type"] == "text" and c["text"].strip():
            return c["text"]
    return None


def shown_title(title: Any, first_prompt: Callable[[], Optional[str]]) -> str:
    """OpenCode's title, or the first prompt cut short when the title is OpenCode's default."""
    title = str(title or "")
    if title and not DEFAULT_TITLE.fullmatch(title):
        return title
    prompt = first_prompt()
    return prompt_title(prompt) if prompt else title


def _loads(data: Any) -> Any:
    try:
        return json.loads(data)
    except (TypeError, ValueError):
        return None


def convert_message(msg_id: str, info: Dict[str, Any], created_ms: Optional[float],
                    parts: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    from .sessions import iso_from_ms

    role = info.get("role")
    if role not in ("user", "assistant"):
        return None
    t = info.get("time") if isinstance(info.get("time"), dict) else {}
    when = t.get("created") if t.get("created") is not None else created_ms
    converted = []
    for p in parts:
        c = convert_part(p) if isinstance(p, dict) else None
        if c is not None:
            converted.append(c)
    if role == "assistant" and isinstance(info.get("error"), dict):
        # A turn that failed is stored as an assistant message with no words, only its error:
        # show the reason, not an empty reply.
        from .failures import opencode_error_line

        converted.append({"type": "error", "text": opencode_error_line(info["error"])})
    return {"id": msg_id, "role": role, "time": iso_from_ms(when), "parts": converted}


# --------------------------------------------------------------------------- SQLite


def _head(path: str, size: int) -> Optional[bytes]:
    """A file's first ``size`` bytes (a database's or WAL's header), or None."""
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return None


class _Locked(Exception):
    pass


INDEX_VERSION = 1


class SqliteStore:
    """OpenCode's ``opencode.db``, read-only.

    With ``index`` (a file under the workspace user's ``~/.cache/perry``) the summaries outlive
    the process: a new one (a one-shot `perry-worker sessions list`, a lister started again)
    answers an unchanged database from the file, and a changed one by re-reading only the
    sessions that changed since. The file holds the signature it was read at; a database
    replaced by another file (a new inode) starts from nothing.
    """

    def __init__(self, path: str, index: Optional[str] = None) -> None:
        self.path = path
        self.index = index
        self._index_read = False
        self._signature: Optional[Tuple[Any, ...]] = None
        self._cache: Dict[str, Dict[str, Any]] = {}  # every session, children and archived too
        self._session_times: Dict[str, int] = {}
        self._message_rows: Dict[str, int] = {}  # message rows per session, of any kind
        self._watermark = 0  # highest message.time_updated seen

    # -- plumbing

    def signature(self) -> Tuple[Any, ...]:
        """What changes whenever a commit changes what a read would see.

        In WAL mode a commit appends frames to ``-wal`` (its size grows); a checkpoint may
        then restart the WAL from its start, and the restart writes a new salt into the WAL's
        32-byte header. Size and mtime alone could miss a restart followed by a commit of
        the same length within one mtime tick; the header cannot. A rollback-journal
        database changes the main file's size or mtime and its header's change counter.
        """
        return (file_signature(self.path), _head(self.path, 100),
                file_signature(self.path + "-wal"), _head(self.path + "-wal", 32))

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def _clean_wal_database(self) -> bool:
        """A WAL database whose -wal/-shm files are gone: OpenCode closed it cleanly.

        A read-only connection would create those files, owned by us: when the worker runs
        as another user (root, through docker exec), OpenCode could not open them again.
        The main file then holds everything, so it is read as immutable instead.
        """
        if os.path.exists(self.path + "-wal") and os.path.exists(self.path + "-shm"):
            return False
        try:
            with open(self.path, "rb") as f:
                header = f.read(20)
        except OSError:
            return False
        return len(header) == 20 and header[:16] == b"SQLite format 3\x00" and header[18] == 2

    def _connect(self, immutable: bool = False) -> sqlite3.Connection:
        uri = "file:%s?mode=ro%s" % (urllib.parse.quote(os.path.abspath(self.path)),
                                     "&immutable=1" if immutable else "")
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA query_only = 1")
        return conn

    def _run(self, work: Callable[[sqlite3.Connection], Any], default: Any) -> Any:
        """Run ``work`` in one read transaction; retry while locked; never raise."""
        if not self.exists():
            return default
        deadline = time.monotonic() + RETRY_FOR
        delay = 0.05
        immutable = self._clean_wal_database()
        while True:
            conn = None
            try:
                conn = self._connect(immutable)
                conn.execute("BEGIN")
                try:
                    return work(conn)
                finally:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
            except sqlite3.OperationalError as e:
                msg = str(e).lower()
                if ("unable to open" in msg or "readonly" in msg) and not immutable and os.path.exists(self.path):
                    # A WAL database whose -shm we may not create or write (read-only
                    # directory, another owner): read the main file rather than nothing.
                    immutable = True
                    continue
                if "locked" in msg or "busy" in msg or "disk i/o" in msg:
                    if time.monotonic() < deadline:
                        time.sleep(delay)
                        delay = min(delay * 2, 0.25)
                        continue
                    warn("OpenCode database %s stayed locked: %s" % (self.path, e))
                    return default
                if "no such table" in msg or "no such column" in msg:
                    return default  # a database OpenCode has not migrated yet
                warn("OpenCode database %s unreadable: %s" % (self.path, e))
                return default
            except sqlite3.DatabaseError as e:  # not a database, malformed, ...
                if "malformed" in str(e).lower() and time.monotonic() < deadline:
                    # An immutable read that met OpenCode starting to write: read again.
                    time.sleep(delay)
                    delay = min(delay * 2, 0.25)
                    immutable = self._clean_wal_database()
                    continue
                warn("OpenCode database %s unreadable: %s" % (self.path, e))
                return default
            finally:
                if conn is not None:
                    conn.close()

    @staticmethod
    def _columns(conn: sqlite3.Connection, table: str) -> List[str]:
        return [row[1] for row in conn.execute("PRAGMA table_info(%s)" % table)]

    # -- summaries

    def summaries(self) -> Dict[str, Dict[str, Any]]:
        """Every session (children and archived included), re-reading only what changed."""
        sig = self.signature()
        if not self._index_read:
            self._index_read = True
            self._read_index(sig)
        if sig == self._signature:
            return self._cache
        if sig[0] is None:
            self._signature, self._cache, self._session_times, self._watermark = sig, {}, {}, 0
            self._message_rows = {}
            return self._cache
        result = self._run(self._refresh, None)
        if result is not None:
            self._signature = sig
            self._write_index(sig)
        return self._cache

    def _read_index(self, sig: Tuple[Any, ...]) -> None:
        if not self.index or sig[0] is None:
            return
        saved = load_json_file(self.index)
        if not isinstance(saved, dict) or saved.get("version") != INDEX_VERSION or saved.get("db") != self.path \
                or saved.get("inode") != sig[0][0] or not isinstance(saved.get("cache"), dict) \
                or not isinstance(saved.get("sessionTimes"), dict) or not isinstance(saved.get("messageRows"), dict) \
                or not isinstance(saved.get("watermark"), int):
            return
        self._cache, self._session_times, self._watermark = saved["cache"], saved["sessionTimes"], saved["watermark"]
        self._message_rows = saved["messageRows"]
        if saved.get("signature") == repr(sig):
            self._signature = sig

    def _write_index(self, sig: Tuple[Any, ...]) -> None:
        if not self.index or sig[0] is None:
            return
        data = {"version": INDEX_VERSION, "db": self.path, "inode": sig[0][0], "signature": repr(sig),
                "cache": self._cache, "sessionTimes": self._session_times, "messageRows": self._message_rows,
                "watermark": self._watermark}
        tmp = "%s.%d.tmp" % (self.index, os.getpid())
        try:
            os.makedirs(os.path.dirname(self.index), mode=0o700, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, self.index)  # whole or not at all, whoever writes it last
        except (OSError, TypeError, ValueError) as e:
            warn("session index %s not written: %s" % (self.index, e))
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def _refresh(self, conn: sqlite3.Connection) -> bool:
        cols = set(self._columns(conn, "session"))
        if not {"id", "title", "time_updated"} <= cols or not self._columns(conn, "message"):
            self._cache, self._session_times, self._message_rows = {}, {}, {}
            return True
        sessions: Dict[str, Tuple[Any, ...]] = {}
        row_usage = set(USAGE_COLUMNS) <= cols
        select = ", ".join(c if c in cols else "NULL" for c in (
            "id", "title", "directory", "time_created", "time_updated", "parent_id", "time_archived",
            *(USAGE_COLUMNS if row_usage else ())))
        for row in conn.execute("SELECT %s FROM session" % select):
            sessions[str(row[0])] = row
        # Rows per session, no JSON read: a message deleted, or written with an old time, shows here
        # when neither the session's row nor the watermark moved.
        rows = {str(sid): n for sid, n in conn.execute("SELECT session_id, COUNT(*) FROM message GROUP BY session_id")}
        if not self._cache:
            changed = list(sessions)
        else:
            changed = [sid for sid, row in sessions.items()
                       if sid not in self._cache or self._session_times.get(sid) != row[4]
                       or self._message_rows.get(sid, 0) != rows.get(sid, 0)]
            changed_set = set(changed)
            for (sid,) in conn.execute(
                "SELECT DISTINCT session_id FROM message WHERE time_updated >= ? OR time_created >= ?",
                (self._watermark, self._watermark),
            ):
                if sid in sessions and sid not in changed_set:
                    changed.append(sid)
                    changed_set.add(sid)
        stats = self._message_stats(conn, changed, usage=not row_usage)
        cache = {sid: s for sid, s in self._cache.items() if sid in sessions}
        for sid in changed:
            row = sessions[sid]
            count, last_ms, tokens, cost = stats.get(sid, (0, None, empty_tokens(), 0.0))
            if row_usage:
                tokens = {"input": to_int(row[7]), "output": to_int(row[8]), "reasoning": to_int(row[9]),
                          "cacheRead": to_int(row[10]), "cacheWrite": to_int(row[11])}
                cost = to_float(row[12]) or 0.0
            activity = max([t for t in (to_float(row[4]), to_float(row[3]), last_ms) if t is not None] or [0])
            title = shown_title(row[1], lambda: self._first_prompt(conn, sid))
            s = make_session(AGENT, sid, title, row[2], count, activity or None, tokens, cost)
            s["_parent"] = row[5]
            s["_archived"] = row[6]
            cache[sid] = s
        self._cache = cache
        self._session_times = {sid: row[4] for sid, row in sessions.items()}
        self._message_rows = rows
        row = conn.execute("SELECT MAX(MAX(COALESCE(time_updated, 0)), MAX(COALESCE(time_created, 0))) "
                           "FROM message").fetchone()
        self._watermark = int(row[0] or 0) if row else 0
        return True

    @staticmethod
    def _first_prompt(conn: sqlite3.Connection, session_id: str) -> Optional[str]:
        """The text of the session's first user message: its messages are read only up to it."""
        for mid, data in conn.execute("SELECT id, data FROM message WHERE session_id = ? ORDER BY time_created, id",
                                      (session_id,)):
            info = _loads(data)
            if isinstance(info, dict) and info.get("role") == "user":
                return first_text(_loads(d) for (d,) in conn.execute(
                    "SELECT data FROM part WHERE message_id = ? ORDER BY id", (mid,)))
        return None

    def _message_stats(self, conn: sqlite3.Connection, ids: Sequence[str],
                       usage: bool = True) -> Dict[str, Tuple[int, Optional[float], Dict[str, int], float]]:
        """(messages shown, last activity, tokens, cost) per session; without ``usage`` the
        tokens and cost are left at zero (the session rows hold them)."""
        stats: Dict[str, Tuple[int, Optional[float], Dict[str, int], float]] = {}
        ids = list(ids)
        for i in range(0, len(ids), SQL_CHUNK):
            chunk = ids[i: i + SQL_CHUNK]
            if not chunk:
                continue
            try:
                stats.update(self._stats_sql(conn, chunk, usage))
            except sqlite3.OperationalError as e:
                if "no such function" not in str(e).lower():
                    raise
                stats.update(self._stats_python(conn, chunk))  # SQLite without JSON functions
        return stats

    @staticmethod
    def _stats_sql(conn: sqlite3.Connection, ids: List[str], usage: bool = True) -> Dict[str, Any]:
        j = "CASE WHEN json_valid(data) THEN json_extract(data, '%s') END"
        role = j % "$.role"
        assistant = "CASE WHEN %s = 'assistant' THEN %%s ELSE 0 END" % role

        def tok(path: str) -> str:
            return "SUM(%s)" % (assistant % ("COALESCE(%s, 0)" % (j % path))) if usage else "0"

        sql = (
            "SELECT session_id, SUM(CASE WHEN %s IN ('user', 'assistant') THEN 1 ELSE 0 END), "
            "MAX(MAX(COALESCE(time_updated, 0), COALESCE(time_created, 0))), %s, %s, %s, %s, %s, %s "
            "FROM message WHERE session_id IN (%s) GROUP BY session_id"
        ) % (role, tok("$.tokens.input"), tok("$.tokens.output"), tok("$.tokens.reasoning"),
             tok("$.tokens.cache.read"), tok("$.tokens.cache.write"), tok("$.cost"),
             ",".join("?" * len(ids)))
        out = {}
        for row in conn.execute(sql, ids):
            tokens = {"input": to_int(row[3]), "output": to_int(row[4]), "reasoning": to_int(row[5]),
                      "cacheRead": to_int(row[6]), "cacheWrite": to_int(row[7])}
            out[row[0]] = (int(row[1] or 0), to_float(row[2]) or None, tokens, to_float(row[8]) or 0.0)
        return out

    @staticmethod
    def _stats_python(conn: sqlite3.Connection, ids: List[str]) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        sql = "SELECT session_id, time_created, time_updated, data FROM message WHERE session_id IN (%s)" % (
            ",".join("?" * len(ids)))
        for sid, created, updated, data in conn.execute(sql, ids):
            count, last, tokens, cost = out.get(sid, (0, None, empty_tokens(), 0.0))
            try:
                info = json.loads(data)
            except (TypeError, ValueError):
                info = {}
            if not isinstance(info, dict):
                info = {}
            if info.get("role") in ("user", "assistant"):
                count += 1
            if info.get("role") == "assistant":
                add_tokens(tokens, message_tokens(info))
                cost += to_float(info.get("cost")) or 0.0
            times = [t for t in (to_float(created), to_float(updated), last) if t is not None]
            out[sid] = (count, max(times) if times else None, tokens, cost)
        return out

    # -- one session

    def has(self, session_id: str) -> bool:
        return bool(self._run(lambda conn: conn.execute(
            "SELECT 1 FROM session WHERE id = ?", (session_id,)).fetchone() is not None, False))

    def messages(self, session_id: str) -> Optional[List[Dict[str, Any]]]:
        return self._run(lambda conn: self._messages(conn, session_id), None)

    def page(self, session_id: str, limit: int, offset: int) -> Optional[Tuple[int, List[Dict[str, Any]]]]:
        """(total, one page of messages), reading only that page's rows and parts."""
        return self._run(lambda conn: self._page(conn, session_id, limit, offset), None)

    @classmethod
    def _messages(cls, conn: sqlite3.Connection, session_id: str) -> Optional[List[Dict[str, Any]]]:
        if conn.execute("SELECT 1 FROM session WHERE id = ?", (session_id,)).fetchone() is None:
            return None
        rows = conn.execute(
            "SELECT id, time_created, data FROM message WHERE session_id = ? ORDER BY time_created, id",
            (session_id,),
        ).fetchall()
        parts = conn.execute(
            "SELECT message_id, data FROM part WHERE message_id IN "
            "(SELECT id FROM message WHERE session_id = ?) ORDER BY message_id, id",
            (session_id,),
        )
        return cls._convert(rows, parts)

    @classmethod
    def _page(cls, conn: sqlite3.Connection, session_id: str, limit: int,
              offset: int) -> Optional[Tuple[int, List[Dict[str, Any]]]]:
        if conn.execute("SELECT 1 FROM session WHERE id = ?", (session_id,)).fetchone() is None:
            return None
        # Only user and assistant messages are shown, so only they count and page.
        shown = "session_id = ? AND (CASE WHEN json_valid(data) THEN json_extract(data, '$.role') END) " \
                "IN ('user', 'assistant')"
        try:
            total = conn.execute("SELECT COUNT(*) FROM message WHERE " + shown, (session_id,)).fetchone()[0]
            rows = conn.execute("SELECT id, time_created, data FROM message WHERE " + shown +
                                " ORDER BY time_created, id LIMIT ? OFFSET ?", (session_id, limit, offset)).fetchall()
        except sqlite3.OperationalError as e:
            if "no such function" not in str(e).lower():
                raise
            everything = cls._messages(conn, session_id) or []  # SQLite without JSON functions
            return len(everything), everything[offset: offset + limit]
        ids = [r[0] for r in rows]
        parts: List[Tuple[str, Any]] = []
        for i in range(0, len(ids), SQL_CHUNK):
            chunk = ids[i: i + SQL_CHUNK]
            parts.extend(conn.execute(
                "SELECT message_id, data FROM part WHERE message_id IN (%s) ORDER BY message_id, id"
                % ",".join("?" * len(chunk)), chunk))
        return total, cls._convert(rows, parts)

    @staticmethod
    def _convert(rows: Sequence[Tuple[Any, ...]], part_rows: Iterable[Tuple[str, Any]]) -> List[Dict[str, Any]]:
        parts: Dict[str, List[Dict[str, Any]]] = {}
        for mid, data in part_rows:
            try:
                p = json.loads(data)
            except (TypeError, ValueError):
                continue
            if isinstance(p, dict):
                parts.setdefault(mid, []).append(p)
        out = []
        for mid, created, data in rows:
            try:
                info = json.loads(data)
            except (TypeError, ValueError):
                continue
            if not isinstance(info, dict):
                continue
            m = convert_message(mid, info, to_float(created), parts.get(mid, []))
            if m is not None:
                out.append(m)
        return out


# --------------------------------------------------------------------------- JSON storage


def _list_json(directory: str) -> List[str]:
    try:
        names = os.listdir(directory)
    except (OSError, ValueError):  # missing, or a name with a NUL byte
        return []
    return sorted(os.path.join(directory, n) for n in names if n.endswith(".json"))


class JsonStore:
    """OpenCode's older ``storage/`` tree of JSON files."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._cache: Dict[str, Tuple[Any, Dict[str, Any]]] = {}  # session id -> (signature, summary)

    def _session_files(self) -> List[str]:
        base = os.path.join(self.root, "session")
        files = []
        try:
            projects = sorted(os.listdir(base))
        except OSError:
            return []
        for project in projects:
            if project in ("message", "part"):
                continue  # the 0.x layout kept messages under session/ too
            files.extend(_list_json(os.path.join(base, project)))
        return files

    def _message_dirs(self, session_id: str) -> List[str]:
        return [os.path.join(self.root, "message", session_id),
                os.path.join(self.root, "session", "message", session_id)]

    def _message_files(self, session_id: str) -> List[str]:
        files: List[str] = []
        for d in self._message_dirs(session_id):
            files.extend(_list_json(d))
        return files

    def _signature(self, session_file: str, session_id: str) -> Tuple[Any, ...]:
        return (file_signature(session_file),
                tuple((f, file_signature(f)) for f in self._message_files(session_id)))

    def summaries(self) -> Dict[str, Dict[str, Any]]:
        out: Dict[str, Dict[str, Any]] = {}
        cache: Dict[str, Tuple[Any, Dict[str, Any]]] = {}
        for path in self._session_files():
            sid = os.path.basename(path)[: -len(".json")]
            sig = self._signature(path, sid)
            cached = self._cache.get(sid)
            if cached is not None and cached[0] == sig:
                summary = cached[1]
            else:
                summary = self._summarize(path, sid)
                if summary is None:
                    continue
            cache[sid] = (sig, summary)
            out[sid] = summary
        self._cache = cache
        return out

    def _summarize(self, path: str, sid: str) -> Optional[Dict[str, Any]]:
        info = load_json_file(path)
        if not isinstance(info, dict):
            return None  # half-written or corrupt session file
        # The file name is the session id (OpenCode names it so): the id field only repeats it.
        t = info.get("time") if isinstance(info.get("time"), dict) else {}
        times = [to_float(t.get("updated")), to_float(t.get("created"))]
        count = 0
        tokens = empty_tokens()
        cost = 0.0
        first_user: Optional[Tuple[float, str]] = None
        for f in self._message_files(sid):
            m = load_json_file(f)
            if not isinstance(m, dict):
                continue
            if m.get("role") in ("user", "assistant"):
                count += 1
            if m.get("role") == "user" and m.get("id"):
                mt = m.get("time") if isinstance(m.get("time"), dict) else {}
                key = (to_float(mt.get("created")) or 0.0, str(m["id"]))
                first_user = min(first_user, key) if first_user else key
            if m.get("role") == "assistant":
                add_tokens(tokens, message_tokens(m))
                cost += to_float(m.get("cost")) or 0.0
            mt = m.get("time") if isinstance(m.get("time"), dict) else {}
            times.extend([to_float(mt.get("created")), to_float(mt.get("completed"))])
        known = [x for x in times if x is not None]
        title = shown_title(info.get("title"), lambda: first_user and first_text(
            load_json_file(f) for f in self._part_files(sid, first_user[1])))
        s = make_session(AGENT, sid, title, info.get("directory"), count,
                         max(known) if known else None, tokens, cost)
        s["_parent"] = info.get("parentID")
        s["_archived"] = t.get("archived")
        return s

    def messages(self, session_id: str) -> Optional[List[Dict[str, Any]]]:
        if session_id not in self.summaries():
            return None
        loaded = []
        for f in self._message_files(session_id):
            m = load_json_file(f)
            if isinstance(m, dict) and m.get("id"):
                loaded.append(m)

        def created(m: Dict[str, Any]) -> Tuple[float, str]:
            t = m.get("time") if isinstance(m.get("time"), dict) else {}
            return (to_float(t.get("created")) or 0.0, str(m.get("id")))

        loaded.sort(key=created)
        out = []
        for m in loaded:
            mid = str(m["id"])
            parts = [p for p in (load_json_file(f) for f in self._part_files(session_id, mid))
                     if isinstance(p, dict)]
            if not parts and isinstance(m.get("parts"), list):
                parts = [p for p in m["parts"] if isinstance(p, dict)]  # 0.x kept parts inline
            parts.sort(key=lambda p: str(p.get("id") or ""))
            c = convert_message(mid, m, None, parts)
            if c is not None:
                out.append(c)
        return out

    def _part_files(self, session_id: str, message_id: str) -> List[str]:
        return (_list_json(os.path.join(self.root, "part", message_id))
                or _list_json(os.path.join(self.root, "session", "part", session_id, message_id)))


# --------------------------------------------------------------------------- reader


class OpenCodeReader:
    agent = AGENT

    def __init__(self, home: str, env: Optional[Dict[str, str]] = None) -> None:
        base = data_dir(home, env or {})
        self.sqlite = SqliteStore(os.path.join(base, "opencode.db"), index_path(home, env or {}))
        self.json = JsonStore(os.path.join(base, "storage"))

    def _all(self) -> Dict[str, Dict[str, Any]]:
        merged = dict(self.json.summaries())
        merged.update(self.sqlite.summaries())
        return merged

    def summaries(self) -> Dict[str, Dict[str, Any]]:
        """The sessions OpenCode lists: sub-agent (child) and archived sessions left out."""
        return {sid: _public(s) for sid, s in self._all().items()
                if not s.get("_parent") and not s.get("_archived")}

    def summary(self, session_id: str) -> Optional[Dict[str, Any]]:
        s = self._all().get(session_id)
        return _public(s) if s is not None else None

    def has(self, session_id: str) -> bool:
        """Whether the session is here, without summarizing every session."""
        return self.sqlite.has(session_id) or session_id in self.json.summaries()

    def messages(self, session_id: str) -> Optional[List[Dict[str, Any]]]:
        if self.sqlite.has(session_id):
            return self.sqlite.messages(session_id)
        return self.json.messages(session_id)

    def page(self, session_id: str, limit: int, offset: int) -> Optional[Tuple[int, List[Dict[str, Any]]]]:
        if self.sqlite.has(session_id):
            return self.sqlite.page(session_id, limit, offset)
        messages = self.json.messages(session_id)
        return None if messages is None else (len(messages), messages[offset: offset + limit])


def _public(s: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in s.items() if not k.startswith("_")}
