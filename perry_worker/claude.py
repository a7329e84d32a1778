"""Claude Code's sessions: the JSONL transcripts under ``~/.claude/projects/<cwd>/<id>.jsonl``.

Checked against Claude Code 2.1.197. A transcript holds one JSON object per line; only
``user`` and ``assistant`` lines are conversation, linked by ``uuid``/``parentUuid``. Around
them Claude writes bookkeeping lines this reader skips: ``queue-operation``, ``attachment``,
``system`` (turn_duration, compact_boundary, ...), ``progress``, ``file-history-snapshot``,
``mode``, ``permission-mode``, ``last-prompt``, ``ai-title``, ``custom-title``, ``summary``,
``tag``, ``pr-link``, and others (``api-request``, ``api-request-blob``, ``cost-state``, ...);
unknown line types are ignored.

What the tool itself shows, and so what this reader gives (from the 2.1 binary's session
loader and its ``--resume`` picker, which shows "N messages" in its preview):

- the conversation is the ``parentUuid`` chain from the newest leaf back to the root (a
  rewind leaves the abandoned branch in the file; a compaction starts a new root), plus the
  sibling lines of the chain's assistant messages (one API message with several content
  blocks is written as several lines sharing ``message.id``, parallel tool calls branch);
- messageCount counts, over that conversation, user lines that are not ``isMeta`` and
  carry text, an image or a document (tool results sent back as user lines do NOT count),
  and assistant lines that carry non-blank text (tool-call-only and thinking-only lines do
  NOT count);
- the title is the newest ``custom-title`` (/rename), else the newest ``ai-title`` (the
  title Claude asks the model for in interactive sessions; ``claude -p`` writes none), else
  a ``summary`` line's text, else the first real prompt (slash-command wrappers and
  ``<tag>`` blocks removed, one line, cut short as ``prompt_title`` does), else "No prompt".

Sub-agent transcripts (``agent-*.jsonl``, ``<id>/subagents/...``, or files whose lines are
``isSidechain``) are not sessions of their own. Tokens are the ``message.usage`` of each
distinct assistant ``message.id`` (lines of one API message repeat the same usage); Claude
Code does not record a cost in its transcripts, so cost is null unless a line carries
``costUSD`` (older versions did).
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional, Tuple

from .sessions import (
    JsonlTail, PerFile, make_session, ms_from_iso, newer, newest_per_session, one_line, prompt_title, read_jsonl, to_float,
    to_int,
)

AGENT = "claude"
CONVERSATION_TYPES = ("user", "assistant", "system", "attachment", "progress")

_NOT_A_PROMPT = re.compile(r"^(?:\s*<[a-z][\w-]*[\s>]|\[Request interrupted by user[^\]]*\])")
_TAG_BLOCK = re.compile(r"<([a-z][\w-]*)(?:\s[^>]*)?>[\s\S]*?</\1>\n?")


def config_dir(home: str, env: Dict[str, str]) -> str:
    return env.get("CLAUDE_CONFIG_DIR") or os.path.join(home, ".claude")


def _tag(text: str, name: str) -> Optional[str]:
    m = re.search(r"<%s(?:\s+[^>]*)?>([\s\S]*?)</%s>" % (name, name), text, re.I)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- per-line facts


def _content(rec: Dict[str, Any]) -> Any:
    msg = rec.get("message")
    return msg.get("content") if isinstance(msg, dict) else None


def _blocks(content: Any) -> List[Dict[str, Any]]:
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def counts_as_user_message(rec: Dict[str, Any]) -> bool:
    if rec.get("type") != "user" or rec.get("isMeta"):
        return False
    content = _content(rec)
    if isinstance(content, str):
        return bool(content.strip())
    return any(b.get("type") in ("text", "image", "document") for b in _blocks(content))


def counts_as_assistant_message(rec: Dict[str, Any]) -> bool:
    if rec.get("type") != "assistant":
        return False
    return any(b.get("type") == "text" and isinstance(b.get("text"), str) and b["text"].strip()
               for b in _blocks(_content(rec)))


def is_tool_result(rec: Dict[str, Any]) -> bool:
    return rec.get("type") == "user" and any(b.get("type") == "tool_result" for b in _blocks(_content(rec)))


def prompt_text(rec: Dict[str, Any]) -> Optional[str]:
    """The text this line contributes as a session's first prompt, if any."""
    if rec.get("type") != "user" or rec.get("isMeta") or rec.get("isCompactSummary"):
        return None
    content = _content(rec)
    texts = [content] if isinstance(content, str) else [
        b.get("text") for b in _blocks(content) if b.get("type") == "text" and b.get("text")]
    for text in texts:
        if not isinstance(text, str) or not text:
            continue
        command = _tag(text, "command-name")
        if command:
            args = (_tag(text, "command-args") or "").strip()
            if not args:
                continue  # a bare slash command is not what the session is about
            return "%s %s" % (command, args)
        bash = _tag(text, "bash-input")
        if bash:
            return "! %s" % bash
        if _NOT_A_PROMPT.search(text):
            continue
        return text
    return None


def _str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _light(i: int, rec: Dict[str, Any]) -> Dict[str, Any]:
    """What summaries need from a conversation line (kept in memory by `watch`)."""
    msg = rec.get("message") if isinstance(rec.get("message"), dict) else {}
    usage = msg.get("usage") if isinstance(msg.get("usage"), dict) else None
    return {
        "i": i,
        "uuid": _str(rec.get("uuid")),
        "parent": _str(rec.get("parentUuid")),
        "type": rec.get("type"),
        "ts": ms_from_iso(rec.get("timestamp")),
        "side": bool(rec.get("isSidechain")),
        "mid": _str(msg.get("id")) if rec.get("type") == "assistant" else None,
        "usage": usage and (to_int(usage.get("input_tokens")), to_int(usage.get("output_tokens")),
                            to_int(usage.get("cache_read_input_tokens")),
                            to_int(usage.get("cache_creation_input_tokens"))),
        "cost": to_float(rec.get("costUSD")),
        "counted": counts_as_user_message(rec) or counts_as_assistant_message(rec),
        "tool_result": is_tool_result(rec),
        "prompt": prompt_text(rec),
        "cwd": _str(rec.get("cwd")),
        "real": rec.get("type") in ("user", "assistant"),
    }


def conversation(lines: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The lines Claude Code shows: the newest leaf's chain plus its assistant siblings.

    ``lines`` are records with i, uuid, parent, type, ts, side, mid, tool_result (light
    records, or raw ones wrapped by `_wrap`); the result is in time order.
    """
    by_uuid: Dict[str, Dict[str, Any]] = {}
    for r in lines:
        if r["uuid"]:
            by_uuid[r["uuid"]] = r
    parents = {r["parent"] for r in lines if r["parent"]}
    leaf = None
    for r in lines:
        if r["side"] or not r["uuid"] or r["uuid"] in parents:
            continue
        if leaf is None or (r["ts"] or 0) >= (leaf["ts"] or 0):
            leaf = r
    if leaf is None:
        return []
    chain: Dict[str, Dict[str, Any]] = {}
    node: Optional[Dict[str, Any]] = leaf
    while node is not None and node["uuid"] not in chain:
        chain[node["uuid"]] = node
        node = by_uuid.get(node["parent"]) if node["parent"] else None
    # Siblings: other lines of the chain's assistant API messages, and their tool results.
    mids = {r["mid"] for r in chain.values() if r["type"] == "assistant" and r["mid"]}
    api_lines = set()
    for r in lines:
        if r["type"] == "assistant" and r["mid"] in mids and r["uuid"] and not r["side"]:
            chain.setdefault(r["uuid"], r)
            api_lines.add(r["uuid"])
    for r in lines:
        if r["tool_result"] and r["parent"] in api_lines and r["uuid"]:
            chain.setdefault(r["uuid"], r)
    # Time order, as Claude Code sorts: lines are not always written in order (a prompt's
    # line can follow the reply's first lines in the file).
    ordered = sorted(chain.values(), key=lambda r: r["i"])
    last = None
    for r in ordered:  # a line without a timestamp takes its predecessor's
        r["_t"] = r["ts"] if r["ts"] is not None else last
        last = r["_t"] if r["_t"] is not None else last
    return sorted(ordered, key=lambda r: (r["_t"] if r["_t"] is not None else float("-inf"), r["i"]))


# --------------------------------------------------------------------------- one transcript


class Transcript:
    """One ``<id>.jsonl``, read incrementally."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.session_id = os.path.basename(path)[: -len(".jsonl")]
        self.tail = JsonlTail(path)
        self._reset()

    def _reset(self) -> None:
        self.lines: List[Dict[str, Any]] = []
        self.count = 0
        self.custom_title: Optional[str] = None
        self.ai_title: Optional[str] = None
        self.summaries: List[Tuple[Optional[str], str]] = []
        self.sidechain: Optional[bool] = None
        self._summary: Optional[Dict[str, Any]] = None
        self._done = False

    def refresh(self) -> Optional[Dict[str, Any]]:
        """The session summary, reading only lines appended since the last call."""
        if self._done and not self.tail.changed():
            return self._summary
        reset, records = self.tail.read_new()
        if reset:
            self._reset()
        if records or not self._done:
            for rec in records:
                self._add(rec)
            self._summary = self._summarize()
            self._done = True
        return self._summary

    def _add(self, rec: Dict[str, Any]) -> None:
        kind = rec.get("type")
        if kind == "custom-title" and isinstance(rec.get("customTitle"), str):
            self.custom_title = rec["customTitle"]
        elif kind == "ai-title" and isinstance(rec.get("aiTitle"), str):
            self.ai_title = rec["aiTitle"]
        elif kind == "summary" and isinstance(rec.get("summary"), str):
            self.summaries.append((rec.get("leafUuid"), rec["summary"]))
        elif kind in CONVERSATION_TYPES:
            if self.sidechain is None and kind in ("user", "assistant"):
                self.sidechain = bool(rec.get("isSidechain"))
            self.lines.append(_light(self.count, rec))
            self.count += 1

    def _summarize(self) -> Optional[Dict[str, Any]]:
        if self.sidechain or not any(r["real"] and not r["side"] for r in self.lines):
            return None  # a sub-agent's transcript, or no conversation yet
        conv = conversation(self.lines)
        count = sum(1 for r in conv if r["counted"])
        title = self._title(conv)
        usage: Dict[str, Tuple[int, int, int, int]] = {}
        cost: Optional[float] = None
        anonymous = 0
        for r in self.lines:
            if r["type"] != "assistant" or r["side"]:
                continue
            if r["usage"]:
                key = r["mid"] or "#%d" % anonymous
                anonymous += 0 if r["mid"] else 1
                usage[key] = r["usage"]  # the last line of a message has its final usage
            if r["cost"] is not None:
                cost = (cost or 0.0) + r["cost"]
        tokens = {"input": 0, "output": 0, "reasoning": 0, "cacheRead": 0, "cacheWrite": 0}
        for inp, out, cread, cwrite in usage.values():
            tokens["input"] += inp
            tokens["output"] += out
            tokens["cacheRead"] += cread
            tokens["cacheWrite"] += cwrite
        times = [r["ts"] for r in self.lines if r["ts"] is not None and not r["side"]]
        directory = next((r["cwd"] for r in conv if r["cwd"]), None) or next(
            (r["cwd"] for r in self.lines if r["cwd"]), None)
        return make_session(AGENT, self.session_id, title, directory, count,
                            max(times) if times else None, tokens, cost)

    def _title(self, conv: List[Dict[str, Any]]) -> str:
        if self.custom_title and self.custom_title.strip():
            return self.custom_title.strip()
        if self.ai_title and self.ai_title.strip():
            return self.ai_title.strip()
        if self.summaries:
            in_conv = {r["uuid"] for r in conv}
            matching = [s for leaf, s in self.summaries if leaf in in_conv]
            return one_line((matching or [s for _, s in self.summaries])[-1])
        prompt = next((r["prompt"] for r in conv if r["prompt"]), None)
        if prompt is None:
            return "No prompt"
        title = prompt_title(_TAG_BLOCK.sub("", one_line(prompt, len(prompt))))
        return title or self.session_id[:8]


# --------------------------------------------------------------------------- messages


def _wrap(i: int, rec: Dict[str, Any]) -> Dict[str, Any]:
    light = _light(i, rec)
    light["raw"] = rec
    return light


def _tool_output(block: Dict[str, Any]) -> Any:
    content = block.get("content")
    if isinstance(content, list):
        texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        return "\n".join(t for t in texts if isinstance(t, str))
    return content


def _file_part(block: Dict[str, Any]) -> Dict[str, Any]:
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    part = {"type": "file", "mime": source.get("media_type")}
    if block.get("title"):
        part["filename"] = block["title"]
    if source.get("type") == "url" and source.get("url"):
        part["url"] = source["url"]
    return part


def _parts(content: Any, tools: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    parts: List[Dict[str, Any]] = []
    for b in _blocks(content):
        kind = b.get("type")
        if kind == "text" and isinstance(b.get("text"), str) and b["text"].strip():
            parts.append({"type": "text", "text": b["text"]})
        elif kind == "thinking" and isinstance(b.get("thinking"), str) and b["thinking"].strip():
            parts.append({"type": "reasoning", "text": b["thinking"]})
        elif kind in ("tool_use", "server_tool_use"):
            part = {"type": "tool", "tool": str(b.get("name") or ""), "input": b.get("input"),
                    "output": None, "status": "pending", "callId": b.get("id")}
            if b.get("id"):
                tools[str(b["id"])] = part
            parts.append(part)
        elif kind in ("image", "document"):
            parts.append(_file_part(b))
    return parts


def build_messages(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The conversation of a raw transcript as messages in the common shape.

    A user prompt is a message; an assistant line with text starts an assistant message;
    tool calls and thinking join the assistant message of the same API call, or else the
    next one with text (what the terminal shows as one reply). Tool results fill in the
    output of their tool part. So ``total`` equals Claude's own count, except for a turn
    that ends in tool calls without any text, which becomes one more message.
    """
    from .sessions import iso_from_ms

    lines = [_wrap(i, r) for i, r in enumerate(records)
             if r.get("type") in CONVERSATION_TYPES]
    out: List[Dict[str, Any]] = []
    tools: Dict[str, Dict[str, Any]] = {}
    current: Optional[Dict[str, Any]] = None
    current_mid: Optional[str] = None
    pending: List[Dict[str, Any]] = []
    pending_from: Optional[Dict[str, Any]] = None

    def flush() -> None:
        nonlocal pending, pending_from
        if pending:
            if current is not None:
                current["parts"].extend(pending)
            elif pending_from is not None:
                out.append({"id": pending_from["uuid"], "role": "assistant",
                            "time": iso_from_ms(pending_from["ts"]), "parts": pending})
        pending, pending_from = [], None

    for line in conversation(lines):
        rec = line["raw"]
        content = _content(rec)
        if line["type"] == "user":
            if line["tool_result"]:
                for b in _blocks(content):
                    if b.get("type") == "tool_result":
                        part = tools.get(str(b.get("tool_use_id")))
                        if part is not None:
                            part["output"] = _tool_output(b)
                            part["status"] = "error" if b.get("is_error") else "completed"
                continue
            if not counts_as_user_message(rec):
                continue
            flush()
            out.append({"id": line["uuid"], "role": "user", "time": iso_from_ms(line["ts"]),
                        "parts": _parts(content, tools)})
            current, current_mid = None, None
        elif line["type"] == "assistant":
            parts = _parts(content, tools)
            if counts_as_assistant_message(rec):
                current = {"id": line["uuid"], "role": "assistant", "time": iso_from_ms(line["ts"]),
                           "parts": pending + parts}
                pending, pending_from = [], None
                current_mid = line["mid"]
                out.append(current)
            elif parts:
                if current is not None and line["mid"] and line["mid"] == current_mid:
                    current["parts"].extend(parts)
                else:
                    pending.extend(parts)
                    pending_from = pending_from or line
    flush()
    return out


# --------------------------------------------------------------------------- reader


class ClaudeReader:
    agent = AGENT

    def __init__(self, home: str, env: Optional[Dict[str, str]] = None) -> None:
        self.projects = os.path.join(config_dir(home, env or {}), "projects")
        self._transcript = PerFile(Transcript)

    def _paths(self) -> List[str]:
        try:
            projects = os.listdir(self.projects)
        except OSError:
            return []
        paths = []
        for project in sorted(projects):
            folder = os.path.join(self.projects, project)
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                # Top-level <id>.jsonl only: sub-agents live in agent-*.jsonl or <id>/subagents/.
                if name.endswith(".jsonl") and not name.startswith("agent-"):
                    paths.append(os.path.join(folder, name))
        return paths

    def summaries(self) -> Dict[str, Dict[str, Any]]:
        paths = self._paths()
        self._transcript.keep_only(paths)
        return newest_per_session(self._transcript(path).refresh() for path in paths)

    def _path_of(self, session_id: str) -> Optional[str]:
        if not session_id or "/" in session_id or session_id.startswith("."):
            return None
        best = None
        for path in self._paths():
            if os.path.basename(path) == session_id + ".jsonl":
                s = self._transcript(path).refresh()
                if s is not None and newer(s, best[1] if best else None):
                    best = (path, s)
        return best[0] if best else None

    def summary(self, session_id: str) -> Optional[Dict[str, Any]]:
        path = self._path_of(session_id)
        return self._transcript(path).refresh() if path else None

    def messages(self, session_id: str) -> Optional[List[Dict[str, Any]]]:
        path = self._path_of(session_id)
        if path is None:
            return None
        return build_messages(read_jsonl(path))
