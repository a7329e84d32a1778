"""Continue an agent's conversation: one more user message, the agent's reply back.

OpenCode goes through `opencode serve` (started on demand, one per workspace, on
the workspace's loopback). The server only knows the sessions of the project it
was started in and those it loaded; a session it does not know (made by
`opencode run` before the server started: the case that hung the original Perry's
UI) falls back to `opencode run --session ID`. Claude Code is `claude -p --resume`,
Codex `codex exec resume`. Everything is bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import select
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional

from . import procs
from .tasks import SESSION_ID, json_events, summarize

OnPart = Optional[Callable[[Dict[str, Any]], None]]

SERVE_FILE = os.path.join(".perry", "opencode-serve.json")


class ChatError(Exception):
    pass


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


def _run(argv: List[str], directory: str, home: str, timeout: float, on_part: OnPart = None) -> str:
    """Run the agent's one-shot command; its stdout. Each reply part it prints goes to
    ``on_part`` as it comes, so a listener sees the answer grow."""
    env = dict(os.environ, HOME=home, PWD=directory, NO_COLOR="1")
    try:
        agent = subprocess.Popen(argv, cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        raise ChatError("cannot run %s: %s" % (argv[0], e)) from None
    out, err, pending = bytearray(), bytearray(), b""
    streams = {agent.stdout.fileno(): out, agent.stderr.fileno(): err}
    deadline = time.monotonic() + timeout
    while streams:
        left = deadline - time.monotonic()
        ready = select.select(list(streams), [], [], max(left, 0))[0] if left > 0 else []
        if not ready:
            procs.end_tree(agent.pid)  # the agent and whatever its tools started
            agent.wait()
            raise ChatError("%s did not answer within %.0fs" % (argv[0], timeout))
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                del streams[fd]
                continue
            streams[fd].extend(chunk)
            if fd == agent.stdout.fileno() and on_part is not None:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    for part in _event_parts(line):
                        on_part(part)
    agent.wait()
    output = out.decode("utf-8", "replace")
    if agent.returncode != 0:
        tail = (err.decode("utf-8", "replace") or output).strip().splitlines()[-3:]
        raise ChatError("%s failed (exit %d): %s" % (argv[0], agent.returncode, " | ".join(tail)))
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
            try:
                reply = _http("POST", "%s/session/%s/message%s" % (url, session_id, query),
                              {"parts": [{"type": "text", "text": text}]}, timeout=timeout)
            except (OSError, urllib.error.URLError) as e:
                raise ChatError("opencode serve did not answer within %.0fs: %s" % (timeout, e)) from None
            parts = _text_parts((reply or {}).get("parts") or [])
            for part in parts if on_part is not None else []:
                on_part(part)
            return {"sessionId": session_id, "agent": agent, "via": "opencode serve",
                    "reply": {"role": "assistant", "parts": parts}, "text": _joined(parts)}
        output = _run(["opencode", "run", "--format", "json", "--session", session_id, text], directory, home,
                      timeout, on_part)
        return _from_stream(session_id, agent, "opencode run", output)
    if agent == "claude":
        output = _run(["claude", "-p", text, "--resume", session_id, "--output-format", "stream-json",
                       "--verbose", "--permission-mode", "bypassPermissions"], directory, home, timeout, on_part)
        return _from_stream(session_id, agent, "claude -p --resume", output)
    if agent == "codex":
        output = _run(["codex", "exec", "--json", "--skip-git-repo-check", "--sandbox", "danger-full-access",
                       "resume", session_id, text], directory, home, timeout, on_part)
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
    text = _joined(parts) or summarize(output)
    if not parts and text:
        parts = [{"type": "text", "text": text}]
    found: Optional[str] = (SESSION_ID.findall(output) or [session_id])[0]
    return {"sessionId": found or session_id, "agent": agent, "via": via,
            "reply": {"role": "assistant", "parts": parts}, "text": text}
