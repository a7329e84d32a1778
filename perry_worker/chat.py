"""Continue an agent's conversation: one more user message, the agent's reply back.

OpenCode goes through `opencode serve` (started on demand, one per workspace, on
the workspace's loopback). The server only knows the sessions of the project it
was started in and those it loaded; a session it does not know (made by
`opencode run` before the server started: the case that hung the original Perry's
UI) falls back to `opencode run --session ID`. Claude Code is `claude -p --resume`,
Codex `codex exec resume`, each given the message on its stdin. Everything is bounded by
a timeout; an agent that fails raises AgentFailed with its own reason (failures.py) as
soon as it is known, and a reply with nothing in it is a failure too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import select
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional

from . import failures, procs
from .agents import AGENTS
from .tasks import SESSION_ID, agent_env, final_text, json_events, prompt_input

OnPart = Optional[Callable[[Dict[str, Any]], None]]

SERVE_FILE = os.path.join(".perry", "opencode-serve.json")
BUSY_IS_PROGRESS = 3.0  # seconds of `opencode serve` working on a turn that mean the model answers


class ChatError(Exception):
    pass


class AgentFailed(ChatError):
    """The agent ran and failed; the message is its own reason, in one line."""


AGENT_OF_CLI = {a.cli: a.name for a in AGENTS.values()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw.strip() else None


def opencode_server(home: str, directory: str, wait: float = 30.0) -> str:
    """The base URL of this workspace's `opencode serve`, started if it is not running."""
    path = os.path.join(home, SERVE_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            known = json.load(f)
        if procs.running(known["pid"], "serve --port %d" % known["port"]):
            return "http://127.0.0.1:%d" % known["port"]
    except (OSError, ValueError, KeyError):
        pass
    port = _free_port()
    env = dict(os.environ, HOME=home, PWD=directory)
    log = open(os.path.join(home, ".perry", "opencode-serve.log"), "ab")
    process = subprocess.Popen(["opencode", "serve", "--port", str(port), "--hostname", "127.0.0.1"],
                               cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                               start_new_session=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"pid": process.pid, "port": port, "directory": directory}, f)
    url = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ChatError("opencode serve exited at start (see ~/.perry/opencode-serve.log)")
        try:
            _http("GET", url + "/session", timeout=2)
            return url
        except (OSError, urllib.error.URLError, ValueError):
            time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    raise ChatError("opencode serve did not answer within %.0fs" % wait)


def _text_parts(parts: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for part in parts or []:
        if part.get("type") in ("text", "reasoning") and isinstance(part.get("text"), str):
            out.append({"type": part["type"], "text": part["text"]})
        elif part.get("type") == "tool":
            state = part.get("state") or {}
            out.append({"type": "tool", "tool": part.get("tool"), "input": state.get("input"),
                        "output": state.get("output"), "status": state.get("status")})
    return out


def _run(argv: List[str], directory: str, home: str, timeout: float, prompt: str, on_part: OnPart = None) -> str:
    """Run the agent's one-shot command with ``prompt`` on its stdin; its stdout. Each reply part
    it prints goes to ``on_part`` as it comes, so a listener sees the answer grow. An agent that
    fails raises AgentFailed with its own reason, as soon as it is known."""
    agent_name = AGENT_OF_CLI.get(argv[0], argv[0])
    watch = failures.Watch(agent_name)
    try:
        with prompt_input(prompt) as stdin:
            agent = subprocess.Popen(argv, cwd=directory, env=agent_env(agent_name, home, directory), stdin=stdin,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        raise AgentFailed("cannot run %s: %s" % (argv[0], e)) from None
    out, err = bytearray(), bytearray()
    streams = {agent.stdout.fileno(): out, agent.stderr.fileno(): err}
    pending = {fd: b"" for fd in streams}
    deadline = time.monotonic() + timeout
    while streams:
        left = deadline - time.monotonic()
        if left <= 0:
            procs.end_tree(agent.pid)  # the agent and whatever its tools started
            agent.wait()
            raise AgentFailed("%s did not answer within %.0fs" % (argv[0], timeout))
        for fd in select.select(list(streams), [], [], min(left, 1.0))[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                del streams[fd]
                continue
            streams[fd].extend(chunk)
            pending[fd] += chunk
            *lines, pending[fd] = pending[fd].split(b"\n")
            for line in lines:
                watch.feed(line.decode("utf-8", "replace"))
                for part in _event_parts(line) if fd == agent.stdout.fileno() and on_part is not None else []:
                    on_part(part)
        reason = watch.overdue()
        if reason:
            procs.end_tree(agent.pid)
            agent.wait()
            raise AgentFailed(reason)
    for rest in pending.values():
        watch.feed(rest.decode("utf-8", "replace"))
    agent.wait()
    output = out.decode("utf-8", "replace")
    reason = watch.verdict(agent.returncode, err.decode("utf-8", "replace") or output, final_text(output))
    if reason:
        raise AgentFailed(reason)
    return output


def _event_parts(line: bytes) -> List[Dict[str, Any]]:
    """The reply parts in one line of an agent's JSON event stream (OpenCode, Claude Code, Codex)."""
    events = list(json_events(line.decode("utf-8", "replace")))
    if not events:
        return []
    event = events[0]
    if isinstance(event.get("part"), dict):  # OpenCode: {"type": "text"|"tool_use", "part": {...}}
        return _text_parts([event["part"]])
    message = event.get("message") if event.get("type") == "assistant" else None
    if isinstance(message, dict) and isinstance(message.get("content"), list):  # Claude Code
        parts = []
        for block in message["content"]:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append({"type": "text", "text": block["text"]})
            elif block.get("type") == "tool_use":
                parts.append({"type": "tool", "tool": block.get("name"), "input": block.get("input"),
                              "output": None, "status": "running"})
        return parts
    item = event.get("item") if event.get("type") == "item.completed" else None
    if isinstance(item, dict):  # Codex
        if item.get("type") in ("agent_message", "assistant_message") and isinstance(item.get("text"), str):
            return [{"type": "text", "text": item["text"]}]
        if item.get("type") == "command_execution":
            return [{"type": "tool", "tool": "shell", "input": {"command": item.get("command")},
                     "output": item.get("aggregated_output"), "status": item.get("status")}]
    return []


def _serve_message(url: str, session_id: str, query: str, text: str, timeout: float) -> Any:
    """POST the message to `opencode serve` and wait for the reply, while watching the session's
    status: when OpenCode has been retrying the model too long, abort the turn and fail with
    OpenCode's own complaint instead of waiting out its retries."""
    watch = failures.Watch("opencode")
    answer: Dict[str, Any] = {}

    def post() -> None:
        try:
            answer["reply"] = _http("POST", "%s/session/%s/message%s" % (url, session_id, query),
                                    {"parts": [{"type": "text", "text": text}]}, timeout=timeout)
        except (OSError, urllib.error.URLError, ValueError) as e:
            answer["error"] = e

    sender = threading.Thread(target=post, daemon=True)
    sender.start()
    busy_since = None
    while sender.is_alive():
        sender.join(0.5)
        try:
            status = (_http("GET", "%s/session/status%s" % (url, query), timeout=5) or {}).get(session_id) or {}
        except (OSError, urllib.error.URLError, ValueError):
            continue
        if status.get("type") == "retry":
            busy_since = None
            watch.retrying(failures.one_line(status.get("message") or "the model did not answer"))
        elif status.get("type") == "busy":
            # Busy between two retries too, but only for the moment a refused request takes.
            busy_since = busy_since or time.monotonic()
            if time.monotonic() - busy_since > BUSY_IS_PROGRESS:
                watch.progress()
        reason = watch.overdue()
        if reason:
            try:
                _http("POST", "%s/session/%s/abort%s" % (url, session_id, query), timeout=10)
            except (OSError, urllib.error.URLError, ValueError):
                pass
            raise AgentFailed(reason)
    if "error" in answer:
        raise ChatError("opencode serve did not answer within %.0fs: %s" % (timeout, answer["error"]))
    return answer.get("reply")


def _stored_parts(url: str, session_id: str, query: str, reply: Any) -> List[Dict[str, Any]]:
    """The reply's parts as OpenCode stored them, when its answer came without them (seen once
    under load in the fuzz run: an answer with no parts and no error); none if it has none."""
    message_id = ((reply or {}).get("info") or {}).get("id")
    if not isinstance(message_id, str):
        return []
    try:
        stored = _http("GET", "%s/session/%s/message/%s%s" % (url, session_id, message_id, query), timeout=10)
    except (OSError, urllib.error.URLError, ValueError):
        return []
    return _text_parts((stored or {}).get("parts") or [])


def continue_session(home: str, session: Dict[str, Any], text: str, timeout: float = 300.0,
                     on_part: OnPart = None) -> Dict[str, Any]:
    """Send ``text`` into ``session`` (the common session shape); returns the reply.

    ``on_part`` gets the reply's parts as the agent produces them (through `opencode serve`,
    all of them when the answer is complete)."""
    agent, session_id = session["agent"], session["sessionId"]
    directory = session.get("directory") or home
    if not os.path.isdir(directory):
        directory = home
    if agent == "opencode":
        url = opencode_server(home, directory)
        query = "?" + urllib.parse.urlencode({"directory": directory})
        try:
            _http("GET", "%s/session/%s%s" % (url, session_id, query), timeout=10)
            known = True
        except urllib.error.HTTPError as e:
            if e.code not in (400, 404):
                raise ChatError("opencode serve answered %d for the session" % e.code) from None
            known = False
        except (OSError, urllib.error.URLError, ValueError):
            known = False
        if known:
            reply = _serve_message(url, session_id, query, text, timeout)
            parts = _text_parts((reply or {}).get("parts") or [])
            error = ((reply or {}).get("info") or {}).get("error")
            if isinstance(error, dict):
                raise AgentFailed(failures.event_error({"type": "error", "error": error}))
            if not parts:
                parts = _stored_parts(url, session_id, query, reply)
            if not parts:
                raise AgentFailed("opencode ended without a reply")
            for part in parts if on_part is not None else []:
                on_part(part)
            return {"sessionId": session_id, "agent": agent, "via": "opencode serve",
                    "reply": {"role": "assistant", "parts": parts}, "text": _joined(parts)}
        output = _run(["opencode", "run", "--format", "json", "--print-logs", "--log-level", "ERROR",
                       "--session", session_id], directory, home, timeout, text, on_part)
        return _from_stream(session_id, agent, "opencode run", output)
    if agent == "claude":
        output = _run(["claude", "-p", "--resume", session_id, "--output-format", "stream-json",
                       "--verbose", "--permission-mode", "bypassPermissions"], directory, home, timeout, text, on_part)
        return _from_stream(session_id, agent, "claude -p --resume", output)
    if agent == "codex":
        output = _run(["codex", "exec", "--json", "--skip-git-repo-check", "--sandbox", "danger-full-access",
                       "resume", session_id, "-"], directory, home, timeout, text, on_part)
        return _from_stream(session_id, agent, "codex exec resume", output)
    raise ChatError("cannot continue %s sessions" % agent)


def _joined(parts: List[Dict[str, Any]]) -> str:
    return "\n".join(p["text"] for p in parts if p.get("type") == "text").strip()


def _from_stream(session_id: str, agent: str, via: str, output: str) -> Dict[str, Any]:
    parts: List[Dict[str, Any]] = []
    for event in json_events(output):
        part = event.get("part")
        if isinstance(part, dict):
            parts.extend(_text_parts([part]))
    text = _joined(parts) or final_text(output).strip()
    if not parts and text:
        parts = [{"type": "text", "text": text}]
    found: Optional[str] = (SESSION_ID.findall(output) or [session_id])[0]
    return {"sessionId": found or session_id, "agent": agent, "via": via,
            "reply": {"role": "assistant", "parts": parts}, "text": text}
