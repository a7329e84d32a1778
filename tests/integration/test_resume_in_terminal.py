"""Resuming agent sessions in terminals, with the real OpenCode, Claude Code and Codex CLIs.

Each agent makes a session by a dispatched task (against the stand-in model on the workspace's
loopback); the session is then resumed through ``POST .../terminals {"session": ID}`` and the
terminal is attached through Jupyter's own terminal WebSocket, as JupyterLab attaches it.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from perry_worker.agents import AGENTS

from ..conftest import TEST_PREFIX
from .agents import start_model
from .conftest import until_async as until
from .test_claude_codex_in_workspace import agents_image, host_home, perry_config  # noqa: F401
from .test_terminals import Term

pytestmark = pytest.mark.engine

PROJECT = "/home/workspace/proj"
CLAUDE_KEY = "sk-ant-test-secret"  # host_home's settings.json
# Escape sequences a TUI draws with: CSI (cursor, colours, modes), OSC (titles), and the short ones.
ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|P[^\x1b]*\x1b\\|[()][0-9A-Za-z]|[@-Z\\-_=>])")
# What each agent's interactive interface draws once it is up (checked against the real CLIs).
# The session's own answer shows too: the agent is on that session, not a new one.
INTERFACE = {"opencode": ("ctrl+p commands", "Resumable answer."), "claude": ("Claude Code", "Resumable answer."),
             "codex": ("OpenAI Codex", "Resumable answer.")}
CLAUDE_USED_BEFORE = r"""
import json, os, sys
path = os.path.expanduser("~/.claude.json")
state = json.load(open(path)) if os.path.exists(path) else {}
state["hasCompletedOnboarding"] = True
state.setdefault("projects", {}).setdefault(sys.argv[1], {})["hasTrustDialogAccepted"] = True
state.setdefault("customApiKeyResponses", {"approved": [], "rejected": []})["approved"].append(sys.argv[2][-20:])
json.dump(state, open(path, "w"))
"""
PROCESSES = r"""
import json, os
out = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\0")[:-1]
        out.append({"pid": int(pid), "argv": argv, "cwd": os.readlink(f"/proc/{pid}/cwd"),
                    "user": os.stat(f"/proc/{pid}").st_uid})
    except OSError:
        pass
print(json.dumps(out))
"""


def screen(out: str) -> str:
    """The text a terminal shows, without the escape sequences that place and colour it."""
    return ESCAPES.sub("", out)


def processes(container) -> list[dict]:
    r = container.exec_run(["python3", "-c", PROCESSES], user="root")
    return json.loads(r.output)


def resuming(container, agent: str, session_id: str) -> list[dict]:
    """The workspace's processes running the agent's resume command on the session."""
    words = AGENTS[agent].resume_argv(session_id)
    return [p for p in processes(container)
            if p["argv"][-len(words) + 1:] == words[1:] and any(a.endswith("/" + words[0]) or a == words[0]
                                                                  for a in p["argv"][:2])]


async def wait_for_screen(term: Term, text: str, timeout: float = 90) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    # TUIs move the cursor over blanks rather than print them: compare without white space.
    while re.sub(r"\s+", "", text) not in re.sub(r"\s+", "", screen(term.out)):
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"{text!r} never showed; the screen had {screen(term.out)[-1500:]!r}"
        try:
            msg = await term.read(left)
        except asyncio.TimeoutError:
            raise AssertionError(f"{text!r} never showed; the screen had {screen(term.out)[-1500:]!r}") from None
        assert msg is not None, f"the terminal closed before {text!r}; it had {screen(term.out)[-1500:]!r}"
    return screen(term.out)


@pytest.mark.parametrize("agent", ["opencode", "claude", "codex"])
async def test_a_session_resumes_in_a_terminal_with_the_agents_own_interface(api, jp_ws_fetch, docker_client,
                                                                             agent):
    code, ws = await api("POST", "workspaces", {"name": "resume"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}resume")
    start_model(container, [], default="Resumable answer.")
    # The session is made in a project directory of its own, by the worker's own task runner.
    container.exec_run(["mkdir", "-p", PROJECT], user="workspace")
    worker = ["perry-worker", "task"]
    r = container.exec_run([*worker, "start", "--id", "tsk_resume", "--agent", agent, "--prompt", "Say something",
                            "--dir", PROJECT, "--json"], user="workspace", environment={"HOME": "/home/workspace"})
    assert r.exit_code == 0, r.output

    def ended():
        task = json.loads(container.exec_run([*worker, "status", "tsk_resume", "--json"], user="workspace",
                                             environment={"HOME": "/home/workspace"}).output)
        return task if task["status"] != "running" else None
    task = await until(ended, timeout=180)
    assert task["status"] == "succeeded" and task["sessionId"], task
    code, session = await api("GET", f"workspaces/resume/sessions/{task['sessionId']}")
    assert code == 200 and session["agent"] == agent and session["directory"] == PROJECT, session

    if agent == "claude":
        # As for a user who has used Claude Code here before: no first-run onboarding (which checks
        # that api.anthropic.com answers), the project folder trusted and the API key approved.
        container.exec_run(["python3", "-c", CLAUDE_USED_BEFORE, PROJECT, CLAUDE_KEY], user="workspace")
    code, term = await api("POST", "workspaces/resume/terminals", {"session": session["sessionId"]})
    assert code == 201, term
    assert term["name"] == f"perry_resume_Resume_{agent}_1"
    assert term["resumes"] == {"sessionId": session["sessionId"], "agent": agent,
                               "directory": session["directory"], "command": AGENTS[agent].resume_argv(session["sessionId"])}
    t = Term(await jp_ws_fetch("terminals", "websocket", term["name"]))
    await t.send("set_size", 40, 120)

    # The agent's own CLI runs on that session, as the workspace user, in the session's directory.
    found = await until(lambda: resuming(container, agent, session["sessionId"]), timeout=60)
    assert {p["cwd"] for p in found} == {session["directory"]}, found
    assert {p["user"] for p in found} == {1000}, found
    for text in INTERFACE[agent]:
        await wait_for_screen(t, text)

    # When the agent exits, a shell is left in the terminal, in the same directory.
    for p in found:
        container.exec_run(["kill", "-TERM", str(p["pid"])], user="root")
    await wait_for_screen(t, f"[perry] {AGENTS[agent].cli} exited")
    await t.type("echo in-$((6*7))-$PWD\r")
    await wait_for_screen(t, f"in-42-{session['directory']}")
    code, listing = await api("GET", "workspaces/resume/terminals")
    assert [x["name"] for x in listing["terminals"]] == [term["name"]]
