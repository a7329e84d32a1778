"""tests/modelserver.py, the stand-in model the real agents talk to in tests (wire formats)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.modelserver import ModelServer

REPO = Path(__file__).resolve().parents[2]
OPENCODE_TITLE_SYSTEM = "You are a title generator. You output ONLY a thread title. Nothing else."
WRITE_TOOL = {"type": "function", "function": {"name": "write", "parameters": {"type": "object"}}}
CLAUDE_WRITE_TOOL = {"name": "Write", "input_schema": {"type": "object"}}


def post(url, body, raw=False):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        data = resp.read().decode()
        return (resp.headers.get("Content-Type"), data) if raw else json.loads(data)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def sse(text):
    """[(event name or None, data)] of an SSE body."""
    events = []
    for frame in text.strip().split("\n\n"):
        name, data = None, None
        for line in frame.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        events.append((name, data if data == "[DONE]" else json.loads(data)))
    return events


@pytest.fixture
def server():
    with ModelServer(replies=[
        {"text": "Writing.", "tool": "write", "input": {"filePath": "/w/a.txt", "content": "a"},
         "reasoning": "think", "usage": {"input": 1000, "output": 20, "reasoning": 5, "cacheRead": 300}},
        "Done writing.",
    ], default="Fallback.", title="Short title") as s:
        yield s


def test_openai_stream_title_then_tool_call_then_text(server):
    url = server.openai_base_url + "/chat/completions"
    ctype, body = post(url, {"model": "m", "stream": True, "messages": [
        {"role": "system", "content": OPENCODE_TITLE_SYSTEM}, {"role": "user", "content": "Generate a title"}]}, raw=True)
    assert ctype == "text/event-stream"
    events = sse(body)
    assert events[-1] == (None, "[DONE]")
    chunks = [d for _, d in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Short title"
    assert server.pending == 2  # the title request took nothing from the queue

    body = post(url, {"model": "m", "stream": True, "tools": [WRITE_TOOL],
                      "messages": [{"role": "user", "content": "write a"}]}, raw=True)[1]
    chunks = [d for _, d in sse(body)[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "think"
    assert "".join(d.get("content") or "" for d in deltas) == "Writing."
    calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "write" and calls[0]["id"]
    assert json.loads("".join(tc["function"]["arguments"] for tc in calls)) == {"filePath": "/w/a.txt", "content": "a"}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    usage = [c["usage"] for c in chunks if c.get("usage")][-1]
    assert usage["prompt_tokens"] == 1300 and usage["completion_tokens"] == 25
    assert usage["prompt_tokens_details"]["cached_tokens"] == 300

    reply = post(url, {"model": "m", "tools": [WRITE_TOOL], "messages": [{"role": "user", "content": "go"}]})
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"] == "Done writing."
    assert reply["choices"][0]["finish_reason"] == "stop" and reply["usage"]["completion_tokens"] >= 1
    reply = post(url, {"model": "m", "tools": [WRITE_TOOL], "messages": [{"role": "user", "content": "again"}]})
    assert reply["choices"][0]["message"]["content"] == "Fallback."
    assert [r["kind"] for r in server.requests] == ["title", "main", "main", "main"]
    assert server.responses[1]["usage"] == {"input": 1000, "output": 20, "reasoning": 5, "cacheRead": 300,
                                            "cacheWrite": 0}


def test_anthropic_stream_events(server):
    url = server.url + "/v1/messages"
    body = post(url, {"model": "claude-x", "stream": True, "max_tokens": 100, "tools": [CLAUDE_WRITE_TOOL],
                      "messages": [{"role": "user", "content": "write a"}]}, raw=True)[1]
    events = sse(body)
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert all(n == d["type"] for n, d in events)
    starts = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    assert names.count("content_block_stop") == 3
    deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == "think"
    assert "".join(d.get("text", "") for d in deltas if d["type"] == "text_delta") == "Writing."
    tool_json = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    assert json.loads(tool_json) == {"filePath": "/w/a.txt", "content": "a"}
    tool_start = [d["content_block"] for n, d in events if n == "content_block_start"][2]
    assert tool_start["name"] == "write" and tool_start["id"].startswith("toolu_")
    message_delta = [d for n, d in events if n == "message_delta"][0]
    assert message_delta["delta"]["stop_reason"] == "tool_use"
    assert message_delta["usage"]["output_tokens"] == 20 and message_delta["usage"]["cache_read_input_tokens"] == 300
    assert events[0][1]["message"]["usage"]["input_tokens"] == 1000


def test_anthropic_title_as_json_and_side_requests(server):
    url = server.url + "/v1/messages"
    title = post(url, {"model": "claude-x", "system": [{"type": "text", "text": "Generate a concise, sentence-case "
                                                        "title (3-7 words)... Return JSON with a single \"title\" field."}],
                       "output_config": {"format": {"type": "json_schema"}},
                       "messages": [{"role": "user", "content": "<session>hi</session>"}]})
    assert json.loads(title["content"][0]["text"]) == {"title": "Short title"}
    side = post(url, {"model": "claude-x", "messages": [{"role": "user", "content": "quota"}]})
    assert side["content"][0]["text"] == "Fallback." and server.pending == 2


def test_responses_api_stream(server):
    body = post(server.openai_base_url + "/responses", {"model": "gpt-5", "stream": True, "tools": [WRITE_TOOL],
                                                         "input": [{"role": "user", "content": "write"}]}, raw=True)[1]
    events = sse(body)
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    done = [d["item"] for n, d in events if n == "response.output_item.done"]
    assert [i["type"] for i in done] == ["reasoning", "message", "function_call"]
    assert json.loads(done[2]["arguments"]) == {"filePath": "/w/a.txt", "content": "a"}
    assert events[-1][1]["response"]["usage"]["input_tokens"] == 1300


def test_models_and_health(server):
    assert "m" in [m["id"] for m in get(server.openai_base_url + "/models")["data"]]
    assert get(server.url + "/_health") == {"ok": True, "pending": 2}


def test_script_mode_in_a_process(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"replies": ["From the script."], "default": "Default.", "title": "T"}))
    log = tmp_path / "log.jsonl"
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "modelserver.py"), "--port", "0",
                             "--script", str(script), "--log", str(log)],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=""))
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("modelserver listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1]
        ask = {"model": "m", "tools": [WRITE_TOOL], "messages": [{"role": "user", "content": "hi"}]}
        assert post(url + "/v1/chat/completions", ask)["choices"][0]["message"]["content"] == "From the script."
        assert post(url + "/_replies", ["Added later."]) == {"pending": 1}
        assert post(url + "/v1/chat/completions", ask)["choices"][0]["message"]["content"] == "Added later."
        assert post(url + "/v1/chat/completions", ask)["choices"][0]["message"]["content"] == "Default."
        assert len(get(url + "/_requests")) == 3
        assert len(log.read_text().splitlines()) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
