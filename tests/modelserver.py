#!/usr/bin/env python3
"""A stand-in language model for tests: OpenAI- and Anthropic-compatible, scripted replies.

Standard library only (Python 3.9+), so the same file serves two ways:

- in a test, in a thread:

      with ModelServer(replies=["Hello!", {"tool": "write", "input": {...}}]) as server:
          ...  # point the agent at server.openai_base_url (OpenAI) or server.url (Anthropic)
          server.requests   # every request received, newest last
          server.responses  # every reply sent: kind, text, tool calls, usage

- as a script inside a workspace container that only has python3:

      python3 modelserver.py --port 8089 --script replies.json [--log requests.jsonl]

  It prints ``modelserver listening on http://127.0.0.1:PORT`` once it accepts
  connections (``--port 0`` picks a free port).

Endpoints: ``POST /v1/chat/completions`` (stream or not; OpenCode, Codex' chat mode, any
OpenAI client), ``POST /v1/messages`` (Anthropic Messages API, stream or not; Claude Code),
``POST /v1/responses`` (OpenAI Responses API, streaming; Codex), ``GET /v1/models``, and for
tests driving a server in a container: ``GET /_requests``, ``GET /_responses``,
``POST /_replies`` (JSON list of replies to append to the queue), ``GET /_health``.

``refuse_auth=True`` (``--refuse-auth``) makes every model request answer 401 with the
provider's own error body, as a provider does for a wrong key: the agents' failure path.

A reply (in the queue, the script file or ``/_replies``) is one of:

- ``"some text"`` or ``{"text": "some text"}``
- ``{"tool": "write", "input": {"filePath": "/x", "content": "hi"}}``: one tool call, with an
  optional ``"text"`` said before it and an optional ``"id"``;
- ``{"tools": [{"tool": ..., "input": ...}, ...]}``: several tool calls in one turn;
- any of these may carry ``"reasoning": "..."`` (streamed as reasoning/thinking) and
  ``"usage": {"input": N, "output": N, "reasoning": N, "cacheRead": N, "cacheWrite": N}``.

Queued replies answer "main" requests in order; when the queue is empty the default reply
(``default=``, ``"default"`` in the script) answers. Side requests never take from the queue:
a title request (OpenCode sends one before its first answer; Claude Code asks for a title
too) gets the ``title`` text, other side requests (no tools offered, e.g. Claude Code's
quota probe or topic check) get the default text. A main request is one that offers tools,
or any request when ``tools_required=False``.

Usage numbers: unless a reply says otherwise, input = characters of the request body // 4
(at least 1) and output = characters of the reply // 4 (at least 1): deterministic, and
recorded in ``responses`` so tests can check the agents' token accounting.

Script file: either a JSON list of replies, or an object
``{"replies": [...], "default": "...", "title": "...", "tools_required": true}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Union

Reply = Union[str, Dict[str, Any]]

DEFAULT_TEXT = "OK."
DEFAULT_TITLE = "Test session"
MODEL_IDS = ("m", "claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5")

# Phrases in the system prompt or first user message of the agents' title requests.
TITLE_MARKERS = (
    "title generator",  # OpenCode: "You are a title generator. You output ONLY a thread title."
    "generate a title",
    "a title for",
    "write a 5-10 word title",
    "sentence-case title",
    "concise title",
    "session title",
)


# --------------------------------------------------------------------------- replies


def normalize_reply(reply: Reply) -> Dict[str, Any]:
    """One reply as ``{"text", "reasoning", "tool_calls": [{"id","name","input"}], "usage"}``."""
    if isinstance(reply, str):
        reply = {"text": reply}
    if not isinstance(reply, dict):
        raise ValueError("a reply is a string or an object, not %r" % (reply,))
    calls = []
    raw_calls = list(reply.get("tools") or [])
    if reply.get("tool"):
        raw_calls.insert(0, {"tool": reply["tool"], "input": reply.get("input", {}), "id": reply.get("id")})
    for call in raw_calls:
        name = call.get("tool") or call.get("name")
        if not name:
            raise ValueError("a tool call needs a name: %r" % (call,))
        calls.append({
            "id": call.get("id") or "call_" + uuid.uuid4().hex[:20],
            "name": str(name),
            "input": call.get("input", call.get("arguments", {})),
        })
    return {
        "text": str(reply.get("text") or ""),
        "reasoning": str(reply.get("reasoning") or ""),
        "tool_calls": calls,
        "usage": dict(reply.get("usage") or {}),
    }


def _usage(reply: Dict[str, Any], request_chars: int) -> Dict[str, int]:
    given = reply.get("usage") or {}
    out_chars = len(reply["text"]) + len(reply["reasoning"]) + sum(
        len(json.dumps(c["input"])) + len(c["name"]) for c in reply["tool_calls"]
    )
    return {
        "input": int(given.get("input", max(1, request_chars // 4))),
        "output": int(given.get("output", max(1, out_chars // 4))),
        "reasoning": int(given.get("reasoning", 0)),
        "cacheRead": int(given.get("cacheRead", 0)),
        "cacheWrite": int(given.get("cacheWrite", 0)),
    }


def _text_of(content: Any) -> str:
    """Plain text of a message content (string, or a list of text blocks/parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text_of(c.get("text", c.get("content", ""))) if isinstance(c, dict) else str(c)
                        for c in content)
    return ""


def is_title_request(body: Dict[str, Any]) -> bool:
    texts = [_text_of(body.get("system", ""))]
    if isinstance(body.get("instructions"), str):
        texts.append(body["instructions"])
    for msg in (body.get("messages") or body.get("input") or [])[:3]:
        if isinstance(msg, dict) and msg.get("role") in ("system", "developer", "user"):
            texts.append(_text_of(msg.get("content", "")))
    blob = " ".join(texts).lower()
    return any(marker in blob for marker in TITLE_MARKERS)


def title_text(body: Dict[str, Any], title: str) -> str:
    """The title as the request wants it: Claude Code asks for JSON ``{"title": ...}``."""
    wants_json = bool((body.get("output_config") or {}).get("format")) or bool(body.get("response_format"))
    system = _text_of(body.get("system", "")).lower()
    if wants_json or 'single "title" field' in system or 'return json' in system:
        return json.dumps({"title": title})
    return title


# --------------------------------------------------------------------------- server


class ModelServer:
    """The stand-in model server; a context manager that runs it in a daemon thread."""

    def __init__(
        self,
        replies: Optional[List[Reply]] = None,
        default: str = DEFAULT_TEXT,
        title: str = DEFAULT_TITLE,
        host: str = "127.0.0.1",
        port: int = 0,
        tools_required: bool = True,
        log_path: Optional[str] = None,
        delay: float = 0.0,
        refuse_auth: bool = False,
    ) -> None:
        self.default = default
        self.refuse_auth = refuse_auth
        self.title = title
        self.tools_required = tools_required
        self.delay = delay  # seconds between streamed chunks (to test live views)
        self.requests: List[Dict[str, Any]] = []
        self.responses: List[Dict[str, Any]] = []
        self._queue = [normalize_reply(r) for r in (replies or [])]
        self._lock = threading.Lock()
        self._log_path = log_path
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.model = self  # type: ignore[attr-defined]
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Root URL: what Anthropic clients take (ANTHROPIC_BASE_URL)."""
        return "http://%s:%d" % (self._httpd.server_address[0], self.port)

    @property
    def openai_base_url(self) -> str:
        """``url + "/v1"``: what OpenAI-style clients take as their base URL."""
        return self.url + "/v1"

    def start(self) -> "ModelServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="modelserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- script

    def add_reply(self, reply: Reply) -> None:
        with self._lock:
            self._queue.append(normalize_reply(reply))

    def add_replies(self, replies: List[Reply]) -> None:
        for r in replies:
            self.add_reply(r)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def main_requests(self) -> List[Dict[str, Any]]:
        return [r for r in self.requests if r["kind"] == "main"]

    def _choose(self, api: str, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        """Record the request, pick its reply and record that too."""
        has_tools = bool(body.get("tools"))
        if is_title_request(body):
            kind, reply = "title", normalize_reply(title_text(body, self.title))
        elif has_tools or not self.tools_required:
            kind = "main"
            with self._lock:
                reply = self._queue.pop(0) if self._queue else normalize_reply(self.default)
        else:
            kind, reply = "side", normalize_reply(self.default)
        chars = len(json.dumps(body))
        reply = dict(reply, usage=_usage(reply, chars))
        record = {"api": api, "path": path, "kind": kind, "model": body.get("model"),
                  "stream": bool(body.get("stream")), "body": body, "time": time.time()}
        answer = {"api": api, "kind": kind, "text": reply["text"], "reasoning": reply["reasoning"],
                  "tool_calls": reply["tool_calls"], "usage": reply["usage"]}
        with self._lock:
            self.requests.append(record)
            self.responses.append(answer)
            if self._log_path:
                with open(self._log_path, "a") as f:
                    f.write(json.dumps({"request": record, "response": answer}) + "\n")
        return reply


def _chunks(text: str, size: int = 16) -> List[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "perry-modelserver/1"

    @property
    def model(self) -> ModelServer:
        return self.server.model  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests
        pass

    # -- plumbing

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> Optional[Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = self._read_chunked()
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"error": {"type": "invalid_request_error", "message": "body is not JSON"}})
            return None

    def _read_chunked(self) -> bytes:
        data = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _sse(self, data: Any, event: Optional[str] = None) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        frame = ("event: %s\n" % event if event else "") + "data: %s\n\n" % text
        self.wfile.write(frame.encode())
        self.wfile.flush()
        if self.model.delay:
            time.sleep(self.model.delay)

    # -- routes

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "type": "model", "created": 0, "owned_by": "perry-tests",
                 "display_name": m} for m in MODEL_IDS]})
        elif path == "/_requests":
            self._json(200, self.model.requests)
        elif path == "/_responses":
            self._json(200, self.model.responses)
        elif path in ("/_health", ""):
            self._json(200, {"ok": True, "pending": self.model.pending})
        else:
            self._json(404, {"error": {"type": "not_found_error", "message": "no route %s" % path}})

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._read_body()
        if body is None:
            return
        try:
            if self.model.refuse_auth and path.startswith(("/v1/", "/chat/", "/messages", "/responses")):
                self._refuse(path)
            elif path in ("/v1/chat/completions", "/chat/completions"):
                self._openai_chat(path, body)
            elif path in ("/v1/messages", "/messages"):
                self._anthropic(path, body)
            elif path in ("/v1/messages/count_tokens",):
                self._json(200, {"input_tokens": max(1, len(json.dumps(body)) // 4)})
            elif path in ("/v1/responses", "/responses"):
                self._responses(path, body)
            elif path == "/_replies":
                replies = body if isinstance(body, list) else [body]
                self.model.add_replies(replies)
                self._json(200, {"pending": self.model.pending})
            else:
                self._json(404, {"error": {"type": "not_found_error", "message": "no route %s" % path}})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away mid-stream

    def _refuse(self, path: str) -> None:
        """401 in the wire format of the API asked (Anthropic's or OpenAI's)."""
        with self.model._lock:
            self.model.requests.append({"api": "refused", "path": path, "kind": "refused", "time": time.time()})
        if "/messages" in path:
            self._json(401, {"type": "error", "error": {"type": "authentication_error",
                                                        "message": "invalid x-api-key"}})
        else:
            self._json(401, {"error": {"message": "Incorrect API key provided: sk-te***st. You can find your API key "
                                       "at https://platform.openai.com/account/api-keys.", "type":
                                       "invalid_request_error", "param": None, "code": "invalid_api_key"}})

    # -- OpenAI chat completions

    def _openai_chat(self, path: str, body: Dict[str, Any]) -> None:
        reply = self.model._choose("openai-chat", path, body)
        u = reply["usage"]
        usage = {
            "prompt_tokens": u["input"] + u["cacheRead"],
            "completion_tokens": u["output"] + u["reasoning"],
            "total_tokens": u["input"] + u["cacheRead"] + u["output"] + u["reasoning"],
            "prompt_tokens_details": {"cached_tokens": u["cacheRead"]},
            "completion_tokens_details": {"reasoning_tokens": u["reasoning"]},
        }
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        model = body.get("model") or "m"
        finish = "tool_calls" if reply["tool_calls"] else "stop"
        tool_calls = [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["input"])}}
            for c in reply["tool_calls"]
        ]
        if not body.get("stream"):
            message: Dict[str, Any] = {"role": "assistant", "content": reply["text"] or None}
            if reply["reasoning"]:
                message["reasoning_content"] = reply["reasoning"]
            if tool_calls:
                message["tool_calls"] = tool_calls
            self._json(200, {"id": cid, "object": "chat.completion", "created": created, "model": model,
                             "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                             "usage": usage})
            return

        def chunk(delta: Dict[str, Any], finish_reason: Optional[str] = None) -> Dict[str, Any]:
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        self._start_sse()
        self._sse(chunk({"role": "assistant", "content": ""}))
        for piece in _chunks(reply["reasoning"]):
            self._sse(chunk({"reasoning_content": piece}))
        for piece in _chunks(reply["text"]):
            self._sse(chunk({"content": piece}))
        for i, call in enumerate(tool_calls):
            self._sse(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]}))
            for piece in _chunks(call["function"]["arguments"], 40):
                self._sse(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
        self._sse(chunk({}, finish))
        self._sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [], "usage": usage})
        self._sse("[DONE]")

    # -- Anthropic messages

    def _anthropic(self, path: str, body: Dict[str, Any]) -> None:
        reply = self.model._choose("anthropic", path, body)
        u = reply["usage"]
        mid = "msg_" + uuid.uuid4().hex[:24]
        model = body.get("model") or "claude-sonnet-4-5"
        stop = "tool_use" if reply["tool_calls"] else "end_turn"
        blocks: List[Dict[str, Any]] = []
        if reply["reasoning"]:
            blocks.append({"type": "thinking", "thinking": reply["reasoning"], "signature": "sig-" + mid})
        if reply["text"] or not reply["tool_calls"]:
            blocks.append({"type": "text", "text": reply["text"]})
        for c in reply["tool_calls"]:
            blocks.append({"type": "tool_use", "id": "toolu_" + c["id"].split("_", 1)[-1], "name": c["name"],
                           "input": c["input"]})
        usage = {"input_tokens": u["input"], "output_tokens": u["output"],
                 "cache_creation_input_tokens": u["cacheWrite"], "cache_read_input_tokens": u["cacheRead"]}
        if not body.get("stream"):
            self._json(200, {"id": mid, "type": "message", "role": "assistant", "model": model,
                             "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage})
            return
        self._start_sse()
        self._sse({"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": dict(usage, output_tokens=1)}}, "message_start")
        for i, block in enumerate(blocks):
            if block["type"] == "thinking":
                self._sse({"type": "content_block_start", "index": i,
                           "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
                          "content_block_start")
                for piece in _chunks(block["thinking"]):
                    self._sse({"type": "content_block_delta", "index": i,
                               "delta": {"type": "thinking_delta", "thinking": piece}}, "content_block_delta")
                self._sse({"type": "content_block_delta", "index": i,
                           "delta": {"type": "signature_delta", "signature": block["signature"]}},
                          "content_block_delta")
            elif block["type"] == "text":
                self._sse({"type": "content_block_start", "index": i,
                           "content_block": {"type": "text", "text": ""}}, "content_block_start")
                for piece in _chunks(block["text"]):
                    self._sse({"type": "content_block_delta", "index": i,
                               "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
            else:
                self._sse({"type": "content_block_start", "index": i,
                           "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"],
                                             "input": {}}}, "content_block_start")
                for piece in _chunks(json.dumps(block["input"]), 40):
                    self._sse({"type": "content_block_delta", "index": i,
                               "delta": {"type": "input_json_delta", "partial_json": piece}},
                              "content_block_delta")
            self._sse({"type": "content_block_stop", "index": i}, "content_block_stop")
        self._sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                   "usage": {"output_tokens": u["output"], "input_tokens": u["input"],
                             "cache_creation_input_tokens": u["cacheWrite"],
                             "cache_read_input_tokens": u["cacheRead"]}}, "message_delta")
        self._sse({"type": "message_stop"}, "message_stop")

    # -- OpenAI Responses API (Codex)

    def _responses(self, path: str, body: Dict[str, Any]) -> None:
        reply = self.model._choose("openai-responses", path, body)
        u = reply["usage"]
        rid = "resp_" + uuid.uuid4().hex[:24]
        model = body.get("model") or "gpt-5"
        usage = {"input_tokens": u["input"] + u["cacheRead"],
                 "input_tokens_details": {"cached_tokens": u["cacheRead"]},
                 "output_tokens": u["output"] + u["reasoning"],
                 "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
                 "total_tokens": u["input"] + u["cacheRead"] + u["output"] + u["reasoning"]}
        items: List[Dict[str, Any]] = []
        if reply["reasoning"]:
            items.append({"type": "reasoning", "id": "rs_" + uuid.uuid4().hex[:20],
                          "summary": [{"type": "summary_text", "text": reply["reasoning"]}]})
        if reply["text"] or not reply["tool_calls"]:
            items.append({"type": "message", "id": "msg_" + uuid.uuid4().hex[:20], "role": "assistant",
                          "status": "completed",
                          "content": [{"type": "output_text", "text": reply["text"], "annotations": []}]})
        for c in reply["tool_calls"]:
            args = c["input"] if isinstance(c["input"], str) else json.dumps(c["input"])
            items.append({"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:20], "call_id": c["id"],
                          "name": c["name"], "arguments": args, "status": "completed"})
        response = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model,
                    "status": "completed", "output": items, "usage": usage}
        if not body.get("stream"):
            self._json(200, response)
            return
        self._start_sse()
        seq = [0]

        def send(event: Dict[str, Any]) -> None:
            event["sequence_number"] = seq[0]
            seq[0] += 1
            self._sse(event, event["type"])

        send({"type": "response.created", "response": dict(response, status="in_progress", output=[])})
        for i, item in enumerate(items):
            if item["type"] == "message":
                send({"type": "response.output_item.added", "output_index": i,
                      "item": dict(item, status="in_progress", content=[])})
                for piece in _chunks(item["content"][0]["text"]):
                    send({"type": "response.output_text.delta", "item_id": item["id"], "output_index": i,
                          "content_index": 0, "delta": piece})
            else:
                send({"type": "response.output_item.added", "output_index": i, "item": item})
            send({"type": "response.output_item.done", "output_index": i, "item": item})
        send({"type": "response.completed", "response": response})


# --------------------------------------------------------------------------- script


def load_script(path: str) -> Dict[str, Any]:
    with open(path) as f:
        script = json.load(f)
    if isinstance(script, list):
        script = {"replies": script}
    if not isinstance(script, dict):
        raise ValueError("the script is a JSON list of replies or an object with 'replies'")
    return script


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Stand-in OpenAI/Anthropic-compatible model server for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--script", help="JSON file: a list of replies or {replies, default, title}")
    parser.add_argument("--default", help="the reply when the queue is empty")
    parser.add_argument("--title", help="the answer to title requests")
    parser.add_argument("--log", help="append each request and reply as a JSON line to this file")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--refuse-auth", action="store_true", help="answer every model request 401")
    args = parser.parse_args(argv)
    script = load_script(args.script) if args.script else {}
    server = ModelServer(
        replies=script.get("replies") or [],
        default=args.default or script.get("default") or DEFAULT_TEXT,
        title=args.title or script.get("title") or DEFAULT_TITLE,
        tools_required=bool(script.get("tools_required", True)),
        host=args.host,
        port=args.port,
        log_path=args.log,
        delay=args.delay,
        refuse_auth=args.refuse_auth,
    )
    print("modelserver listening on %s" % server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
