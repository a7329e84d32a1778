"""A workspace on a main-area page of its own in JupyterLab: created from the panel, opened,
with tabs for its overview, terminals, sessions, tasks, changes and ports. At desktop size
first, then the same page at 390x844 with touch.

The tests of this module run in order against one lab and one workspace; OpenCode runs for real
in it against the stand-in model server (tests/modelserver.py).
"""

from __future__ import annotations

import re
import secrets

import pytest

from .conftest import E2E_PREFIX, open_lab_page
from .test_panel import open_panel
from .test_phone import PHONE, axe_violations, slow_down_the_model
from .test_sessions import REPLIES, expect, run, serve_model

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(240)]

NAME = f"wsp-{secrets.token_hex(2)}"
# One word longer than any line: it must wrap, not push the page sideways.
LONG_WORD = "https://example.invalid/" + "a-very-long-path-segment" * 8


def workspace_page(page):
    return page.locator(f"#perry-workspace-page-{NAME}")


def tab(page, name: str):
    return workspace_page(page).get_by_role("tab", name=name)


def page_tab(page):
    """The workspace page's own tab in JupyterLab's dock."""
    return page.locator(".lm-TabBar-tab").filter(has_text=re.compile(f"^{NAME}$"))


def fits(locator) -> bool:
    """Nothing inside is wider than the element itself (long text wrapped)."""
    return locator.evaluate("el => el.scrollWidth <= el.clientWidth + 1")


def test_create_from_the_panel_flags_a_taken_name_and_esc_closes_the_form(page, lab):
    panel = open_panel(page)
    panel.get_by_role("button", name="New workspace").click()
    form = panel.locator(".perry-create")
    form.locator('input[name="name"]').press("Escape")
    expect()(form).to_have_count(0)

    panel.get_by_role("button", name="New workspace").click()
    form.locator('input[name="name"]').fill(NAME)
    form.locator('input[name="name"]').press("Enter")
    item = panel.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    expect()(item).to_have_attribute("data-status", "running", timeout=150_000)
    # Usable before Docker inside it answers: the panel says how far that is.
    expect()(item.locator(".perry-dind")).to_have_text("Docker inside: ready", timeout=90_000)
    assert lab.api("GET", f"workspaces/{NAME}").json()["dindStatus"] == "ready"

    panel.get_by_role("button", name="New workspace").click()
    form.locator('input[name="name"]').fill(NAME)
    expect()(form.locator(".perry-field-error")).to_have_text(f"workspace '{NAME}' already exists")
    expect()(form.get_by_role("button", name="Create", exact=True)).to_be_disabled()
    page.shot("create-taken-name")
    form.locator('input[name="name"]').press("Escape")
    expect()(form).to_have_count(0)


@pytest.fixture(scope="module")
def workspace(lab, docker_client):
    """The workspace the panel created, with the stand-in model and one real OpenCode session."""
    container = docker_client.containers.get(f"{E2E_PREFIX}{NAME}")
    serve_model(container, REPLIES)
    run(container, "opencode", "run", "Write hello.txt with a greeting")
    return lab.api("GET", f"workspaces/{NAME}").json()


def test_open_from_the_panel_with_the_ssh_command_to_copy(page, lab, workspace):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url.rstrip("/"))
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    expect()(item).to_have_attribute("data-status", "running")
    item.get_by_role("button", name="Open", exact=True).click()
    view = workspace_page(page)
    expect()(view.locator("h2")).to_have_text(NAME)
    expect()(view.get_by_role("tab")).to_have_text(["Overview", "Terminals", "Sessions", "Tasks", "Changes", "Ports"])
    expect()(tab(page, "Overview")).to_have_attribute("aria-selected", "true")
    expect()(view.get_by_role("button", name="Open", exact=True)).to_have_count(0)  # it is open
    expect()(view.locator(".perry-workspace-page-head .perry-dind")).to_have_text("Docker inside: ready")
    ssh = workspace["sshCommand"]
    expect()(view.locator(".perry-details code")).to_have_text(ssh)
    view.get_by_role("button", name="Copy the SSH command").click()
    expect()(view.get_by_role("button", name="Copy the SSH command")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == ssh
    assert fits(view.locator(".perry-details"))
    page.shot("overview")


def close_terminal_tab(page, terminal: str, choice: str) -> None:
    """Close the terminal's tab (the current one: its label is the shell's title) and answer the question."""
    expect()(page.locator(".jp-Terminal")).to_have_count(1)
    page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabCloseIcon").click()
    dialog = page.locator(".jp-Dialog")
    expect()(dialog).to_contain_text(f"Close terminal {terminal}?")
    page.shot(f"terminal-close-{choice.split()[0].lower()}")
    dialog.get_by_role("button", name=choice).click()
    expect()(dialog).to_have_count(0)
    expect()(page.locator(".jp-Terminal")).to_have_count(0)


def test_terminals_new_kept_reattached_and_ended(page, lab, workspace):
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

    # Closing its tab asks; kept running, it is listed on the page and attaches again.
    close_terminal_tab(page, opened["name"], "Keep running")
    assert [t["name"] for t in lab.api("GET", f"workspaces/{NAME}/terminals").json()["terminals"]] == [opened["name"]]
    page_tab(page).click()
    view.get_by_role("button", name="Reload").click()
    entry = view.locator(".perry-terminal-item").filter(has_text=opened["name"])
    expect()(entry).to_be_visible()
    page.shot("terminals")
    entry.get_by_role("button", name="Attach").click()
    expect()(page.locator(".jp-Terminal:visible .xterm-accessibility-tree")).to_contain_text("page-42", timeout=30_000)

    # Ended, its shell is gone from the workspace.
    close_terminal_tab(page, opened["name"], "End shell")
    assert lab.api("GET", f"workspaces/{NAME}/terminals").json()["terminals"] == []
    page_tab(page).click()
    view.get_by_role("button", name="Reload").click()
    expect()(view.locator(".perry-dim").filter(has_text="No open terminals.")).to_be_visible()


def test_sessions_tab_opens_a_session_with_tool_calls_as_text(page, lab, workspace):
    page_tab(page).click()
    tab(page, "Sessions").click()
    entry = workspace_page(page).locator(".perry-session").filter(has_text="Write a greeting file")
    expect()(entry).to_contain_text("3 msgs")
    entry.click()
    session = page.locator(".perry-session-view")
    expect()(session.locator(".perry-msg")).to_have_count(3)
    expect()(session.locator(".perry-msg-assistant").last).to_contain_text("Done: hello.txt says hello from perry.")
    tool = session.locator(".perry-tool").first
    tool.locator("summary").click()
    # The tool's input as the agent gave it, one field a line: not JSON.
    tool_input = tool.locator(".perry-output").first
    expect()(tool_input).to_contain_text("filePath: /home/workspace/hello.txt")
    expect()(tool_input).to_contain_text("content:\n  hello from perry")
    assert "{" not in tool_input.inner_text()
    page.shot("session-tool")


def test_tasks_tab_output_as_text_long_prompt_wraps_esc_clears(page, lab, workspace):
    page_tab(page).click()
    tab(page, "Tasks").click()
    view = workspace_page(page)
    prompt = view.locator("textarea.perry-task-prompt")
    prompt.fill("a draft to drop")
    prompt.press("Escape")
    expect()(prompt).to_have_value("")
    expect()(prompt).not_to_be_focused()

    prompt.fill(f"Say OK about {LONG_WORD}")
    view.get_by_role("button", name="Dispatch").click()
    task = view.locator(".perry-task").filter(has_text="Say OK about")
    expect()(task).to_have_attribute("data-status", "succeeded", timeout=120_000)
    assert fits(task) and fits(view)
    task.locator("summary").filter(has_text="Output").click()
    output = task.get_by_label("Output tail")
    # The agent's events told in words: its reply and how it ended, no JSON.
    expect()(output).to_contain_text("· done")
    raw = lab.api("GET", f"workspaces/{NAME}/tasks").json()["tasks"]
    assert any('{"type"' in line for t in raw for line in t["outputTail"])
    assert '{"' not in output.inner_text()
    page.shot("task-output")


def test_tasks_tab_dispatch_and_cancel(page, lab, workspace, docker_client):
    slow_down_the_model(docker_client.containers.get(f"{E2E_PREFIX}{NAME}"), 3)
    page_tab(page).click()
    tab(page, "Tasks").click()
    view = workspace_page(page)
    view.locator("textarea.perry-task-prompt").fill("Count to a million, slowly")
    view.get_by_role("button", name="Dispatch").click()
    task = view.locator(".perry-task").filter(has_text="Count to a million, slowly")
    # Running: a task cancelled while still queued is started all the same (a race in core/tasks.py).
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


@pytest.mark.parametrize("name", ["Overview", "Terminals", "Sessions", "Tasks"])
def test_no_serious_accessibility_violations(page, lab, workspace, name):
    page_tab(page).click()
    tab(page, name).click()
    violations = axe_violations(page, f"#perry-workspace-page-{NAME}")
    assert violations == []
    assert not page.perry_errors


@pytest.fixture(scope="module")
def phone_lab(browser, lab, artifacts):
    """The lab in a phone's browser (390x844, touch): JupyterLab's own single-document layout."""
    context, page = open_lab_page(browser, lab, artifacts, "workspace-page-phone", **PHONE)
    yield page
    context.close()


def show_page_on_phone(page):
    """The workspace page in front: opened again from the panel, the panel folded away (on a phone
    the sidebar covers the main area)."""
    panel = open_panel(page)
    panel.locator(f'.perry-workspace[data-workspace="{NAME}"]').get_by_role("button", name="Open", exact=True).tap()
    if panel.is_visible():
        page.locator('.jp-SideBar [data-id="perry-panel"]').tap()
    expect()(workspace_page(page).locator("h2")).to_be_in_viewport()
    return workspace_page(page)


def test_at_phone_size_open_terminal_session_dispatch_cancel(phone_lab, lab, workspace):
    page = phone_lab
    view = show_page_on_phone(page)
    expect()(view.locator("h2")).to_have_text(NAME)
    assert fits(view)
    page.shot("overview")

    tab(page, "Terminals").tap()
    view.get_by_role("button", name="New terminal").tap()
    terminal = page.locator(".jp-Terminal:visible")
    expect()(terminal.locator(".xterm-accessibility-tree")).to_contain_text(f"workspace@{NAME}", timeout=30_000)
    terminal.locator(".xterm-screen").tap()
    page.keyboard.type("echo phone-$((40+2))")
    page.keyboard.press("Enter")
    expect()(terminal.locator(".xterm-accessibility-tree")).to_contain_text("phone-42", timeout=20_000)
    page.shot("terminal")

    view = show_page_on_phone(page)
    tab(page, "Sessions").tap()
    view.locator(".perry-session").filter(has_text="3 msgs").tap()  # the tasks' sessions have the same title
    session = page.locator(".perry-session-view:visible")
    expect()(session.locator(".perry-msg-assistant").first).to_contain_text("I will write the file.")
    page.shot("session")

    view = show_page_on_phone(page)
    tab(page, "Tasks").tap()
    view.locator("textarea.perry-task-prompt").fill("Count slowly on a phone")
    view.get_by_role("button", name="Dispatch").tap()
    task = view.locator(".perry-task").filter(has_text="Count slowly on a phone")
    expect()(task).to_have_attribute("data-status", "running", timeout=60_000)
    task.get_by_role("button", name="Cancel").tap()
    expect()(task).to_have_attribute("data-status", "cancelled", timeout=60_000)
    assert fits(view)
    page.shot("tasks")
    assert axe_violations(page, f"#perry-workspace-page-{NAME}") == []
    assert not page.perry_errors
