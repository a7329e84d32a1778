"""The agent commands of the CLI, and a server restart while a task runs, against `perry serve`."""

from __future__ import annotations

import json
import time

import pytest
import requests

from ..conftest import TEST_PREFIX
from .conftest import until
from .agents import CallbackServer, add_replies, opencode, start_model
from .test_cli import perry

pytestmark = pytest.mark.engine


def test_sessions_usage_chat_and_tasks_from_the_cli(served, docker_client):
    env = served
    perry(env, "create", "clia")
    container = docker_client.containers.get(f"{TEST_PREFIX}clia")
    start_model(container, [
        {"tool": "write", "input": {"filePath": "/home/workspace/notes.md", "content": "# notes\n"}},
        "Created notes.md.",
    ], title="Start the notes")
    assert opencode(container, "--format", "json", "make notes").exit_code == 0

    [session] = json.loads(perry(env, "sessions", "clia", "--json").stdout)
    table = perry(env, "sessions", "clia").stdout
    assert session["sessionId"] in table and "Start the notes" in table and "opencode" in table
    shown = perry(env, "sessions", "show", "clia", session["sessionId"]).stdout
    assert "Start the notes" in shown and "tool: write (completed)" in shown
    assert "/home/workspace/notes.md" in shown and "Created notes.md." in shown
    assert "user" in shown and "assistant" in shown

    usage = json.loads(perry(env, "usage", "clia", "--json").stdout)
    assert usage["total"]["tokens"]["input"] == session["tokens"]["input"] > 0
    assert "total" in perry(env, "usage").stdout

    add_replies(container, ["Chatting back."])
    assert "Chatting back." in perry(env, "chat", "clia", session["sessionId"], "still there?").stdout

    add_replies(container, ["Task finished nicely."])
    done = json.loads(perry(env, "dispatch", "clia", "finish the notes", "--wait", "--json").stdout)
    assert done["status"] == "succeeded" and done["summary"] == "Task finished nicely."
    listed = json.loads(perry(env, "tasks", "clia", "--json").stdout)
    assert [t["id"] for t in listed] == [done["id"]]
    shown = perry(env, "task", "clia", done["id"]).stdout
    assert "succeeded" in shown and "Task finished nicely." in shown
    r = perry(env, "task", "clia", "tsk_0000000000000000", check=False)
    assert r.returncode == 1 and "no task" in r.stderr
    r = perry(env, "dispatch", "clia", "x", "--callback-token", "t", check=False)
    assert r.returncode == 2 and "--callback" in r.stderr

    # Cancelling: a task whose agent waits on a long command ends, the command with it; a
    # finished task stays as it ended.
    add_replies(container, [{"tool": "bash", "input": {"command": "sleep 313", "description": "Wait"}}])
    running = json.loads(perry(env, "dispatch", "clia", "wait for a while", "--json").stdout)
    until(lambda: container.exec_run(["pgrep", "-f", "sleep 313"]).exit_code == 0)
    assert "cancelled" in perry(env, "cancel", "clia", running["id"]).stdout
    for leftover in ("opencode run", "sleep 313"):
        assert container.exec_run(["pgrep", "-f", leftover]).exit_code == 1, leftover
    again = json.loads(perry(env, "task", "clia", running["id"], "--json").stdout)
    assert again["status"] == "cancelled"
    assert "succeeded" in perry(env, "cancel", "clia", done["id"]).stdout


def test_server_restart_while_a_task_runs(server, docker_client):
    env = server.cli_env()
    perry(env, "create", "restart")
    container = docker_client.containers.get(f"{TEST_PREFIX}restart")
    start_model(container, ["step " * 30 + "all done."], delay=0.8)  # ~8 s of streaming
    hook = CallbackServer()
    try:
        task = json.loads(perry(env, "dispatch", "restart", "take your time", "--callback", hook.url,
                                "--callback-token", "tok", "--json").stdout)
        until(lambda: "opencode" in container.exec_run(["pgrep", "-a", "-f", "opencode run"]).output.decode())
        server.kill()  # the server dies; the task goes on in the workspace
        until(lambda: container.exec_run(["pgrep", "-f", "opencode run"]).exit_code != 0, timeout=120)
        assert hook.calls == []
        server.start()

        def final():
            r = requests.get(f"{server.url}/perry/api/workspaces/restart/tasks/{task['id']}",
                             headers=server.headers, timeout=10)
            t = r.json()
            return t if t["status"] not in ("queued", "running") and t["callback"]["delivered"] else None
        done = until(final)
        assert done["status"] == "succeeded" and done["exitCode"] == 0
        assert done["summary"].endswith("all done.")
        time.sleep(2)  # a second delivery would come within the poll interval
        assert len(hook.calls) == 1 and hook.calls[0]["authorization"] == "Bearer tok"
        assert hook.calls[0]["body"]["text"].startswith("Done: ")
    finally:
        hook.close()
