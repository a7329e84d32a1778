"""Idle stop and wake on use, on the real engine: a workspace nobody uses stops with stopReason
"idle"; a task or a terminal with output keeps it up; an exec or a terminal wakes it; one a user
stopped stays stopped."""

from __future__ import annotations

import json

import pytest
import requests

from .agents import start_model
from .conftest import next_event, until, until_async
from .test_cli import perry
from .test_terminals import open_term
from ..conftest import TEST_PREFIX

pytestmark = pytest.mark.engine

TIMEOUT = 3  # seconds: the idle timeout of these tests' workspaces


async def create(api, name, **body):
    code, ws = await api("POST", "workspaces", {"name": name, "idleTimeout": TIMEOUT, **body})
    assert code == 201, ws
    assert ws["idleTimeout"] == TIMEOUT and ws["stopReason"] is None
    return ws


async def events_of(jp_ws_fetch, name):
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": name})
    assert json.loads(await events.read_message())["type"] == "hello"
    return events


def idle_stopped(event):
    return event["type"] == "workspace.idle_stopped"


async def status(api, name):
    code, ws = await api("GET", f"workspaces/{name}")
    assert code == 200, ws
    return ws


async def test_idle_workspace_stops_and_wakes_for_an_exec_and_a_terminal(api, jp_ws_fetch, perry_state_dir):
    events = await events_of(jp_ws_fetch, "dozy")
    await create(api, "dozy")

    event, _ = await next_event(events, idle_stopped, timeout=60)
    assert (event["data"]["status"], event["data"]["stopReason"], event["data"]["idleTimeout"]) == (
        "stopped", "idle", TIMEOUT)
    ws = await status(api, "dozy")
    assert (ws["status"], ws["stopReason"]) == ("stopped", "idle")
    # Kept in the state file, so a restarted server still knows why (and still wakes it).
    record = json.loads((perry_state_dir / "state.json").read_text())["workspaces"]["dozy"]
    assert (record["status"], record["stopReason"], record["idleTimeout"]) == ("stopped", "idle", TIMEOUT)

    # An exec starts it first, then answers.
    code, result = await api("POST", "workspaces/dozy/exec", {"command": ["echo", "awake"]})
    assert code == 200, result
    assert result["stdout"] == "awake\n"
    ws = await status(api, "dozy")
    assert (ws["status"], ws["stopReason"]) == ("running", None)

    # Left alone again, it stops again; a terminal then wakes it and says so before its shell.
    await next_event(events, idle_stopped, timeout=60)
    term = await open_term(jp_ws_fetch, "dozy")
    await term.until("starting workspace dozy")
    await term.type("echo $((6*7)) $(whoami)\r")
    await term.until("42 workspace")
    assert (await status(api, "dozy"))["status"] == "running"
    # The terminal left without output: the workspace stops, and the terminal says why.
    await next_event(events, idle_stopped, timeout=60)
    await term.until("was idle and is stopping")


async def test_a_running_task_keeps_the_workspace_up(api, jp_ws_fetch, docker_client):
    events = await events_of(jp_ws_fetch, "busy")
    await create(api, "busy")
    container = docker_client.containers.get(f"{TEST_PREFIX}busy")
    start_model(container, ["step " * 60 + "all done."], delay=0.8)  # far longer than the timeout
    code, task = await api("POST", "workspaces/busy/tasks", {"agent": "opencode", "prompt": "work slowly"})
    assert code == 201, task

    async def ended():
        code, t = await api("GET", f"workspaces/busy/tasks/{task['id']}")
        return t if t["status"] not in ("queued", "running") else None
    done = await until_async(ended)
    assert done["status"] == "succeeded", done
    # The whole task long (many timeouts), the workspace ran: no idle stop came.
    assert (await status(api, "busy"))["status"] == "running"
    await next_event(events, idle_stopped, timeout=60)  # once it ended, the workspace idles and stops
    assert (await status(api, "busy"))["stopReason"] == "idle"
    # A dispatch wakes it and answers (the model inside stopped with it: the task itself fails).
    code, task = await api("POST", "workspaces/busy/tasks", {"agent": "opencode", "prompt": "again"})
    assert code == 201, task
    assert (await status(api, "busy"))["status"] == "running"


async def test_a_terminal_with_output_keeps_the_workspace_up(api, jp_ws_fetch):
    events = await events_of(jp_ws_fetch, "chatty")
    await create(api, "chatty")
    term = await open_term(jp_ws_fetch, "chatty")
    await term.type("for i in $(seq 1 15); do echo tick$i; sleep 1; done; echo LOOP-DONE\r")
    await term.until("\r\nLOOP-DONE", timeout=60)  # five timeouts of output
    assert (await status(api, "chatty"))["status"] == "running"
    await next_event(events, idle_stopped, timeout=60)  # and once quiet, it stops
    assert (await status(api, "chatty"))["stopReason"] == "idle"


async def test_a_user_stopped_workspace_does_not_wake_and_patch_checks_its_input(api):
    code, ws = await api("POST", "workspaces", {"name": "manual"})
    assert code == 201, ws
    assert ws["idleTimeout"] == 0  # the server's default: never

    for body, words in [({"idleTimeout": -1}, "idleTimeout must be"), ({"idleTimeout": "60"}, "idleTimeout must be"),
                        ({"idleTimeout": True}, "idleTimeout must be"), ({"idleTimeout": 10**9}, "idleTimeout must be"),
                        ({"idleTimeout": 60, "colour": "red"}, "unknown field"), ({}, "give the fields")]:
        code, err = await api("PATCH", "workspaces/manual", body)
        assert code == 400, (body, err)
        assert words in err["error"]["message"], err
        assert (await status(api, "manual"))["idleTimeout"] == 0  # nothing changed
    code, err = await api("PATCH", "workspaces/nosuch", {"idleTimeout": 60})
    assert code == 404, err
    code, ws = await api("PATCH", "workspaces/manual", {"idleTimeout": 600})
    assert (code, ws["idleTimeout"]) == (200, 600)

    code, ws = await api("POST", "workspaces/manual/stop")
    assert (ws["status"], ws["stopReason"]) == ("stopped", "user")
    code, err = await api("POST", "workspaces/manual/exec", {"command": ["true"]})
    assert code == 409, err
    assert "not running" in err["error"]["message"]
    assert (await status(api, "manual"))["status"] == "stopped"


def test_the_idle_check_survives_a_restart_and_the_cli_wakes_the_workspace(server, served):
    """`perry create --idle-timeout`, a crash of `perry serve` right after: the restarted server
    rebuilds the deadline from the state and stops the workspace; `perry exec` wakes it."""
    perry(served, "create", "phoenix", "--idle-timeout", "4s")
    assert json.loads(perry(served, "info", "phoenix", "--json").stdout)["idleTimeout"] == 4
    server.kill()
    server.start()

    def stopped():
        ws = requests.get(f"{server.url}/perry/api/workspaces/phoenix", headers=server.headers, timeout=60).json()
        return ws if ws["status"] == "stopped" else None
    ws = until(stopped)
    assert ws["stopReason"] == "idle"
    r = perry(served, "info", "phoenix")
    assert "after 4s idle" in r.stdout, r.stdout

    r = perry(served, "exec", "phoenix", "--", "sh", "-c", "echo woke as $(whoami)")
    assert r.stdout.strip() == "woke as workspace", r.stdout
    ws = requests.get(f"{server.url}/perry/api/workspaces/phoenix", headers=server.headers, timeout=60).json()
    assert (ws["status"], ws["stopReason"]) == ("running", None)
    perry(served, "update", "phoenix", "--idle-timeout", "off")
    assert json.loads(perry(served, "info", "phoenix", "--json").stdout)["idleTimeout"] == 0
    r = perry(served, "update", "phoenix", "--idle-timeout", "soon", check=False)
    assert r.returncode != 0 and "not a duration" in r.stderr
