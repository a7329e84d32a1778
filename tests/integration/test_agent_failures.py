"""The real agents when they fail, and prompts that must arrive as typed.

For each of OpenCode, Claude Code and Codex, in a workspace made from the agents image:
a dispatched task and a continued conversation carry a prompt full of what shells and
option parsers love to mangle, and the agent's stored user message is that prompt, byte for
byte. Then the model refuses the key (the stand-in answers 401) and then goes down (nothing
listens on its port): the conversation answers 502 ``agent_failed`` with the agent's own
reason in one readable line, long before OpenCode's own 65 s of retries would end, and a
task ends ``failed`` with the same kind of line in its record and its callback.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from ..conftest import TEST_PREFIX
from .agents import CallbackServer, add_replies, start_model, stop_model
from .test_cli import perry
from .test_claude_codex_in_workspace import agents_image, dispatch_and_wait, host_home, perry_config  # noqa: F401

pytestmark = pytest.mark.engine

TASK_PROMPT = "--dash \"double\" 'single' $HOME `echo hi` \\back\nsecond line é 日本 $(id) ; | &&"
CHAT_PROMPT = "-n 'it''s' \"$PATH\" `whoami`\n\t日本語 — ünïcödé\n--"
# What each agent's failure line says, in its own words.
AUTH_WORDS = {"opencode": "Incorrect API key provided", "claude": "Invalid API key",
              "codex": "401 Unauthorized: Incorrect API key provided"}
DOWN_WORDS = {"opencode": "Cannot connect to API", "claude": "Connection refused", "codex": "Connection failed"}
# Comfortably inside OpenCode's own 65 s of retries (2+4+8+16+30 s), and Codex' endless ones.
WELL_BEFORE = 55


async def user_messages(api, workspace: str, session_id: str) -> list[str]:
    code, page = await api("GET", f"workspaces/{workspace}/sessions/{session_id}/messages",
                           params={"limit": "1000"})
    assert code == 200, page
    return ["".join(p["text"] for p in m["parts"] if p["type"] == "text")
            for m in page["messages"] if m["role"] == "user"]


def readable_line(message: str, words: str) -> None:
    assert words in message, message
    assert "\n" not in message and len(message) <= 300 and not message.lstrip().startswith(("{", "[")), message


async def failing_conversation(api, workspace: str, session_id: str) -> dict:
    code, answer = await asyncio.wait_for(
        api("POST", f"workspaces/{workspace}/sessions/{session_id}/messages", {"text": "are you there?"}),
        WELL_BEFORE)
    assert code == 502 and answer["error"]["code"] == "agent_failed", answer
    return answer["error"]


async def failing_task(api, workspace: str, agent: str, session_id: str | None = None) -> tuple[dict, dict]:
    hook = CallbackServer()
    try:
        body = {"agent": agent, "prompt": "try again", "callback": {"url": hook.url}}
        if session_id:
            body["sessionId"] = session_id
        done = await dispatch_and_wait(api, workspace, body)
    finally:
        hook.close()
    assert done["status"] == "failed", done
    [call] = hook.delivered()
    return done, call["body"]


@pytest.mark.parametrize("agent", ["opencode", "claude", "codex"])
async def test_prompts_arrive_as_typed_and_failures_say_why(api, docker_client, agent):
    name = f"fails-{agent}"
    code, ws = await api("POST", "workspaces", {"name": name})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}{name}")
    start_model(container, ["First answer.", "Second answer."])

    # Byte for byte, through a task and through a conversation.
    done = await dispatch_and_wait(api, name, {"agent": agent, "prompt": TASK_PROMPT})
    assert done["status"] == "succeeded" and done["error"] is None, done
    assert done["summary"] == "First answer."
    session_id = done["sessionId"]
    assert await user_messages(api, name, session_id) == [TASK_PROMPT]
    code, reply = await api("POST", f"workspaces/{name}/sessions/{session_id}/messages", {"text": CHAT_PROMPT})
    assert code == 200 and reply["text"] == "Second answer.", reply
    assert await user_messages(api, name, session_id) == [TASK_PROMPT, CHAT_PROMPT]

    # The model answers with nothing at all (Claude Code asks it once more, by itself).
    add_replies(container, ["", "", ""])
    error = await failing_conversation(api, name, session_id)
    assert error["message"] == f"{agent} ended without a reply", error

    # The provider refuses the key.
    stop_model(container)
    start_model(container, [], refuse_auth=True)
    error = await failing_conversation(api, name, session_id)
    readable_line(error["message"], AUTH_WORDS[agent])
    task, callback = await failing_task(api, name, agent, session_id)
    readable_line(task["error"], AUTH_WORDS[agent])
    assert callback["text"] == f"Failed: {task['error']}" and callback["task"]["error"] == task["error"], callback

    # The model is down.
    stop_model(container)
    error = await failing_conversation(api, name, session_id)
    readable_line(error["message"], DOWN_WORDS[agent])
    task, callback = await failing_task(api, name, agent)
    readable_line(task["error"], DOWN_WORDS[agent])
    assert callback["text"] == f"Failed: {task['error']}", callback
    assert task["summary"] is None  # nothing the agent said is passed off as its answer


def test_the_cli_tells_the_agents_reason(served, docker_client):
    """`perry chat`, `perry dispatch --wait`, `perry task` and `perry tasks` show the line."""
    env = served
    perry(env, "create", "failcli")
    container = docker_client.containers.get(f"{TEST_PREFIX}failcli")
    start_model(container, ["Hello."])
    done = json.loads(perry(env, "dispatch", "failcli", "say hello", "--wait", "--json").stdout)
    stop_model(container)
    start_model(container, [], refuse_auth=True)
    reason = ("Incorrect API key provided: sk-te***st. You can find your API key at "
              "https://platform.openai.com/account/api-keys. (HTTP 401)")

    chat = perry(env, "chat", "failcli", done["sessionId"], "still there?", check=False)
    assert chat.returncode != 0 and reason in chat.stderr and "agent_failed" not in chat.stdout, chat
    failed = perry(env, "dispatch", "failcli", "try again", "--wait", check=False)
    assert failed.returncode == 1 and f"error: {reason}" in failed.stdout, failed
    [task] = [t for t in json.loads(perry(env, "tasks", "failcli", "--json").stdout) if t["prompt"] == "try again"]
    assert task["status"] == "failed" and task["error"] == reason and task["summary"] is None, task
    assert f"error: {reason}" in perry(env, "task", "failcli", task["id"]).stdout
    # The CLI itself fails: OpenCode says only "Unexpected server error"; its log says which.
    failed = perry(env, "dispatch", "failcli", "once more", "--model", "nope/x", "--wait", check=False)
    assert failed.returncode == 1 and "error: Model not found: nope/x." in failed.stdout, failed
    # Wide enough for the line in one row: the result column holds it whole.
    assert reason in perry({**env, "COLUMNS": "400"}, "tasks", "failcli").stdout
