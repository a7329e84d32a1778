"""`perry sessions resume NAME ID`: the real OpenCode TUI on a session, in the user's own terminal.

A real `perry serve`, the real engine and the real OpenCode CLI of the default image; the CLI
runs in a pseudo-terminal driven by pexpect, as `perry shell` is tested.
"""

from __future__ import annotations

import json

import pexpect
import pytest
import requests

from ..conftest import TEST_PREFIX
from .agents import start_model
from .conftest import PERRY, until
from .test_cli import perry
from .test_resume_in_terminal import PROJECT, resuming

pytestmark = pytest.mark.engine

WORKSPACE = "clresume"
HOME = {"HOME": "/home/workspace"}


def opencode_session(container) -> str:
    """A session made by the worker's task runner in the project directory."""
    container.exec_run(["mkdir", "-p", PROJECT], user="workspace")
    r = container.exec_run(["perry-worker", "task", "start", "--id", "tsk_cli", "--agent", "opencode",
                            "--prompt", "Say something", "--dir", PROJECT, "--json"], user="workspace", environment=HOME)
    assert r.exit_code == 0, r.output

    def ended():
        task = json.loads(container.exec_run(["perry-worker", "task", "status", "tsk_cli", "--json"],
                                             user="workspace", environment=HOME).output)
        return task if task["status"] != "running" else None
    task = until(ended, timeout=180)
    assert task["status"] == "succeeded" and task["sessionId"], task
    return task["sessionId"]


def test_resume_attaches_the_agent_and_leaves_a_shell(served, server, docker_client):
    perry(served, "create", WORKSPACE)
    container = docker_client.containers.get(f"{TEST_PREFIX}{WORKSPACE}")
    start_model(container, [], default="Resumable answer.")
    session = opencode_session(container)

    child = pexpect.spawn(PERRY, ["sessions", "resume", WORKSPACE, session], env=served, encoding="utf-8",
                          timeout=90, dimensions=(40, 120))
    try:
        child.expect("ctrl\\+p")  # OpenCode's own TUI, in this terminal
        [agent] = until(lambda: resuming(container, "opencode", session), timeout=30)[-1:]
        assert agent["cwd"] == PROJECT
        for p in resuming(container, "opencode", session):
            container.exec_run(["kill", "-TERM", str(p["pid"])], user="root")
        child.expect_exact("[perry] opencode exited")
        child.sendline("echo left-$((6*7))")
        child.expect("left-42")
        child.sendline("exit 4")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 4, child.before
    terminals = requests.get(f"{server.url}/perry/api/workspaces/{WORKSPACE}/terminals", headers=server.headers,
                             timeout=10).json()["terminals"]
    assert terminals == []


def test_resume_errors_and_no_terminal_to_attach(served, docker_client):
    perry(served, "create", WORKSPACE)
    r = perry(served, "sessions", "resume", WORKSPACE, "ses_nobodyhasit", check=False)
    assert r.returncode == 1 and "has no session 'ses_nobodyhasit'" in r.stderr, r
    container = docker_client.containers.get(f"{TEST_PREFIX}{WORKSPACE}")
    start_model(container, [], default="Resumable answer.")
    session = opencode_session(container)
    # Not a terminal (a script, a notebook): the terminal is opened on the server and named.
    r = perry(served, "sessions", "resume", WORKSPACE, session, input="")
    assert f"Resumed session {session} (opencode) in terminal perry_{WORKSPACE}_Resume_opencode_1" in r.stdout, r
