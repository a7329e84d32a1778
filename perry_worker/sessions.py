"""One shape for every agent's sessions: merging the readers, sorting, paging, usage.

A session (what `sessions list|get` print, and what `watch` events carry):

    {"sessionId", "agent", "title", "directory", "messageCount", "lastActivity",
     "tokens": {"input", "output", "reasoning", "cacheRead", "cacheWrite"}, "cost"}

A message: ``{"id", "role": "user"|"assistant", "time", "parts": [...]}`` with parts
``{"type": "text", "text"}``, ``{"type": "reasoning", "text"}``,
``{"type": "tool", "tool", "input", "output", "status"}``, ``{"type": "file", ...}``.

Times are ISO-8601 UTC strings with milliseconds (``2026-11-25T10:38:53.521Z``).

A reader (one per agent store) offers ``agent``, ``summaries() -> {id: session}`` (cheap to
call again: readers cache what did not change on disk), ``summary(id)`` and
``messages(id) -> list | None``. Readers never raise for bad data: unknown fields,
half-written lines, corrupt files and empty homes give fewer sessions, not errors.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from .agents import AGENTS, NAMES

TOKEN_KEYS = ("input", "output", "reasoning", "cacheRead", "cacheWrite")
DEFAULT_MESSAGE_LIMIT = 50


class NotFound(Exception):
    """No store holds the session."""


class BadRequest(Exception):
    """An argument is out of range or unknown."""


def warn(message: str) -> None:
    """Diagnostics go to stderr: stdout is reserved for the JSON answer."""
    try:
        sys.stderr.write("perry-worker: %s\n" % message)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------- values


def empty_tokens() -> Dict[str, int]:
    return {k: 0 for k in TOKEN_KEYS}


def add_tokens(total: Dict[str, int], more: Dict[str, int]) -> Dict[str, int]:
    for k in TOKEN_KEYS:
        total[k] = total.get(k, 0) + int(more.get(k, 0) or 0)
    return total


def to_int(value: Any) -> int:
    """A token count from whatever the agent wrote (int, float, numeric string, junk → 0)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        try:
            n = int(float(value))
        except (TypeError, ValueError):
            return 0
    return max(0, n)


def to_float(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def iso_from_ms(ms: Optional[float]) -> Optional[str]:
    """Epoch milliseconds → ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (None stays None)."""
    if ms is None:
        return None
    try:
        t = _dt.datetime.fromtimestamp(float(ms) / 1000.0, tz=_dt.timezone.utc)
    except (OverflowError, OSError, ValueError, TypeError):
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def ms_from_iso(text: Any) -> Optional[float]:
    """ISO-8601 string (``Z`` or offset, any fraction) → epoch milliseconds, or None."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        # Some stores write epoch numbers: seconds or milliseconds.
        return float(text) * (1000.0 if text < 1e11 else 1.0)
    if not isinstance(text, str) or not text:
        return None
    s = text.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    # fromisoformat (3.9/3.10) takes at most 6 fraction digits and needs ':' in offsets.
    main, sep, frac = s.partition(".")
    if sep:
        digits = ""
        rest = ""
        for i, ch in enumerate(frac):
            if ch.isdigit():
                digits += ch
            else:
                rest = frac[i:]
                break
        s = main + "." + (digits[:6] or "0") + rest
    try:
        t = _dt.datetime.fromisoformat(s)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.timestamp() * 1000.0


def one_line(text: str, limit: int = 200) -> str:
    """A title from free text: newlines to spaces, trimmed, cut with an ellipsis."""
    s = " ".join(str(text).replace("\r", "\n").split("\n")).strip()
    if len(s) > limit:
        s = s[:limit].rstrip() + "\u2026"
    return s


PROMPT_TITLE_LIMIT = 72  # a first prompt shown as a title: one line a list row can hold


def prompt_title(prompt: str) -> str:
    """A session's title from its first user message, when the agent gave it none of its own."""
    return one_line(prompt, PROMPT_TITLE_LIMIT)


def make_session(
    agent: str,
    session_id: str,
    title: str,
    directory: Optional[str],
    message_count: int,
    last_activity_ms: Optional[float],
    tokens: Dict[str, int],
    cost: Optional[float],
) -> Dict[str, Any]:
    return {
        "sessionId": session_id,
        "agent": agent,
        "title": title or "",
        "directory": directory,
        "messageCount": int(message_count),
        "lastActivity": iso_from_ms(last_activity_ms),
        "tokens": {k: int(tokens.get(k, 0)) for k in TOKEN_KEYS},
        "cost": None if cost is None else round(float(cost), 10),
    }


def load_json_file(path: str) -> Optional[Any]:
    """A whole JSON file, or None when it is missing, unreadable or (half-)written badly."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None


def file_signature(path: str) -> Optional[Tuple[int, int, int]]:
    """(inode, size, mtime_ns) of a file, or None: what changed-on-disk checks compare."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def newer(session: Dict[str, Any], than: Optional[Dict[str, Any]]) -> bool:
    """Whether ``session`` was active after ``than`` (None counts as never)."""
    return than is None or (session.get("lastActivity") or "") > (than.get("lastActivity") or "")


def newest_per_session(summaries: Iterable[Optional[Dict[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """The latest summary of each session id (a session copied into two files shows once)."""
    out: Dict[str, Dict[str, Any]] = {}
    for s in summaries:
        if s is not None and newer(s, out.get(s["sessionId"])):
            out[s["sessionId"]] = s
    return out


class PerFile:
    """One reader per session file, kept between calls so an unchanged file is not parsed again."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        self._make = make
        self._readers: Dict[str, Any] = {}

    def __call__(self, path: str) -> Any:
        reader = self._readers.get(path)
        if reader is None:
            reader = self._readers[path] = self._make(path)
        return reader

    def keep_only(self, paths: Iterable[str]) -> None:
        """Forget the files that are gone."""
        keep = set(paths)
        for path in [p for p in self._readers if p not in keep]:
            del self._readers[path]


class JsonlTail:
    """Incremental reading of an append-only JSON Lines file.

    ``read_new()`` returns the records completed since the last call: a last line without
    its newline is a line still being written and is left for next time; lines that are not
    JSON objects are skipped. When the file shrank or was replaced, ``reset`` is True and
    the records are the whole file again.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.inode: Optional[int] = None
        self.signature: Optional[Tuple[int, int, int]] = None
        self.lines_read = 0
        self._head = b""  # the file's first bytes: a rewrite in place changes them

    def changed(self) -> bool:
        return file_signature(self.path) != self.signature

    def read_new(self) -> Tuple[bool, List[Dict[str, Any]]]:
        sig = file_signature(self.path)
        reset = False
        if sig is None:
            self.signature = None
            return (self.offset != 0, [])
        inode, size, _ = sig
        records: List[Dict[str, Any]] = []
        try:
            with open(self.path, "rb") as f:
                head = f.read(min(256, self.offset)) if self.offset else b""
                if self.inode is not None and (inode != self.inode or size < self.offset or head != self._head[: len(head)]):
                    reset = True
                    self.offset = 0
                    self.lines_read = 0
                self.inode = inode
                f.seek(self.offset)
                data = f.read(max(0, size - self.offset))
                if self.offset < 256:
                    f.seek(0)
                    self._head = f.read(256)
        except OSError:
            return (reset, [])
        if data:
            end = data.rfind(b"\n")
            if end < 0:
                data = b""
            else:
                data = data[: end + 1]
            self.offset += len(data)
            for raw in data.split(b"\n"):
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    rec = json.loads(raw.decode("utf-8", "replace"))
                except ValueError:
                    continue  # a corrupt line: skip it, keep the rest
                if isinstance(rec, dict):
                    records.append(rec)
                    self.lines_read += 1
        # The signature is of the whole file: a half line waits for the file to change again.
        self.signature = sig
        return (reset, records)


def read_jsonl(path: str) -> List[Dict[str, Any]]:
    """All complete JSON-object lines of a file (a fresh tail, read once)."""
    return JsonlTail(path).read_new()[1]


# --------------------------------------------------------------------------- store


def default_home() -> str:
    return os.environ.get("HOME") or os.path.expanduser("~")


class SessionStore:
    """Every agent's readers behind one interface."""

    def __init__(self, home: Optional[str] = None, agents: Optional[Iterable[str]] = None) -> None:
        # Environment overrides (XDG_DATA_HOME, CLAUDE_CONFIG_DIR, CODEX_HOME) count only for the
        # real home; an explicit --home (tests, another user's home) is read as given.
        explicit = home is not None
        self.home = os.path.abspath(home if explicit else default_home())
        wanted = list(agents) if agents else list(NAMES)
        for a in wanted:
            if a not in AGENTS:
                raise BadRequest("unknown agent %r (one of: %s)" % (a, ", ".join(NAMES)))
        env = {} if explicit else dict(os.environ)
        self.readers: List[Any] = [AGENTS[a].session_reader(self.home, env) for a in NAMES if a in wanted]

    def summaries(self) -> Dict[Tuple[str, str], Dict[str, Any]]:
        """{(agent, sessionId): session} over every reader."""
        out: Dict[Tuple[str, str], Dict[str, Any]] = {}
        for reader in self.readers:
            try:
                found = reader.summaries()
            except Exception as e:  # a reader's bug must not take the others down
                warn("%s sessions unreadable: %s" % (reader.agent, e))
                continue
            for sid, s in found.items():
                out[(reader.agent, sid)] = s
        return out

    def list(self) -> List[Dict[str, Any]]:
        return sort_sessions(self.summaries().values())

    def _find(self, session_id: str) -> Tuple[Any, Dict[str, Any]]:
        for reader in self.readers:
            try:
                s = reader.summary(session_id)
            except Exception as e:
                warn("%s session %s unreadable: %s" % (reader.agent, session_id, e))
                continue
            if s is not None:
                return reader, s
        raise NotFound("no session %r in any agent store" % session_id)

    def get(self, session_id: str) -> Dict[str, Any]:
        return self._find(session_id)[1]

    def _reader_of(self, session_id: str) -> Any:
        """The reader holding the session; a reader that can tell cheaply (``has``) is asked so."""
        for reader in self.readers:
            try:
                has = getattr(reader, "has", None)
                found = has(session_id) if has else reader.summary(session_id) is not None
            except Exception as e:
                warn("%s session %s unreadable: %s" % (reader.agent, session_id, e))
                continue
            if found:
                return reader
        raise NotFound("no session %r in any agent store" % session_id)

    def messages(self, session_id: str, limit: int = DEFAULT_MESSAGE_LIMIT, offset: int = 0) -> Dict[str, Any]:
        if limit < 1 or offset < 0:
            raise BadRequest("limit must be at least 1 and offset at least 0")
        reader = self._reader_of(session_id)
        try:
            if hasattr(reader, "page"):  # reads only the page
                total, page = reader.page(session_id, limit, offset) or (0, [])
            else:
                everything = reader.messages(session_id) or []
                total, page = len(everything), everything[offset: offset + limit]
        except Exception as e:
            warn("%s session %s messages unreadable: %s" % (reader.agent, session_id, e))
            total, page = 0, []
        return {"sessionId": session_id, "total": total, "offset": offset, "limit": limit, "messages": page}

    def usage(self, session_id: Optional[str] = None) -> Dict[str, Any]:
        sessions = [self.get(session_id)] if session_id else self.list()
        return usage_report(sessions)


SERVE_IDLE = 600.0  # seconds without a request after which `sessions serve` ends


def serve(store: "SessionStore", fd_in: int, out: Any, idle: float = SERVE_IDLE) -> int:
    """`sessions serve`: answer one JSON line per request line, from one long-lived store.

    The store's readers keep what they read between two requests (OpenCode's database is
    read again only when its files changed, a JSONL transcript only from where it grew), so
    an unchanged list costs a few stats, where a new `perry-worker sessions list` costs a
    process start and the whole read. A request is ``{"agent": null|"NAME"}``; the answer is
    ``{"sessions": [...]}`` (that agent's only, when named) or ``{"error": {...}}``. It ends
    at stdin's EOF (the server closed it) or after ``idle`` seconds without a request.
    """
    import select

    pending = b""
    while True:
        while b"\n" not in pending:
            ready, _, _ = select.select([fd_in], [], [], idle)
            chunk = os.read(fd_in, 65536) if ready else b""
            if not chunk:
                return 0
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        try:
            request = json.loads(line.decode("utf-8", "replace"))
            agent = request.get("agent") if isinstance(request, dict) else None
            if agent is not None and (not isinstance(agent, str) or agent not in AGENTS):
                raise BadRequest("unknown agent %r (one of: %s)" % (agent, ", ".join(NAMES)))
            sessions = [s for s in store.list() if agent is None or s["agent"] == agent]
            answer: Dict[str, Any] = {"sessions": sessions}
        except (ValueError, BadRequest) as e:
            answer = {"error": {"code": "bad_request", "message": str(e)}}
        out.write(json.dumps(answer) + "\n")
        out.flush()


def sort_sessions(sessions: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Newest first by lastActivity (sessions without one last), then by id for stability."""
    items = list(sessions)
    items.sort(key=lambda s: s.get("sessionId") or "")
    items.sort(key=lambda s: s.get("lastActivity") or "", reverse=True)
    return items


def usage_report(sessions: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    rows = []
    total_tokens = empty_tokens()
    total_cost: Optional[float] = None
    for s in sessions:
        rows.append({"sessionId": s["sessionId"], "agent": s["agent"], "tokens": dict(s["tokens"]),
                     "cost": s["cost"]})
        add_tokens(total_tokens, s["tokens"])
        if s["cost"] is not None:
            total_cost = (total_cost or 0.0) + s["cost"]
    if total_cost is not None:
        total_cost = round(total_cost, 10)
    return {"sessions": rows, "total": {"tokens": total_tokens, "cost": total_cost}}
