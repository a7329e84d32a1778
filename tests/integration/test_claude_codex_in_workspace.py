"""Claude Code and Codex inside a workspace: dispatched tasks and continued conversations.

The image is built with all three agents (`perry build --agents opencode,claude,codex`).
Their provider settings come the way a user's would: from the server user's home
(`~/.claude/settings.json`, `~/.codex/config.toml`), copied in at create. Both CLIs talk to
the stand-in model running on the workspace's loopback.
"""

from __future__ import annotations

import json
import os

import pytest

from perry_jupyter.core.engine import Engine
from perry_jupyter.core.image import ImageBuilder

from ..conftest import TEST_PREFIX
from .agents import MODEL_PORT, CallbackServer, add_replies, start_model
from .conftest import next_event, until_async as until

pytestmark = pytest.mark.engine

AGENTS_IMAGE = os.environ.get("PERRY_TEST_AGENTS_IMAGE", "perry-workspace-agents:latest")
MODEL_URL = f"http://127.0.0.1:{MODEL_PORT}"


@pytest.fixture(scope="module")
def agents_image(docker_client, workspace_image):
    status = ImageBuilder(Engine(), AGENTS_IMAGE, agents=("opencode", "claude", "codex")).build(
        progress=lambda e: e.get("stage") != "build" and print("image:", e.get("message", "")[:200]))
    assert status["agents"] == ["opencode", "claude", "codex"], status
    return AGENTS_IMAGE


@pytest.fixture
def host_home(tmp_path):
    home = tmp_path / "host-home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(json.dumps({"env": {
        "ANTHROPIC_BASE_URL": MODEL_URL, "ANTHROPIC_API_KEY": "sk-ant-test-secret",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}}))
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(
        'model = "gpt-5"\nmodel_provider = "stub"\n\n[model_providers.stub]\nname = "stub"\n'
        f'base_url = "{MODEL_URL}/v1"\nwire_api = "responses"\n')
    return home


@pytest.fixture
def perry_config(perry_config, agents_image, host_home):
    return {**perry_config, "image_tag": agents_image, "host_home": str(host_home)}


async def dispatch_and_wait(api, workspace: str, body: dict) -> dict:
    code, task = await api("POST", f"workspaces/{workspace}/tasks", body)
    assert code == 201, task

    async def finished():
        code, t = await api("GET", f"workspaces/{workspace}/tasks/{task['id']}")
        return t if t["status"] not in ("queued", "running") and (
            not t.get("callback") or t["callback"]["delivered"]) else None
    return await until(finished, timeout=180)


async def only_session(api, workspace: str, agent: str, task: dict) -> dict:
    code, listing = await api("GET", f"workspaces/{workspace}/sessions", params={"agent": agent})
    [session] = listing["sessions"]
    assert session["sessionId"] == task["sessionId"] and session["agent"] == agent, (session, task)
    return session


async def continue_session(api, events, container, workspace: str, session: dict, text: str, answer: str) -> None:
    add_replies(container, [answer])
    code, reply = await api("POST", f"workspaces/{workspace}/sessions/{session['sessionId']}/messages",
                            {"text": text})
    assert code == 200, reply
    assert reply["text"] == answer and reply["sessionId"] == session["sessionId"], reply
    # The reply's parts went out on the events socket as the agent printed them.
    event, _ = await next_event(events, lambda e: e["type"] == "session.reply"
                                and e["data"]["part"].get("text") == answer)
    assert event["data"]["sessionId"] == session["sessionId"]


async def test_claude_task_and_conversation(api, jp_ws_fetch, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "claudews"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}claudews")
    settings = container.exec_run(["stat", "-c", "%a %U", "/home/workspace/.claude/settings.json"])
    assert settings.output.decode().split() == ["600", "workspace"]
    start_model(container, [
        {"text": "Writing notes.", "tool": "Write",
         "input": {"file_path": "/home/workspace/notes.md", "content": "# Notes\n"}},
        "Wrote notes.md.",
    ])
    hook = CallbackServer()
    try:
        done = await dispatch_and_wait(api, "claudews", {
            "agent": "claude", "prompt": "Write the notes file", "callback": {"url": hook.url, "token": "t"}})
    finally:
        hook.close()
    assert done["status"] == "succeeded" and done["exitCode"] == 0, done
    assert container.exec_run(["cat", "/home/workspace/notes.md"]).output == b"# Notes\n"
    assert [c["body"]["text"] for c in hook.calls] == ["Done: Wrote notes.md."]

    session = await only_session(api, "claudews", "claude", done)
    assert session["title"] == "Write the notes file"
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "claudews"})
    await continue_session(api, events, container, "claudews", session, "And then?", "Second answer.")
    code, page = await api("GET", f"workspaces/claudews/sessions/{session['sessionId']}/messages")
    assert [m["role"] for m in page["messages"]] == ["user", "assistant", "assistant", "user", "assistant"]

    code, answer = await api("GET", "workspaces/claudews/tasks")
    assert "sk-ant-test-secret" not in json.dumps(answer)


async def test_codex_task_and_conversation(api, jp_ws_fetch, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "codexws"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}codexws")
    start_model(container, [
        {"text": "Creating the file.", "tool": "exec_command", "input": {"cmd": "echo hi > hi.txt"}},
        "Created hi.txt.",
    ])
    done = await dispatch_and_wait(api, "codexws", {"agent": "codex", "prompt": "make hi.txt"})
    assert done["status"] == "succeeded" and done["exitCode"] == 0, done
    assert done["summary"] == "Created hi.txt."
    assert container.exec_run(["cat", "/home/workspace/hi.txt"]).output == b"hi\n"

    session = await only_session(api, "codexws", "codex", done)
    assert session["title"] == "make hi.txt"
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "codexws"})
    await continue_session(api, events, container, "codexws", session, "anything else?", "Codex again.")
    code, page = await api("GET", f"workspaces/codexws/sessions/{session['sessionId']}/messages")
    assert [m["role"] for m in page["messages"]][-2:] == ["user", "assistant"]
    assert page["messages"][-1]["parts"][-1]["text"] == "Codex again."


async def test_build_remembers_its_agents_only_once_built(api, agents_image):
    code, config = await api("GET", "config")
    assert config["imageAgents"] == ["opencode"]  # PerryApp.image_agents' default, before any build
    code, err = await api("POST", "image/build", {"agents": ["opencode", "vim"]})
    assert code == 400 and "imageAgents must be a list of" in err["error"]["message"], err
    code, config = await api("GET", "config")
    assert config["imageAgents"] == ["opencode"]  # a refused build changes nothing

    # The image already holds all three, so this build only checks and remembers the choice.
    code, body = await api("POST", "image/build", {"agents": ["codex", "opencode", "claude"]})
    assert code == 200
    events = [json.loads(line) for line in body.decode().splitlines()]
    assert events[-1]["stage"] == "done", events[-1]
    assert events[-1]["image"]["agents"] == ["opencode", "claude", "codex"]
    code, config = await api("GET", "config")
    assert config["imageAgents"] == ["opencode", "claude", "codex"]
    code, config = await api("PATCH", "config", {"imageAgents": ["claude", "opencode"]})
    assert code == 200 and config["imageAgents"] == ["opencode", "claude"], config


async def test_a_conversation_that_times_out_ends_what_the_agent_started(api, docker_client):
    """The worker gives up on `claude -p --resume` after its timeout, and ends the agent's tool commands too."""
    code, ws = await api("POST", "workspaces", {"name": "slowchat"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}slowchat")
    start_model(container, ["Hello."])
    done = await dispatch_and_wait(api, "slowchat", {"agent": "claude", "prompt": "Say hello"})
    assert done["status"] == "succeeded", done
    # Not `sleep`: Claude Code refuses long bare sleeps.
    long_command = "python3 -c 'import time; time.sleep(313)'"
    add_replies(container, [{"tool": "Bash", "input": {"command": long_command, "description": "Wait"}}])
    r = container.exec_run(["perry-worker", "chat", done["sessionId"], "--text", "now wait", "--timeout", "8"],
                           user="workspace", environment={"HOME": "/home/workspace"})
    assert r.exit_code == 1 and "claude did not answer within 8s" in r.output.decode(), r.output
    for leftover in ("time.sleep(313)", "claude"):
        assert container.exec_run(["pgrep", "-f", leftover]).exit_code == 1, f"{leftover} outlived the conversation"
