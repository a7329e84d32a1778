"""A session's "Resume in terminal" button: the real OpenCode TUI on that session, in a JupyterLab terminal.

OpenCode runs for real inside the workspace against the stand-in model server; the session is
made in a project directory by `opencode run`, then resumed from the session view.
"""

from __future__ import annotations

import secrets

import pytest
import requests

from .conftest import E2E_PREFIX
from .test_sessions import HOME, expect, run, serve_model

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(240)]

NAME = f"resume-{secrets.token_hex(2)}"
PROJECT = f"{HOME}/greeter"
REPLIES = {"title": "Greeting file", "default": "The greeting is in hello.txt."}


@pytest.fixture(scope="module")
def session(lab, docker_client):
    r = lab.api("POST", "workspaces", json={"name": NAME})
    assert r.status_code == 201, r.text
    container = docker_client.containers.get(f"{E2E_PREFIX}{NAME}")
    serve_model(container, REPLIES)
    run(container, "mkdir", "-p", PROJECT)
    code, out = container.exec_run(["opencode", "run", "Where is the greeting?"], user="workspace",
                                   workdir=PROJECT, environment={"HOME": HOME})
    assert code == 0, out
    [found] = lab.api("GET", f"workspaces/{NAME}/sessions").json()["sessions"]
    assert found["directory"] == PROJECT, found
    return container, found


def test_resume_button_opens_the_agent_in_a_terminal(page, lab, session):
    container, found = session
    page.locator('.jp-SideBar [data-id="perry-panel"]').click()
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    expect()(item).to_have_attribute("data-status", "running")
    item.locator(".perry-ws-toggle").click()
    item.locator(".perry-session").first.click()
    view = page.locator(".perry-session-view")
    expect()(view.locator(".perry-msg-assistant")).to_contain_text("The greeting is in hello.txt.")

    page.shot("session-view-with-resume")
    view.get_by_role("button", name="Resume in terminal").click()
    terminal = page.locator(".jp-Terminal").last
    expect()(terminal).to_be_visible(timeout=30_000)
    screen = terminal.locator(".xterm-accessibility-tree")
    # OpenCode's own interface, on this session: its conversation and its key hints.
    expect()(screen).to_contain_text("The greeting is in hello.txt.", timeout=60_000)
    expect()(screen).to_contain_text("ctrl+p", timeout=30_000)
    # OpenCode names the terminal's tab after the session, as it names any terminal it runs in.
    expect()(page.locator(".lm-TabBar-tab.jp-mod-current").first).to_contain_text("Greeting file")
    page.wait_for_timeout(1000)  # let the TUI finish drawing for the screenshot
    page.shot("resumed-opencode-terminal")

    terminals = lab.api("GET", f"workspaces/{NAME}/terminals").json()["terminals"]
    [term] = [t for t in terminals if t.get("resumes")]
    assert term["name"] == f"perry_{NAME.replace('-', '_')}_Resume_opencode_1"
    assert term["resumes"]["sessionId"] == found["sessionId"] and term["resumes"]["directory"] == PROJECT
    ps = container.exec_run(["pgrep", "-u", "workspace", "-a", "-f", "--", f"--session {found['sessionId']}"]).output.decode()
    assert "opencode" in ps, ps
    # The terminal tab is one of Jupyter's own terminals (listed under Running Terminals).
    running = requests.get(f"{lab.url}api/terminals", headers={"Authorization": f"token {lab.token}"}, timeout=10)
    assert term["name"] in [t["name"] for t in running.json()]
    assert not page.perry_errors
