"""Searching the agents' conversations for a text, case-insensitively, newest first.

What a user reads is searched: the text of user prompts and assistant replies (OpenCode's
text parts, Claude Code's and Codex' text blocks), not tool calls or the context an agent
injects. Each store is read the cheap way: OpenCode's SQLite database with one LIKE query
(ASCII needles; other needles through a Python function), Claude Code's and Codex' JSONL
files one line at a time, parsing only the lines whose raw text holds the needle. The scan
stops at ``limit`` results.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any, Dict, Iterator, List, Optional, Tuple

from . import claude, codex, opencode
from .sessions import iso_from_ms, ms_from_iso

SNIPPET = 80  # characters on each side of the match
MAX_QUERY = 200


def snippet(text: str, needle: str) -> str:
    """The text around the first match, on one line, cut with an ellipsis where cut."""
    at = text.lower().find(needle)
    if at < 0:
        at = text.casefold().find(needle)
    start, end = max(0, at - SNIPPET), min(len(text), at + len(needle) + SNIPPET)
    shown = " ".join(text[start:end].split())
    return ("…" if start > 0 else "") + shown + ("…" if end < len(text) else "")


def _contains(text: str, needle: str) -> bool:
    return needle in text.lower() or needle in text.casefold()


def _hit(agent: str, session: str, message: Optional[str], role: str, when: Optional[str], text: str,
         needle: str) -> Dict[str, Any]:
    return {"agent": agent, "sessionId": session, "messageId": message, "role": role, "time": when,
            "snippet": snippet(text, needle)}


# --------------------------------------------------------------------------- OpenCode

def _opencode(home: str, env: Dict[str, str], needle: str, limit: int) -> List[Dict[str, Any]]:
    store = opencode.SqliteStore(os.path.join(opencode.data_dir(home, env), "opencode.db"))
    ascii_needle = needle.isascii()

    def work(conn: sqlite3.Connection) -> List[Dict[str, Any]]:
        if ascii_needle:  # SQLite's LIKE folds ASCII letters only
            escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where, args = "p.data LIKE ? ESCAPE '\\'", ["%" + escaped + "%"]
        else:
            conn.create_function("perry_contains", 1, lambda data: data is not None and _contains(data, needle),
                                 deterministic=True)
            where, args = "perry_contains(p.data)", []
        rows = conn.execute(
            "SELECT m.session_id, m.id, m.time_created, m.data, p.data FROM part p JOIN message m "
            "ON p.message_id = m.id WHERE " + where + " ORDER BY m.time_created DESC, p.id", args)
        hits, seen = [], set()
        for session, message, created, info_raw, part_raw in rows:
            part = opencode._loads(part_raw)
            shown = opencode.convert_part(part) if isinstance(part, dict) else None
            # The LIKE also matches JSON keys and tool output: only the words a user reads count.
            if shown is None or shown["type"] != "text" or not _contains(shown["text"], needle):
                continue
            if message in seen:
                continue
            info = opencode._loads(info_raw) or {}
            role = info.get("role")
            if role not in ("user", "assistant"):
                continue
            seen.add(message)
            t = info.get("time") if isinstance(info.get("time"), dict) else {}
            when = t.get("created") if t.get("created") is not None else created
            hits.append(_hit(opencode.AGENT, session, message, role, iso_from_ms(when), shown["text"], needle))
            if len(hits) >= limit:
                break
        return hits

    return store._run(work, [])


# --------------------------------------------------------------------------- JSONL stores

def _lines_holding(path: str, needle: str) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """(line number, record) of the lines whose raw text holds the needle; others are not parsed.

    JSON escapes non-ASCII text (\\uXXXX) in some writers: such a needle is looked for in
    the parsed lines instead."""
    raw_ok = needle.isascii()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f):
                if raw_ok and needle not in line.lower():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    yield number, rec
    except OSError:
        return


def _newest_first(paths: List[str]) -> List[str]:
    def mtime(path: str) -> float:
        try:
            return os.stat(path).st_mtime
        except OSError:
            return 0.0
    return sorted(paths, key=mtime, reverse=True)


def _claude_texts(rec: Dict[str, Any]) -> Optional[Tuple[str, List[str]]]:
    if rec.get("isMeta") or rec.get("isSidechain"):
        return None
    if rec.get("type") == "user":
        if not claude.counts_as_user_message(rec):
            return None
        content = claude._content(rec)
        texts = [content] if isinstance(content, str) else [
            b["text"] for b in claude._blocks(content) if b.get("type") == "text" and isinstance(b.get("text"), str)]
        return "user", texts
    if rec.get("type") == "assistant":
        return "assistant", [b["text"] for b in claude._blocks(claude._content(rec))
                             if b.get("type") == "text" and isinstance(b.get("text"), str)]
    return None


def _claude(home: str, env: Dict[str, str], needle: str, limit: int) -> List[Dict[str, Any]]:
    hits: List[Dict[str, Any]] = []
    for path in _newest_first(claude.ClaudeReader(home, env)._paths()):
        session = os.path.basename(path)[: -len(".jsonl")]
        found = []
        for number, rec in _lines_holding(path, needle):
            role_texts = _claude_texts(rec)
            if role_texts is None:
                continue
            role, texts = role_texts
            text = next((t for t in texts if _contains(t, needle)), None)
            if text is not None:
                found.append(_hit(claude.AGENT, session, rec.get("uuid"), role, rec.get("timestamp"), text, needle))
        hits.extend(reversed(found))
        if len(hits) >= limit:
            break
    return hits[:limit]


def _codex(home: str, env: Dict[str, str], needle: str, limit: int) -> List[Dict[str, Any]]:
    hits: List[Dict[str, Any]] = []
    for path in _newest_first(codex.CodexReader(home, env)._paths()):
        match = codex._FILENAME_ID.search(os.path.basename(path))
        session = match.group(1) if match else os.path.basename(path)[: -len(".jsonl")]
        found = []
        for number, rec in _lines_holding(path, needle):
            kind, item, when = codex._unwrap(rec, number == 0)
            if kind not in ("response_item", None) or item.get("type") != "message":
                continue
            role = item.get("role")
            if role == "user":
                texts = [codex.user_prompt(item) or ""]
            elif role == "assistant":
                texts = codex._texts(item.get("content"), ("output_text",))
            else:
                continue
            text = next((t for t in texts if t and _contains(t, needle)), None)
            if text is not None:
                found.append(_hit(codex.AGENT, session, item.get("id"), role, when, text, needle))
        hits.extend(reversed(found))
        if len(hits) >= limit:
            break
    return hits[:limit]


SEARCHERS = {opencode.AGENT: _opencode, claude.AGENT: _claude, codex.AGENT: _codex}


def search(home: str, query: str, agent: Optional[str] = None, limit: int = 50,
           env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """``{"results": [...], "truncated": bool}``: the newest ``limit`` messages holding ``query``."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("the search text must not be empty")
    if len(query) > MAX_QUERY or "\0" in query:
        raise ValueError("the search text must be at most %d characters, without NUL" % MAX_QUERY)
    if agent is not None and agent not in SEARCHERS:
        raise ValueError("unknown agent %r; expected one of %s" % (agent, ", ".join(SEARCHERS)))
    if limit < 1:
        raise ValueError("limit must be at least 1")
    needle = query.lower()
    env = dict(os.environ if env is None else env)
    results: List[Dict[str, Any]] = []
    for name, searcher in SEARCHERS.items():
        if agent is None or agent == name:
            # One more than asked tells whether there were more.
            results.extend(searcher(home, env, needle, limit + 1))
    results.sort(key=lambda r: ms_from_iso(r["time"]) or 0, reverse=True)
    return {"results": results[:limit], "truncated": len(results) > limit}
