"""Driving agents: dispatched tasks that call back, cancelling, continuing conversations."""

from __future__ import annotations

import asyncio
import time

import pytest

from ..conftest import TEST_PREFIX
from .agents import CallbackServer, add_replies, opencode, start_model
from .conftest import next_event, until_async as until

pytestmark = pytest.mark.engine


async def make_workspace(api, docker_client, name, replies, **model):
    code, ws = await api("POST", "workspaces", {"name": name})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}{name}")
    start_model(container, replies, **model)
    return container


async def test_dispatched_task_writes_its_file_and_calls_back(api, docker_client):
    container = await make_workspace(api, docker_client, "tasker", [
        {"tool": "write", "input": {"filePath": "/home/workspace/report.txt", "content": "all good\n"}},
        "Wrote report.txt with the results.",
    ], title="Write a report")
    hook = CallbackServer()
    try:
        code, task = await api("POST", "workspaces/tasker/tasks", {
            "agent": "opencode", "prompt": "write report.txt", "callback": {"url": hook.url, "token": "s3cret"}})
        assert code == 201, task
        assert task["status"] in ("queued", "running") and task["id"].startswith("tsk_")
        assert "token" not in task["callback"]

        async def finished():
            code, t = await api("GET", f"workspaces/tasker/tasks/{task['id']}")
            return t if t["status"] not in ("queued", "running") else None
        done = await until(finished)
        assert done["status"] == "succeeded" and done["exitCode"] == 0, done
        assert container.exec_run(["cat", "/home/workspace/report.txt"]).output == b"all good\n"

        await until(hook.delivered)
        [call] = hook.calls
        assert call["authorization"] == "Bearer s3cret"
        assert call["body"]["text"] == "Done: Wrote report.txt with the results."
        assert call["body"]["mode"] == "now" and call["body"]["task"]["id"] == task["id"]
        assert "token" not in call["body"]["task"]["callback"]

        code, sessions = await api("GET", "workspaces/tasker/sessions")
        assert [s["sessionId"] for s in sessions["sessions"]] == [done["sessionId"]]
        code, listing = await api("GET", "workspaces/tasker/tasks")
        assert [t["id"] for t in listing["tasks"]] == [task["id"]]
    finally:
        hook.close()


async def test_callback_that_fails_twice_arrives_once(api, docker_client):
    await make_workspace(api, docker_client, "retry", ["Nothing to do."])
    hook = CallbackServer(fail_first=2)
    try:
        code, task = await api("POST", "workspaces/retry/tasks",
                               {"prompt": "say something", "callback": {"url": hook.url}})
        assert code == 201, task

        async def saved_as_delivered():
            # The hook records its 200 before the server has saved the delivery: wait for the server.
            code, t = await api("GET", f"workspaces/retry/tasks/{task['id']}")
            return t if t["callback"]["delivered"] else None
        t = await until(saved_as_delivered)
        assert t["callback"]["attempts"] == 3 and t["callback"]["lastError"] is None, t["callback"]
        assert [c["answered"] for c in hook.calls] == [500, 500, 200]
        assert hook.calls[0]["authorization"] is None  # no token given, none sent
        assert {c["idempotencyKey"] for c in hook.calls} == {task["id"]}  # so a receiver can drop repeats
        await asyncio.sleep(3)  # nothing more comes after a delivery
        assert len(hook.calls) == 3
    finally:
        hook.close()


def agent_processes(container) -> str:
    return container.exec_run(["pgrep", "-a", "-f", "opencode run"]).output.decode()


async def test_cancel_ends_the_agent_process(api, docker_client):
    container = await make_workspace(api, docker_client, "canceller", ["x" * 3200], delay=0.5)
    code, task = await api("POST", "workspaces/canceller/tasks", {"prompt": "talk for a long time"})
    assert code == 201
    await until(lambda: "opencode" in agent_processes(container))
    code, cancelled = await api("DELETE", f"workspaces/canceller/tasks/{task['id']}")
    assert code == 200 and cancelled["status"] == "cancelled", cancelled
    assert agent_processes(container) == ""
    code, t = await api("GET", f"workspaces/canceller/tasks/{task['id']}")
    assert t["status"] == "cancelled"


async def test_bad_dispatches(api, docker_client):
    await make_workspace(api, docker_client, "badtask", [])
    for body, words in [({}, "prompt"), ({"prompt": ""}, "prompt"), ({"prompt": "x", "agent": "vim"}, "unknown agent"),
                        ({"prompt": "x", "callback": {"url": "ftp://x"}}, "http(s)"),
                        ({"prompt": "x", "colour": 1}, "unknown field"),
                        ({"prompt": "x", "sessionId": "--all"}, "invalid session id")]:
        code, err = await api("POST", "workspaces/badtask/tasks", body)
        assert code == 400 and words in err["error"]["message"], (body, err)
    # The default image carries OpenCode only: a Claude task is refused up front, saying how to get it.
    code, ws = await api("GET", "workspaces/badtask")
    assert ws["agents"] == ["opencode"]
    code, err = await api("POST", "workspaces/badtask/tasks", {"prompt": "x", "agent": "claude"})
    assert code == 409 and err["error"]["code"] == "agent_missing", err
    assert "`perry build --agents opencode,claude`" in err["error"]["message"]
    code, err = await api("POST", "workspaces/badtask/tasks", {"prompt": "x", "sessionId": "ses_nobody"})
    assert code == 404 and "has no opencode session 'ses_nobody'" in err["error"]["message"], err
    code, listing = await api("GET", "workspaces/badtask/tasks")
    assert listing["tasks"] == []
    code, err = await api("GET", "workspaces/badtask/tasks/tsk_0000000000000000")
    assert code == 404


async def test_continue_sessions_through_serve_and_run(api, jp_ws_fetch, docker_client):
    container = await make_workspace(api, docker_client, "chatty", ["First answer."], title="Chat test")
    # A session made by `opencode run` before any `opencode serve` existed.
    assert opencode(container, "--format", "json", "hello there").exit_code == 0
    code, sessions = await api("GET", "workspaces/chatty/sessions")
    [session] = sessions["sessions"]
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "chatty"})
    add_replies(container, ["Second answer.", "Third answer."])
    started = time.monotonic()
    code, reply = await api("POST", f"workspaces/chatty/sessions/{session['sessionId']}/messages",
                            {"text": "and now?"})
    assert code == 200, reply
    assert reply["text"] == "Second answer." and reply["sessionId"] == session["sessionId"]
    # Every listener saw the reply too, as it came.
    event, _ = await next_event(events, lambda e: e["type"] == "session.reply"
                                and e["data"]["part"].get("text") == "Second answer.")
    assert event["workspace"] == "chatty" and event["data"]["sessionId"] == session["sessionId"]
    events.close()
    code, again = await api("POST", f"workspaces/chatty/sessions/{session['sessionId']}/messages",
                            {"text": "once more"})
    assert code == 200 and again["text"] == "Third answer.", again
    assert time.monotonic() - started < 120
    code, page = await api("GET", f"workspaces/chatty/sessions/{session['sessionId']}/messages")
    texts = [p.get("text") for m in page["messages"] if m["role"] == "assistant" for p in m["parts"]]
    assert texts[-2:] == ["Second answer.", "Third answer."]
    code, err = await api("POST", f"workspaces/chatty/sessions/{session['sessionId']}/messages", {"text": ""})
    assert code == 400


async def test_a_task_cut_short_by_a_workspace_restart_fails_and_says_why(api, docker_client):
    container = await make_workspace(api, docker_client, "restarted", [
        {"tool": "bash", "input": {"command": "python3 -c 'import time; time.sleep(300)'", "description": "Wait"}}])
    hook = CallbackServer()
    try:
        code, task = await api("POST", "workspaces/restarted/tasks",
                               {"prompt": "wait a long time", "callback": {"url": hook.url}})
        assert code == 201, task
        await until(lambda: container.exec_run(["pgrep", "-f", "time.sleep"]).exit_code == 0)
        for action in ("stop", "start"):
            code, ws = await api("POST", f"workspaces/restarted/{action}")
            assert code == 200, ws

        async def ended():
            code, t = await api("GET", f"workspaces/restarted/tasks/{task['id']}")
            return t if t["status"] not in ("queued", "running") and t["callback"]["delivered"] else None
        done = await until(ended)
        assert done["status"] == "failed" and "workspace stopped" in done["error"], done
        assert [c["body"]["text"] for c in hook.calls] == [f"Failed: {done['error']}"]
    finally:
        hook.close()
