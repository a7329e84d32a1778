"""Searching agent sessions across workspaces: a real OpenCode session made by the real CLI
(talking to the stand-in model) in one workspace, Claude Code and Codex JSONL stores written
in another; each workspace searches its own stores and the server merges the answers."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from perry_jupyter.cli.commands import cli
from perry_jupyter.client import PerryClient

from ..conftest import TEST_PREFIX
from .agents import _tar, start_model
from .conftest import until_async as until

pytestmark = pytest.mark.engine

CLAUDE_SESSION = "3f1c2a9e-0000-4000-8000-000000000001"
CODEX_SESSION = "019a0000-0000-7000-8000-000000000002"


def claude_transcript() -> bytes:
    def line(kind, uuid, when, message, **extra):
        return json.dumps({"parentUuid": None, "isSidechain": False, "type": kind, "message": message, "uuid": uuid,
                           "timestamp": when, "sessionId": CLAUDE_SESSION, "cwd": "/home/workspace/project",
                           "version": "2.1.197", **extra})
    return "\n".join([
        line("user", "u1", "2026-11-29T10:00:00.000Z", {"role": "user", "content": "Where is the QUARTZ flamingo?"}),
        line("assistant", "a1", "2026-11-29T10:00:05.000Z", {"id": "m1", "role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "grep -r 'quartz flamingo' ."}}]}),
        # A tool's output is not a message a user wrote or read as the agent's answer.
        line("user", "u2", "2026-11-29T10:00:06.000Z", {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "notes.txt: quartz flamingo"}]}),
        line("assistant", "a2", "2026-11-29T10:00:09.000Z", {"id": "m2", "role": "assistant", "content": [
            {"type": "text", "text": "It is in notes.txt."}]}),
        "{ a broken line",
    ]).encode() + b"\n"


def codex_rollout() -> bytes:
    def item(when, payload):
        return json.dumps({"timestamp": when, "type": "response_item", "payload": payload})
    return "\n".join([
        json.dumps({"timestamp": "2026-11-28T08:00:00.000Z", "type": "session_meta",
                    "payload": {"id": CODEX_SESSION, "timestamp": "2026-11-28T08:00:00.000Z",
                                "cwd": "/home/workspace/project", "cli_version": "0.169.0"}}),
        item("2026-11-28T08:00:01.000Z", {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "<environment_context>quartz flamingo</environment_context>"}]}),
        item("2026-11-28T08:00:02.000Z", {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "describe the bird"}]}),
        item("2026-11-28T08:00:03.000Z", {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "A quartz Flamingo stands on one leg near the lake shore."}]}),
    ]).encode() + b"\n"


async def real_opencode_session(api, docker_client, name: str) -> str:
    code, ws = await api("POST", "workspaces", {"name": name})
    assert code == 201, ws
    start_model(docker_client.containers.get(f"{TEST_PREFIX}{name}"), ["Flamingos are pink; quartz is not."])
    code, task = await api("POST", f"workspaces/{name}/tasks", {"prompt": "Tell me about the Quartz Flamingo"})
    assert code == 201, task

    async def done():
        code, t = await api("GET", f"workspaces/{name}/tasks/{task['id']}")
        return t if t["status"] not in ("queued", "running") else None
    finished = await until(done)
    assert finished["status"] == "succeeded", finished
    return finished["sessionId"]


async def test_search_finds_messages_of_every_agent_across_workspaces(api, docker_client, jp_http_port, jp_base_url,
                                                                      jp_auth_header):
    opencode_session = await real_opencode_session(api, docker_client, "finder-a")
    code, ws = await api("POST", "workspaces", {"name": "finder-b"})
    assert code == 201, ws
    docker_client.containers.get(f"{TEST_PREFIX}finder-b").put_archive("/home/workspace", _tar({
        f".claude/projects/-home-workspace-project/{CLAUDE_SESSION}.jsonl": claude_transcript(),
        f".codex/sessions/2026/11/28/rollout-2026-11-28T08-00-00-{CODEX_SESSION}.jsonl": codex_rollout(),
    }))

    code, found = await api("GET", "sessions/search", params={"q": "quartz FLAMINGO"})
    assert code == 200, found
    assert found["errors"] == [] and found["truncated"] is False
    got = [(h["workspace"], h["agent"], h["sessionId"], h["role"]) for h in found["results"]]
    # Newest first: the OpenCode session was made just now.
    assert got == [("finder-a", "opencode", opencode_session, "user"),
                   ("finder-b", "claude", CLAUDE_SESSION, "user"),
                   ("finder-b", "codex", CODEX_SESSION, "assistant")], got
    first, claude_hit, codex_hit = found["results"]
    assert first["snippet"] == "Tell me about the Quartz Flamingo" and first["time"].startswith("20")
    assert claude_hit["snippet"] == "Where is the QUARTZ flamingo?" and claude_hit["time"] == "2026-11-29T10:00:00.000Z"
    assert "quartz Flamingo stands" in codex_hit["snippet"]

    code, reply = await api("GET", "sessions/search", params={"q": "PINK; quartz"})
    assert [(h["agent"], h["role"]) for h in reply["results"]] == [("opencode", "assistant")]

    code, only = await api("GET", "sessions/search", params={"q": "flamingo", "agent": "claude"})
    assert [h["agent"] for h in only["results"]] == ["claude"]
    code, only = await api("GET", "sessions/search", params={"q": "flamingo", "workspace": "finder-a"})
    assert {h["workspace"] for h in only["results"]} == {"finder-a"}
    code, one = await api("GET", "sessions/search", params={"q": "flamingo", "limit": "1"})
    assert len(one["results"]) == 1 and one["truncated"] is True
    code, none = await api("GET", "sessions/search", params={"q": "no such words anywhere"})
    assert code == 200 and none["results"] == []

    # `perry sessions search` (and `%perry`, the same commands) through the real server.
    client = PerryClient(f"http://127.0.0.1:{jp_http_port}{jp_base_url.rstrip('/')}",
                         token=jp_auth_header["Authorization"].split()[1])
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["sessions", "search", "quartz flamingo", "--json"],
                                     obj={"client": client})
    assert result.exit_code == 0, result.output
    assert [h["agent"] for h in json.loads(result.output)["results"]] == ["opencode", "claude", "codex"]

    # A stopped workspace is not searched; naming it is a 409.
    await api("POST", "workspaces/finder-b/stop")
    code, found = await api("GET", "sessions/search", params={"q": "flamingo"})
    assert {h["workspace"] for h in found["results"]} == {"finder-a"} and found["errors"] == []
    code, err = await api("GET", "sessions/search", params={"q": "flamingo", "workspace": "finder-b"})
    assert code == 409, err


async def test_bad_search_input_is_400(api):
    for params, words in [({}, "q must be"), ({"q": "   "}, "q must be"), ({"q": "x" * 201}, "at most 200"),
                          ({"q": "a", "limit": "0"}, "limit must be"), ({"q": "a", "limit": "lots"}, "limit must be"),
                          ({"q": "a", "agent": "gpt"}, "agent must be one of"),
                          ({"q": "a", "workspace": "../etc"}, "name")]:
        code, err = await api("GET", "sessions/search", params=params)
        assert code == 400 and words in err["error"]["message"], (params, err)
    code, err = await api("GET", "sessions/search", params={"q": "a", "workspace": "ghost"})
    assert code == 404
