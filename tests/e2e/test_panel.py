"""The Perry panel in a real JupyterLab: create, terminal, stop/start, delete, driven by a browser.

The tests of this module run in order against one lab and one workspace.
"""

from __future__ import annotations

import secrets

import pytest

from .conftest import E2E_PREFIX, E2E_SSH_PORTS

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(180)]

NAME = f"ui-{secrets.token_hex(2)}"


def expect():
    from playwright.sync_api import expect

    return expect


def workspace(page, name: str = NAME):
    return page.locator(f'.perry-workspace[data-workspace="{name}"]')


def open_panel(page):
    panel = page.locator("#perry-panel")
    if not panel.is_visible():
        page.locator('.jp-SideBar [data-id="perry-panel"]').click()
    expect()(panel).to_be_visible()
    return panel


def test_panel_opens_from_the_sidebar(page, lab):
    tab = page.locator('.jp-SideBar [data-id="perry-panel"]')
    expect()(tab).to_be_visible()
    panel = open_panel(page)
    expect()(panel.locator(".perry-header h2")).to_have_text("Perry")
    # Connected to the events stream, the list loaded (empty: a fresh state directory).
    expect()(panel.locator(".perry-live-open")).to_be_visible()
    expect()(panel.locator(".perry-empty")).to_contain_text("No workspaces yet")
    page.shot("panel-empty")
    assert not page.perry_errors


def test_create_validates_then_creates_a_running_workspace(page, lab):
    panel = open_panel(page)
    panel.get_by_role("button", name="New workspace").click()
    name_input = panel.locator('.perry-create input[name="name"]')
    expect()(name_input).to_be_focused()
    name_input.fill("Bad_Name")
    expect()(panel.locator(".perry-field-error")).to_have_text(
        "invalid workspace name 'Bad_Name': use 1-63 lowercase letters, digits and hyphens, "
        "starting and ending with a letter or digit")
    expect()(panel.get_by_role("button", name="Create", exact=True)).to_be_disabled()
    page.shot("create-invalid-name")

    name_input.fill(NAME)
    expect()(panel.locator(".perry-field-error")).to_have_count(0)
    name_input.press("Enter")  # keyboard submits the form
    expect()(panel.locator(".perry-progress")).to_contain_text(f"Creating {NAME}")
    # The workspace shows up at once from the events stream, as creating.
    expect()(workspace(page)).to_have_attribute("data-status", "creating", timeout=20_000)
    page.shot("create-in-progress")

    expect()(workspace(page)).to_have_attribute("data-status", "running", timeout=150_000)
    item = workspace(page)
    expect()(item.locator(".perry-badge")).to_have_text("running")
    expect()(item.locator(".perry-ws-meta")).to_contain_text(f"SSH :{str(E2E_SSH_PORTS[0])[:2]}")
    expect()(panel.locator(".perry-create")).to_have_count(0)
    page.shot("created-running")

    ws = lab.api("GET", f"workspaces/{NAME}").json()
    assert ws["status"] == "running" and E2E_SSH_PORTS[0] <= ws["ports"]["ssh"] <= E2E_SSH_PORTS[1]


def test_a_taken_name_is_flagged_while_typing_and_esc_closes_the_form(page, lab):
    panel = open_panel(page)
    panel.get_by_role("button", name="New workspace").click()
    name_input = panel.locator('.perry-create input[name="name"]')
    name_input.press_sequentially(NAME[:-1])
    expect()(panel.locator(".perry-field-error")).to_have_count(0)
    name_input.press_sequentially(NAME[-1])
    # In the server's words for the same refusal, before anything is sent.
    expect()(panel.locator(".perry-field-error")).to_have_text(f"workspace '{NAME}' already exists")
    message = lab.api("POST", "workspaces", json={"name": NAME}).json()["error"]["message"]
    assert message.startswith(f"workspace '{NAME}' already exists")
    expect()(panel.get_by_role("button", name="Create", exact=True)).to_be_disabled()
    page.shot("create-taken-name")
    name_input.press("Escape")
    expect()(panel.locator(".perry-create")).to_have_count(0)
    assert [w["name"] for w in lab.api("GET", "workspaces").json()["workspaces"]] == [NAME]


def test_server_errors_are_shown_as_they_are(page, lab):
    panel = open_panel(page)
    panel.get_by_role("button", name="New workspace").click()
    form = panel.locator(".perry-create")
    form.locator('input[name="name"]').fill(f"{NAME}-x")
    # Only the server can tell that this path is not a directory on its machine.
    form.locator('input[name="clone"]').fill("/nonexistent/perry-e2e-repo")
    form.locator('input[name="name"]').press("Enter")
    message = lab.api("POST", "workspaces", json={"name": f"{NAME}-x", "clone": "/nonexistent/perry-e2e-repo"}
                      ).json()["error"]["message"]
    expect()(panel.locator(".perry-create .perry-server-message")).to_have_text(message)
    page.shot("create-server-error")
    panel.locator(".perry-create").get_by_role("button", name="Cancel").click()
    expect()(panel.locator(".perry-create")).to_have_count(0)
    expect()(workspace(page)).to_have_attribute("data-status", "running")


def test_terminal_runs_inside_the_workspace(page, lab):
    item = workspace(page)
    item.get_by_role("button", name="Terminal").click()
    terminal = page.locator(".jp-Terminal").last
    expect()(terminal).to_be_visible(timeout=30_000)
    # A JupyterLab terminal whose shell runs in the container: the prompt names the workspace.
    expect()(terminal.locator(".xterm-accessibility-tree")).to_contain_text(f"workspace@{NAME}", timeout=30_000)
    expect()(page.locator(".lm-TabBar-tab.jp-mod-current").first).to_contain_text(f"workspace@{NAME}")
    terminals = lab.api("GET", f"workspaces/{NAME}/terminals").json()["terminals"]
    assert [t["name"] for t in terminals] == [f"perry_{NAME.replace('-', '_')}_1"]
    terminal.locator(".xterm-screen").click()
    page.keyboard.type("echo perry-$((40+2))")
    page.keyboard.press("Enter")
    expect()(terminal.locator(".xterm-accessibility-tree")).to_contain_text("perry-42", timeout=20_000)
    page.shot("terminal-perry-42")


def test_stop_and_start(page, lab):
    panel = open_panel(page)
    item = workspace(page)
    item.get_by_role("button", name="Stop").click()
    expect()(item.locator(".perry-badge")).to_have_text("stopping…")
    expect()(item).to_have_attribute("data-status", "stopped", timeout=60_000)
    expect()(item.locator(".perry-badge")).to_have_text("stopped")
    expect()(item.get_by_role("button", name="Terminal")).to_be_disabled()
    page.shot("stopped")

    start = item.get_by_role("button", name="Start")
    start.focus()
    page.keyboard.press("Enter")  # keyboard-usable controls
    expect()(item).to_have_attribute("data-status", "running", timeout=120_000)
    expect()(item.locator(".perry-badge")).to_have_text("running")
    assert panel.locator(".perry-error").count() == 0
    page.shot("started-again")


def test_expanded_workspace_shows_details_sessions_and_tasks(page, lab):
    item = workspace(page)
    toggle = item.locator(".perry-ws-toggle")
    toggle.click()
    expect()(toggle).to_have_attribute("aria-expanded", "true")
    expect()(item.locator(".perry-details")).to_contain_text(f"{E2E_PREFIX}{NAME}")
    expect()(item.locator(".perry-details dt:text-is('Agents') + dd")).to_have_text("opencode")
    expect()(item.locator(".perry-section h4").first).to_have_text("Sessions")
    expect()(item.locator(".perry-sessions, .perry-section .perry-dim").first).to_be_visible()
    page.shot("expanded")
    toggle.click()
    expect()(toggle).to_have_attribute("aria-expanded", "false")


def test_delete_asks_then_removes_container_and_volumes(page, lab, docker_client):
    item = workspace(page)
    item.get_by_role("button", name="Delete").click()
    dialog = page.locator(".jp-Dialog")
    expect()(dialog).to_be_visible()
    expect()(dialog).to_contain_text(f"{E2E_PREFIX}{NAME}")
    expect()(dialog).to_contain_text(f"{E2E_PREFIX}{NAME}-home")
    expect()(dialog).to_contain_text(f"{E2E_PREFIX}{NAME}-docker")
    page.shot("delete-confirm")

    # Cancelling keeps everything.
    dialog.get_by_role("button", name="Cancel").click()
    expect()(dialog).to_have_count(0)
    expect()(item).to_have_attribute("data-status", "running")

    item.get_by_role("button", name="Delete").click()
    page.locator(".jp-Dialog").get_by_role("button", name=f"Delete {NAME} and its volumes").click()
    expect()(item).to_have_count(0, timeout=60_000)
    page.shot("deleted")
    assert lab.api("GET", f"workspaces/{NAME}").status_code == 404
    names = {v.name for v in docker_client.volumes.list()}
    assert f"{E2E_PREFIX}{NAME}-home" not in names and f"{E2E_PREFIX}{NAME}-docker" not in names
    assert not [c for c in docker_client.containers.list(all=True, filters={"name": f"{E2E_PREFIX}{NAME}"})
                if c.name == f"{E2E_PREFIX}{NAME}"]
    assert not page.perry_errors
