"""Live session events across a workspace's stop and start, with one and with two listeners on
the real events WebSocket; sessions are real Claude Code transcripts appearing in the workspace."""

from __future__ import annotations

import pytest

from ..conftest import TEST_PREFIX
from ..fixtures.worker_homes import CLAUDE_P, CLAUDE_PARALLEL, CLAUDE_PROJECT, CLAUDE_TITLED, FIXTURES
from .agents import _tar
from .conftest import next_event, until_async as until

pytestmark = pytest.mark.engine

PROJECTS = "/home/workspace/.claude/projects"
# The shell that holds one `perry-worker sessions watch` exec (see core/sessions.py).
WATCHER = "^sh -c perry-worker sessions watch"


def add_session(container, session_id: str) -> None:
    """A Claude Code session appears in the workspace, as the CLI writes it."""
    transcript = (FIXTURES / "claude" / "projects" / CLAUDE_PROJECT / f"{session_id}.jsonl").read_bytes()
    container.exec_run(["mkdir", "-p", f"{PROJECTS}/{CLAUDE_PROJECT}"], user="workspace")
    assert container.put_archive(f"{PROJECTS}/{CLAUDE_PROJECT}", _tar({f"{session_id}.jsonl": transcript}))


def watchers_in(container) -> int:
    return int(container.exec_run(["pgrep", "-fc", WATCHER]).output.decode().strip() or 0)


def watching(name):
    return lambda e: e["type"] == "sessions.watching" and e["workspace"] == name


def created(session_id):
    return lambda e: e["type"] == "session.created" and e["data"]["sessionId"] == session_id


async def restart(api, name):
    code, ws = await api("POST", f"workspaces/{name}/stop")
    assert code == 200 and ws["status"] == "stopped", ws
    code, ws = await api("POST", f"workspaces/{name}/start")
    assert code == 200 and ws["status"] == "running", ws


async def test_a_listener_keeps_its_session_events_after_stop_and_start(api, jp_ws_fetch, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "watched"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}watched")
    events = await jp_ws_fetch("perry", "api", "events")
    await next_event(events, watching("watched"))

    await restart(api, "watched")
    await next_event(events, watching("watched"), timeout=30)
    add_session(container, CLAUDE_P)
    event, _ = await next_event(events, created(CLAUDE_P), timeout=30)
    assert event["workspace"] == "watched" and event["data"]["agent"] == "claude"
    assert watchers_in(container) == 1

    events.close()
    await until(lambda: watchers_in(container) == 0, timeout=30)


async def test_two_listeners_across_stop_and_start_and_one_leaving(api, jp_ws_fetch, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "shared"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}shared")
    everything = await jp_ws_fetch("perry", "api", "events")
    only_shared = await jp_ws_fetch("perry", "api", "events", params={"workspace": "shared"})
    for listener in (everything, only_shared):
        await next_event(listener, watching("shared"))
    assert watchers_in(container) == 1  # one watcher serves both

    await restart(api, "shared")
    for listener in (everything, only_shared):
        await next_event(listener, watching("shared"), timeout=30)
    add_session(container, CLAUDE_P)
    for listener in (everything, only_shared):
        event, _ = await next_event(listener, created(CLAUDE_P), timeout=30)
        assert event["workspace"] == "shared"
    assert watchers_in(container) == 1

    # One leaves; the other still hears of new sessions, through the same watcher.
    only_shared.close()
    add_session(container, CLAUDE_TITLED)
    await next_event(everything, created(CLAUDE_TITLED), timeout=30)
    assert watchers_in(container) == 1

    # And once more across a restart, now with one listener left.
    await restart(api, "shared")
    await next_event(everything, watching("shared"), timeout=30)
    add_session(container, CLAUDE_PARALLEL)
    await next_event(everything, created(CLAUDE_PARALLEL), timeout=30)

    everything.close()
    await until(lambda: watchers_in(container) == 0, timeout=30)


async def test_a_listener_for_a_stopped_workspace_hears_of_its_sessions_once_it_starts(api, jp_ws_fetch,
                                                                                       docker_client):
    code, ws = await api("POST", "workspaces", {"name": "sleeper"})
    assert code == 201, ws
    code, ws = await api("POST", "workspaces/sleeper/stop")
    assert code == 200, ws
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "sleeper"})
    await next_event(events, lambda e: e["type"] == "hello")

    code, ws = await api("POST", "workspaces/sleeper/start")
    assert code == 200 and ws["status"] == "running", ws
    await next_event(events, watching("sleeper"), timeout=30)
    container = docker_client.containers.get(f"{TEST_PREFIX}sleeper")
    add_session(container, CLAUDE_P)
    await next_event(events, created(CLAUDE_P), timeout=30)
    events.close()
    await until(lambda: watchers_in(container) == 0, timeout=30)
