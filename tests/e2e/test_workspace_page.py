"""A workspace on a main-area page of its own in JupyterLab (desktop size): opened from the panel,
with tabs for its overview, terminals, sessions, tasks, changes and ports.

The tests of this module run in order against one lab and one workspace; OpenCode runs for real
in it against the stand-in model server (tests/modelserver.py).
"""

from __future__ import annotations

import re
import secrets

import pytest

from .conftest import E2E_PREFIX
from .test_phone import axe_violations, slow_down_the_model
from .test_sessions import REPLIES, expect, run, serve_model

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(240)]

NAME = f"wsp-{secrets.token_hex(2)}"


@pytest.fixture(scope="module")
def workspace(lab, docker_client):
    r = lab.api("POST", "workspaces", json={"name": NAME})
    assert r.status_code == 201, r.text
    container = docker_client.containers.get(f"{E2E_PREFIX}{NAME}")
    serve_model(container, REPLIES)
    run(container, "opencode", "run", "Write hello.txt with a greeting")
    return r.json()


def workspace_page(page):
    return page.locator(f"#perry-workspace-page-{NAME}")


def tab(page, name: str):
    return workspace_page(page).get_by_role("tab", name=name)


def test_open_from_the_panel_with_the_ssh_command_to_copy(page, lab, workspace):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url.rstrip("/"))
    page.locator('.jp-SideBar [data-id="perry-panel"]').click()
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    expect()(item).to_have_attribute("data-status", "running")
    item.get_by_role("button", name="Open", exact=True).click()
    view = workspace_page(page)
    expect()(view.locator("h2")).to_have_text(NAME)
    expect()(view.get_by_role("tab")).to_have_text(["Overview", "Terminals", "Sessions", "Tasks", "Changes", "Ports"])
    expect()(tab(page, "Overview")).to_have_attribute("aria-selected", "true")
    expect()(view.get_by_role("button", name="Open", exact=True)).to_have_count(0)  # it is open
    ssh = workspace["sshCommand"]
    expect()(view.locator(".perry-details code")).to_have_text(ssh)
    view.get_by_role("button", name="Copy the SSH command").click()
    expect()(view.get_by_role("button", name="Copy the SSH command")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == ssh
    page.shot("overview")


def test_terminals_new_and_reattached(page, lab, workspace):
    tab(page, "Terminals").click()
    view = workspace_page(page)
    expect()(view.locator(".perry-dim").filter(has_text="No open terminals.")).to_be_visible()
    view.get_by_role("button", name="New terminal").click()
    terminal = page.locator(".jp-Terminal").last
    expect()(terminal.locator(".xterm-accessibility-tree")).to_contain_text(f"workspace@{NAME}", timeout=30_000)
    terminal.locator(".xterm-screen").click()
    page.keyboard.type("echo page-$((40+2))")
    page.keyboard.press("Enter")
    expect()(terminal.locator(".xterm-accessibility-tree")).to_contain_text("page-42", timeout=20_000)
    [opened] = lab.api("GET", f"workspaces/{NAME}/terminals").json()["terminals"]

    # Back on the page, the open terminal is listed; Attach brings it back after its tab is closed.
    page.locator(".lm-TabBar-tab").filter(has_text=re.compile(f"^{NAME}$")).click()
    view.get_by_role("button", name="Reload").click()
    entry = view.locator(".perry-terminal-item").filter(has_text=opened["name"])
    expect()(entry).to_be_visible()
    page.shot("terminals")
    entry.get_by_role("button", name="Attach").click()
    expect()(page.locator(".jp-Terminal:visible .xterm-accessibility-tree")).to_contain_text("page-42", timeout=30_000)


def test_sessions_tab_opens_a_session(page, lab, workspace):
    page.locator(".lm-TabBar-tab").filter(has_text=re.compile(f"^{NAME}$")).click()
    tab(page, "Sessions").click()
    entry = workspace_page(page).locator(".perry-session").filter(has_text="Write a greeting file")
    expect()(entry).to_contain_text("3 msgs")
    entry.click()
    session = page.locator(".perry-session-view")
    expect()(session.locator(".perry-msg")).to_have_count(3)
    expect()(session.locator(".perry-msg-assistant").last).to_contain_text("Done: hello.txt says hello from perry.")


def test_tasks_tab_dispatch_and_cancel(page, lab, workspace, docker_client):
    slow_down_the_model(docker_client.containers.get(f"{E2E_PREFIX}{NAME}"), 3)
    page.locator(".lm-TabBar-tab").filter(has_text=re.compile(f"^{NAME}$")).click()
    tab(page, "Tasks").click()
    view = workspace_page(page)
    view.locator("textarea.perry-task-prompt").fill("Count to a million, slowly")
    view.get_by_role("button", name="Dispatch").click()
    task = view.locator(".perry-task").filter(has_text="Count to a million, slowly")
    expect()(task).to_have_attribute("data-status", "running", timeout=60_000)
    task.get_by_role("button", name="Cancel").click()
    expect()(task).to_have_attribute("data-status", "cancelled", timeout=60_000)
    page.shot("tasks")


def test_changes_and_ports_tabs(page, lab, workspace):
    tab(page, "Changes").click()
    expect()(workspace_page(page).get_by_role("tabpanel")).to_contain_text("/home/workspace")
    tab(page, "Ports").click()
    expect()(workspace_page(page).get_by_role("tabpanel")).to_contain_text("8089")
    page.shot("ports")


@pytest.mark.parametrize("name", ["Overview", "Terminals", "Tasks"])
def test_no_serious_accessibility_violations(page, lab, workspace, name):
    tab(page, name).click()
    violations = axe_violations(page, f"#perry-workspace-page-{NAME}")
    assert violations == []
    assert not page.perry_errors
