"""Codex's sessions: the rollout files ``~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl``.

Checked against codex-cli 0.169.0 run offline (its Responses API pointed at a local server).
Each line is ``{"timestamp", "type", "payload"}`` with type:

- ``session_meta``: payload ``{id, timestamp, cwd, originator, cli_version, source, ...}``
  (``source`` is a dict naming the parent for sub-agent threads: those are skipped);
- ``response_item``: what went to and came from the model: ``message`` (role user /
  assistant / developer; content ``input_text`` / ``output_text`` / ``input_image``),
  ``reasoning`` (summary texts), ``function_call`` / ``custom_tool_call`` /
  ``local_shell_call`` (name, arguments, call_id) and their ``*_output`` (call_id, output),
  ``web_search_call``, ...;
- ``event_msg``: UI events (``task_started``, ``user_message``, ``agent_message``,
  ``token_count`` whose ``info.total_token_usage`` is the session's running total, ...);
- ``turn_context``, ``world_state``, ``token_usage_record``, ``compacted``: bookkeeping.

Rollouts from before the wrapper (2025) hold a first line ``{id, timestamp, instructions}``
and bare response items; they read the same way.

Messages: each real user prompt (user ``message`` items that are not the context Codex
injects, like ``<environment_context>`` or AGENTS.md instructions) is a user message; each
assistant text is an assistant message that carries the reasoning and tool calls (with
their outputs) that led to it, the way Claude Code counts its messages (see `_Builder`).
messageCount counts these. The title is the thread's name when it was renamed
(``~/.codex/session_index.jsonl``), else the first prompt, as ``codex resume`` lists it.
Tokens: ``input`` excludes cached input (``cacheRead``), ``output`` excludes reasoning
tokens (``reasoning``), so the five numbers add up to Codex's total. Codex records no cost.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from .sessions import (
    JsonlTail, PerFile, file_signature, make_session, ms_from_iso, newer, newest_per_session, one_line, prompt_title,
    read_jsonl, to_int,
)

AGENT = "codex"
TOOL_CALLS = ("function_call", "custom_tool_call", "local_shell_call", "web_search_call",
              "tool_search_call", "image_generation_call")
TOOL_OUTPUTS = ("function_call_output", "custom_tool_call_output", "local_shell_call_output",
                "tool_search_output")
_FILENAME_ID = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$", re.I)
_INJECTED = re.compile(r"^\s*(?:<[a-z][\w -]*>|# AGENTS\.md instructions)", re.I)


def codex_home(home: str, env: Dict[str, str]) -> str:
    return env.get("CODEX_HOME") or os.path.join(home, ".codex")


def _unwrap(rec: Dict[str, Any], first: bool) -> Tuple[Optional[str], Dict[str, Any], Any]:
    """(line type, payload, timestamp) for both the wrapped and the 2025 bare format."""
    if isinstance(rec.get("payload"), dict) and isinstance(rec.get("type"), str):
        return rec["type"], rec["payload"], rec.get("timestamp")
    if first and "id" in rec and "timestamp" in rec and "type" not in rec:
        return "session_meta", rec, rec.get("timestamp")
    if rec.get("record_type"):
        return None, rec, None
    if isinstance(rec.get("type"), str):
        return "response_item", rec, rec.get("timestamp")
    return None, rec, None


def _items(value: Any) -> List[Dict[str, Any]]:
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


def _texts(content: Any, kinds: Tuple[str, ...]) -> List[str]:
    if isinstance(content, str):
        return [content]
    return [c["text"] for c in _items(content) if c.get("type") in kinds and isinstance(c.get("text"), str)]


def user_prompt(item: Dict[str, Any]) -> Optional[str]:
    """The text of a real user prompt, or None for injected context and other roles."""
    if item.get("type") != "message" or item.get("role") != "user":
        return None
    texts = [t for t in _texts(item.get("content"), ("input_text", "text")) if t.strip()]
    images = [c for c in _items(item.get("content")) if c.get("type") == "input_image"]
    if not texts and not images:
        return None
    if texts and all(_INJECTED.search(t) for t in texts):
        return None
    real = [t for t in texts if not _INJECTED.search(t)]
    return "\n".join(real) if real else ""


def _tokens(usage: Dict[str, Any]) -> Dict[str, int]:
    inp, cached = to_int(usage.get("input_tokens")), to_int(usage.get("cached_input_tokens"))
    out, reasoning = to_int(usage.get("output_tokens")), to_int(usage.get("reasoning_output_tokens"))
    return {"input": max(0, inp - cached), "output": max(0, out - reasoning), "reasoning": reasoning,
            "cacheRead": cached, "cacheWrite": to_int(usage.get("cache_write_input_tokens"))}


class _Builder:
    """Folds rollout items into messages (parts kept only when ``keep_parts``).

    As Claude Code counts its messages, an assistant message is a reply with text: the
    reasoning and tool calls of the same model response join it, those of earlier responses
    without text wait for the next text (or, when the turn ends without one, join the
    turn's last reply or become a message of their own).
    """

    def __init__(self, keep_parts: bool) -> None:
        self.keep = keep_parts
        self.messages: List[Dict[str, Any]] = []
        self.tools: Dict[str, Dict[str, Any]] = {}
        self.first_prompt: Optional[str] = None
        self.turn_msg: Optional[Dict[str, Any]] = None  # the turn's latest reply with text
        self.resp_msg: Optional[Dict[str, Any]] = None  # the reply of the model response being read
        self.pending: List[Dict[str, Any]] = []
        self.pending_at: Optional[Tuple[Optional[float], str]] = None

    @property
    def count(self) -> int:
        return len(self.messages) + (1 if self.pending and self.turn_msg is None else 0)

    def _part(self, part: Dict[str, Any]) -> Dict[str, Any]:
        return part if self.keep else {"type": part["type"]}

    def _new(self, role: str, ts: Optional[float], ident: str, parts: List[Dict[str, Any]]) -> Dict[str, Any]:
        from .sessions import iso_from_ms

        msg = {"id": ident, "role": role, "time": iso_from_ms(ts), "parts": parts}
        self.messages.append(msg)
        return msg

    def end_turn(self) -> None:
        if self.pending:
            if self.turn_msg is not None:
                self.turn_msg["parts"].extend(self.pending)
            else:
                ts, ident = self.pending_at or (None, "reply")
                self._new("assistant", ts, ident, self.pending)
        self.pending, self.pending_at = [], None
        self.turn_msg = self.resp_msg = None

    def _non_text(self, part: Dict[str, Any], ts: Optional[float], ident: str) -> None:
        if self.resp_msg is not None:
            self.resp_msg["parts"].append(part)
        else:
            self.pending.append(part)
            self.pending_at = self.pending_at or (ts, ident)

    def add(self, item: Dict[str, Any], ts: Optional[float], line: int) -> None:
        kind = item.get("type")
        ident = str(item.get("id") or "%s-%d" % (kind or "item", line))
        prompt = user_prompt(item)
        if prompt is not None:
            self.end_turn()
            if self.first_prompt is None and prompt.strip():
                self.first_prompt = prompt
            parts: List[Dict[str, Any]] = [{"type": "text", "text": prompt}] if prompt else []
            for c in _items(item.get("content")):
                if c.get("type") == "input_image":
                    url = c.get("image_url")
                    part: Dict[str, Any] = {"type": "file", "mime": "image/*"}
                    if isinstance(url, str) and not url.startswith("data:"):
                        part["url"] = url
                    parts.append(part)
            self._new("user", ts, ident, [self._part(p) for p in parts])
            return
        if kind == "message" and item.get("role") == "assistant":
            text = "".join(_texts(item.get("content"), ("output_text", "text")))
            if not text.strip():
                return
            part = self._part({"type": "text", "text": text})
            if self.resp_msg is not None:
                self.resp_msg["parts"].append(part)
            else:
                self.resp_msg = self._new("assistant", ts, ident, self.pending + [part])
                self.pending, self.pending_at = [], None
            self.turn_msg = self.resp_msg
        elif kind == "reasoning":
            summary = "\n\n".join(_texts(item.get("summary"), ("summary_text",)))
            if not summary:
                summary = "\n\n".join(_texts(item.get("content"), ("reasoning_text", "text")))
            if summary.strip():
                self._non_text(self._part({"type": "reasoning", "text": summary}), ts, ident)
        elif kind in TOOL_CALLS:
            args: Any = item.get("arguments", item.get("input", item.get("action")))
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    pass
            done = kind == "web_search_call" and item.get("status") == "completed"
            part = {"type": "tool", "tool": str(item.get("name") or kind.replace("_call", "")),
                    "input": args, "output": None, "status": "completed" if done else "pending",
                    "callId": item.get("call_id") or item.get("id")}
            if part["callId"] and self.keep:
                self.tools[str(part["callId"])] = part
            self._non_text(self._part(part), ts, ident)
        elif kind in TOOL_OUTPUTS:
            self.resp_msg = None  # what the model says next is a new response
            part = self.tools.pop(str(item.get("call_id")), None)
            if part is not None and self.keep:
                output = item.get("output")
                status = "completed"
                if isinstance(output, dict):  # {"content": ..., "success": bool}
                    if output.get("success") is False:
                        status = "error"
                    output = output.get("content", output)
                part["output"] = output
                part["status"] = status

    def finish(self) -> List[Dict[str, Any]]:
        """The messages so far; a turn still running keeps its waiting parts pending."""
        if not self.pending or self.turn_msg is not None:
            extra: List[Dict[str, Any]] = []
        else:
            from .sessions import iso_from_ms

            ts, ident = self.pending_at or (None, "reply")
            extra = [{"id": ident, "role": "assistant", "time": iso_from_ms(ts), "parts": list(self.pending)}]
        return self.messages + extra


class Rollout:
    """One rollout file, read incrementally."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tail = JsonlTail(path)
        self._reset()

    def _reset(self) -> None:
        self.meta: Dict[str, Any] = {}
        self.builder = _Builder(keep_parts=False)
        self.total_usage: Optional[Dict[str, Any]] = None
        self.record_usage: Dict[str, Dict[str, Any]] = {}
        self.last_ms: Optional[float] = None
        self.cwd: Optional[str] = None
        self.lines = 0
        self._summary: Optional[Dict[str, Any]] = None
        self._done = False

    def refresh(self, names: Dict[str, str]) -> Optional[Dict[str, Any]]:
        if self._done and not self.tail.changed():
            return self._with_name(names)
        reset, records = self.tail.read_new()
        if reset:
            self._reset()
        for rec in records:
            self._add(rec)
        self._summary = self._summarize()
        self._done = True
        return self._with_name(names)

    def _with_name(self, names: Dict[str, str]) -> Optional[Dict[str, Any]]:
        s = self._summary
        if s is not None and names.get(s["sessionId"]):
            s = dict(s, title=one_line(names[s["sessionId"]]))
        return s

    def _add(self, rec: Dict[str, Any]) -> None:
        kind, payload, ts = _unwrap(rec, self.lines == 0)
        self.lines += 1
        ms = ms_from_iso(ts)
        if ms is not None:
            self.last_ms = ms if self.last_ms is None else max(self.last_ms, ms)
        else:
            ms = self.last_ms  # the 2025 bare items carry no time of their own
        if kind == "session_meta":
            if not self.meta:
                self.meta = payload
            self.cwd = self.cwd or payload.get("cwd")
        elif kind == "turn_context":
            self.cwd = self.cwd or payload.get("cwd")
        elif kind == "response_item":
            self.builder.add(payload, ms, self.lines)
        elif kind == "event_msg":
            if payload.get("type") == "token_count" and isinstance(payload.get("info"), dict):
                total = payload["info"].get("total_token_usage")
                if isinstance(total, dict):
                    self.total_usage = total
        elif kind == "token_usage_record":
            usage = payload.get("usage")
            if isinstance(usage, dict):
                self.record_usage[str(payload.get("response_id") or len(self.record_usage))] = usage

    def session_id(self) -> Optional[str]:
        sid = self.meta.get("id") or self.meta.get("session_id")
        if not sid:
            m = _FILENAME_ID.search(os.path.basename(self.path))
            sid = m.group(1) if m else None
        return str(sid) if sid else None

    def is_subagent(self) -> bool:
        source = self.meta.get("source")
        return isinstance(source, dict) and any(k in source for k in ("subagent", "sub_agent"))

    def _summarize(self) -> Optional[Dict[str, Any]]:
        sid = self.session_id()
        if sid is None or self.is_subagent() or self.builder.count == 0:
            return None
        if self.total_usage is not None:
            tokens = _tokens(self.total_usage)
        else:
            tokens = {"input": 0, "output": 0, "reasoning": 0, "cacheRead": 0, "cacheWrite": 0}
            for usage in self.record_usage.values():
                for k, v in _tokens(usage).items():
                    tokens[k] += v
        title = prompt_title(self.builder.first_prompt or "")
        return make_session(AGENT, sid, title, self.cwd, self.builder.count, self.last_ms, tokens, None)

    def messages(self) -> List[Dict[str, Any]]:
        builder = _Builder(keep_parts=True)
        last: Optional[float] = None
        for i, rec in enumerate(read_jsonl(self.path)):
            kind, payload, ts = _unwrap(rec, i == 0)
            last = ms_from_iso(ts) or last
            if kind == "response_item":
                builder.add(payload, last, i + 1)
        return builder.finish()


class CodexReader:
    agent = AGENT

    def __init__(self, home: str, env: Optional[Dict[str, str]] = None) -> None:
        self.root = codex_home(home, env or {})
        self._rollout = PerFile(Rollout)
        self._names_sig: Any = None
        self._names: Dict[str, str] = {}

    def _paths(self) -> List[str]:
        paths = []
        base = os.path.join(self.root, "sessions")
        for folder, dirs, files in os.walk(base):
            dirs.sort()
            for name in files:
                if name.startswith("rollout-") and name.endswith(".jsonl"):
                    paths.append(os.path.join(folder, name))
        return paths

    def _thread_names(self) -> Dict[str, str]:
        """Renamed threads: ``session_index.jsonl`` lines ``{id, thread_name, updated_at}``."""
        path = os.path.join(self.root, "session_index.jsonl")
        sig = file_signature(path)
        if sig != self._names_sig:
            names: Dict[str, str] = {}
            for rec in read_jsonl(path) if sig else []:
                if rec.get("id") and isinstance(rec.get("thread_name"), str):
                    names[str(rec["id"])] = rec["thread_name"]
            self._names, self._names_sig = names, sig
        return self._names

    def summaries(self) -> Dict[str, Dict[str, Any]]:
        names = self._thread_names()
        paths = self._paths()
        self._rollout.keep_only(paths)
        return newest_per_session(self._rollout(path).refresh(names) for path in paths)

    def _find(self, session_id: str) -> Optional[Tuple[Rollout, Dict[str, Any]]]:
        names = self._thread_names()
        paths = self._paths()
        # The id is in the file name; a file whose meta says otherwise is found the slow way.
        named = [p for p in paths if session_id.lower() in os.path.basename(p).lower()]
        for group in (named, [p for p in paths if p not in set(named)]):
            best = None
            for path in group:
                r = self._rollout(path)
                s = r.refresh(names)
                if s is not None and s["sessionId"] == session_id and newer(s, best[1] if best else None):
                    best = (r, s)
            if best is not None:
                return best
        return None

    def summary(self, session_id: str) -> Optional[Dict[str, Any]]:
        found = self._find(session_id)
        return found[1] if found else None

    def messages(self, session_id: str) -> Optional[List[Dict[str, Any]]]:
        found = self._find(session_id)
        return found[0].messages() if found else None
