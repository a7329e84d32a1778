"""Agent sessions: the real OpenCode CLI inside a real workspace, seen through Perry."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import pytest

from ..conftest import TEST_PREFIX
from .conftest import next_event, until_async as until
from .agents import add_replies, opencode, start_model

pytestmark = pytest.mark.engine

WRITE_HELLO = [
    {"tool": "write", "input": {"filePath": "/home/workspace/hello.txt", "content": "hi from the model\n"}},
    "I wrote hello.txt.",
]


def exported(container, session_id):
    """What OpenCode itself shows of a session (`opencode export`)."""
    out = container.exec_run(["opencode", "export", session_id], user="workspace",
                             environment={"HOME": "/home/workspace"}, workdir="/home/workspace").output.decode()
    return json.loads(out[out.index("{"):])


async def test_opencode_session_history_usage_and_live_updates(api, jp_ws_fetch, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "agents"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}agents")
    start_model(container, WRITE_HELLO, title="Write a hello file")
    run = opencode(container, "--format", "json", "write hello.txt please")
    assert run.exit_code == 0, run.output[-2000:]
    assert container.exec_run(["cat", "/home/workspace/hello.txt"]).output == b"hi from the model\n"

    code, listing = await api("GET", "workspaces/agents/sessions")
    assert code == 200, listing
    [session] = listing["sessions"]
    own = exported(container, session["sessionId"])
    assert session["agent"] == "opencode"
    assert session["title"] == own["info"]["title"] == "Write a hello file"
    assert session["messageCount"] == len(own["messages"]) == 3  # the prompt, the tool step, the answer
    assert session["directory"] == "/home/workspace"
    assert session["tokens"]["input"] > 0 and session["tokens"]["output"] > 0

    code, page = await api("GET", f"workspaces/agents/sessions/{session['sessionId']}/messages")
    assert code == 200 and page["total"] == 3
    assert [m["role"] for m in page["messages"]] == ["user", "assistant", "assistant"]
    # The prompt as OpenCode stored it (it quotes a multi-word argument itself).
    stored_prompt = [p["text"] for p in own["messages"][0]["parts"] if p["type"] == "text"][0]
    assert "write hello.txt please" in stored_prompt
    assert page["messages"][0]["parts"][0] == {"type": "text", "text": stored_prompt}
    [tool] = [p for m in page["messages"] for p in m["parts"] if p["type"] == "tool"]
    assert tool["tool"] == "write" and tool["input"]["filePath"] == "/home/workspace/hello.txt"
    assert page["messages"][-1]["parts"][-1]["text"] == "I wrote hello.txt."
    code, second_page = await api("GET", f"workspaces/agents/sessions/{session['sessionId']}/messages",
                                  params={"limit": "1", "offset": "2"})
    assert [m["id"] for m in second_page["messages"]] == [page["messages"][2]["id"]]

    code, one = await api("GET", f"workspaces/agents/sessions/{session['sessionId']}")
    assert code == 200 and one["sessionId"] == session["sessionId"]
    code, usage = await api("GET", "workspaces/agents/usage")
    assert code == 200 and usage["total"]["tokens"]["input"] == session["tokens"]["input"]
    code, everywhere = await api("GET", "usage")
    assert everywhere["workspaces"]["agents"]["tokens"]["input"] == session["tokens"]["input"]

    # Live: a second `opencode run` in the session shows up on the events socket within 2 s.
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "agents"})
    await next_event(events, lambda e: e["type"] == "sessions.watching")
    add_replies(container, ["Second answer."])
    opencode(container, "--session", session["sessionId"], "--format", "json", "and once more", detach=True)
    event, arrived = await next_event(events, lambda e: e["type"] == "session.updated"
                                      and e["data"]["messageCount"] == 5)
    assert event["workspace"] == "agents" and event["data"]["sessionId"] == session["sessionId"]
    written = datetime.fromisoformat(event["data"]["lastActivity"].replace("Z", "+00:00")).timestamp()
    assert arrived - written < 2.0, f"event came {arrived - written:.2f}s after the agent wrote"
    assert container.exec_run(["pgrep", "-f", "sessions watch"]).exit_code == 0
    events.close()
    # The last listener gone, the watcher inside the workspace ends too.
    await until(lambda: container.exec_run(["pgrep", "-f", "sessions watch"]).exit_code == 1, timeout=30)


async def test_bad_session_requests(api):
    code, ws = await api("POST", "workspaces", {"name": "nosess"})
    assert code == 201
    code, listing = await api("GET", "workspaces/nosess/sessions")
    assert code == 200 and listing["sessions"] == []  # an empty home is a clean answer
    code, err = await api("GET", "workspaces/nosess/sessions/ses_missing")
    assert code == 404 and "ses_missing" in err["error"]["message"]
    code, err = await api("GET", "workspaces/nosess/sessions", params={"agent": "vim"})
    assert code == 400 and "unknown agent" in err["error"]["message"]
    code, err = await api("GET", "workspaces/nosess/sessions/-rf/messages")
    assert code == 400
    code, err = await api("GET", "workspaces/nosess/sessions/ses_x/messages", params={"limit": "0"})
    assert code == 400
    await api("POST", "workspaces/nosess/stop")
    code, err = await api("GET", "workspaces/nosess/sessions")
    assert code == 409 and "not running" in err["error"]["message"]
