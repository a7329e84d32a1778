"""The phone page (`<base_url>/perry/`) in Chromium at 390x844 with touch, against a real lab.

The tests of this module run in order against one lab and one workspace, created on the page.
OpenCode runs for real in it against the stand-in model server (tests/modelserver.py).
"""

from __future__ import annotations

import json
import re
import secrets
import time

import pytest
import requests

from .conftest import E2E_PREFIX, ROOT, open_page
from .test_sessions import MODEL_PORT, REPLIES, expect, run, serve_model

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(240)]

NAME = f"phone-{secrets.token_hex(2)}"
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def phone(browser, lab, artifacts):
    """A phone's browser signed in to the lab (the token once, then its cookie), on the page."""
    context, page = open_page(browser, None, artifacts, "phone", **PHONE)
    context.grant_permissions(["notifications"], origin=lab.url.rstrip("/"))
    # The system notifications the page shows, recorded on their way to the browser's own.
    context.add_init_script("""(() => {
        const Real = window.Notification;
        window.perryNotified = [];
        window.Notification = class extends Real {
            constructor(title, options) { super(title, options); window.perryNotified.push(options.body); }
        };
    })()""")
    page.goto(f"{lab.url}perry/?token={lab.token}")
    expect()(page.locator(".pp-header h1")).to_have_text("Perry")
    yield page
    context.close()


def card(page, name: str = NAME):
    return page.locator(f'.pp-card[data-workspace="{name}"]')


def screen_text(page) -> str:
    return page.locator(".pp-xterm .xterm-rows").inner_text()


def test_without_a_cookie_the_page_sends_to_login_and_back(browser, lab, artifacts):
    context, page = open_page(browser, f"{lab.url}perry/", artifacts, "phone-login", **PHONE)
    try:
        # Jupyter's own login page, asked to come back to the phone page.
        expect()(page).to_have_url(re.compile(r"/login\?next=%2Fperry%2F$"))
        page.shot("login")
        page.locator("#password_input").fill(lab.token)
        page.locator("#password_input").press("Enter")
        expect()(page).to_have_url(f"{lab.url}perry/")
        expect()(page.locator(".pp-header h1")).to_have_text("Perry")
        expect()(page.locator(".pp-live")).to_have_text("Live")
    finally:
        context.close()
    # The assets too: none without a cookie.
    for path in ("perry/manifest.webmanifest", "perry/sw.js", "perry/phone/build/phone.js"):
        r = requests.get(f"{lab.url}{path}", allow_redirects=False, timeout=30)
        assert r.status_code == 302 and "/login?next=" in r.headers["Location"], (path, r.status_code)


def test_create_a_workspace_and_see_it_run(phone, lab):
    page = phone
    expect()(page.locator(".pp-muted").filter(has_text="No workspaces yet")).to_be_visible()
    page.get_by_label("New workspace").fill(NAME)
    page.get_by_role("button", name="Create").tap()
    # The card comes from the events stream while the create runs, then turns running.
    expect()(card(page).locator(".pp-badge")).to_have_text(re.compile("creating|running"), timeout=60_000)
    page.shot("creating")
    expect()(card(page).locator(".pp-badge")).to_have_text("running", timeout=150_000)
    expect()(page.get_by_label("New workspace")).to_have_value("")
    page.shot("workspaces")
    assert lab.api("GET", f"workspaces/{NAME}").json()["status"] == "running"
    # Docker inside it is told on its screen.
    page.goto(f"{lab.url}perry/#/w/{NAME}")
    expect()(page.locator(".pp-summary [data-dind]")).to_have_text("Docker inside: ready", timeout=90_000)
    page.get_by_role("link", name="Back").tap()


def test_a_taken_name_is_flagged_while_typing_and_esc_drops_it(phone, lab):
    page = phone
    field = page.get_by_label("New workspace")
    field.press_sequentially(NAME)
    expect()(page.locator("#pp-new-name-problem")).to_have_text(f"workspace '{NAME}' already exists")
    expect()(field).to_have_attribute("aria-invalid", "true")
    expect()(page.get_by_role("button", name="Create")).to_be_disabled()
    page.shot("create-taken-name")
    field.press("Escape")
    expect()(field).to_have_value("")
    expect()(page.locator("#pp-new-name-problem")).to_have_count(0)


def test_terminal_with_the_key_row(phone, lab):
    page = phone
    card(page).get_by_role("link", name="Terminal").tap()
    expect()(page.locator(".pp-header h1")).to_have_text(f"{NAME}: terminal")
    expect()(page.locator(".pp-xterm .xterm-rows")).to_contain_text(f"workspace@{NAME}", timeout=30_000)
    page.locator(".pp-xterm").tap()
    page.keyboard.type("echo perry-$((40+2))")
    page.keyboard.press("Enter")
    expect()(page.locator(".pp-xterm .xterm-rows")).to_contain_text("perry-42", timeout=20_000)
    # Tab from the key row completes a command; sticky Ctrl then "c" interrupts one.
    keys = page.get_by_role("toolbar", name="Terminal keys")
    page.keyboard.type("ech")
    keys.get_by_role("button", name="Tab").tap()
    page.keyboard.type(" tab-$((6*7))")
    page.keyboard.press("Enter")
    expect()(page.locator(".pp-xterm .xterm-rows")).to_contain_text("tab-42", timeout=20_000)
    page.keyboard.type("sleep 600")
    page.keyboard.press("Enter")
    keys.get_by_role("button", name="Ctrl").tap()
    expect()(keys.get_by_role("button", name="Ctrl")).to_have_attribute("aria-pressed", "true")
    page.keyboard.type("c")
    expect()(keys.get_by_role("button", name="Ctrl")).to_have_attribute("aria-pressed", "false")
    page.keyboard.type("echo after-$((1+1))")
    page.keyboard.press("Enter")
    expect()(page.locator(".pp-xterm .xterm-rows")).to_contain_text("after-2", timeout=20_000)
    assert "^C" in screen_text(page)
    page.shot("terminal")
    page.get_by_role("link", name="Back").tap()


@pytest.fixture(scope="module")
def session(lab, docker_client):
    """A real OpenCode session in the workspace the page created."""
    container = docker_client.containers.get(f"{E2E_PREFIX}{NAME}")
    serve_model(container, REPLIES)
    run(container, "opencode", "run", "Write hello.txt with a greeting")
    [found] = lab.api("GET", f"workspaces/{NAME}/sessions").json()["sessions"]
    return container, found


def test_read_follow_and_continue_a_session(phone, lab, session):
    container, found = session
    page = phone
    page.goto(f"{lab.url}perry/#/w/{NAME}/sessions")
    entry = page.locator(".pp-card").filter(has_text="Write a greeting file")
    expect()(entry).to_contain_text("opencode")
    expect()(entry).to_contain_text("3 msgs")
    page.shot("sessions")
    entry.locator("a").tap()
    expect()(page.locator(".pp-title")).to_have_text("Write a greeting file")
    messages = page.locator(".pp-msg")
    expect()(messages).to_have_count(3)
    expect()(page.locator(".pp-msg-user")).to_contain_text("Write hello.txt with a greeting")
    expect()(page.locator(".pp-msg-assistant").last).to_contain_text("Done: hello.txt says hello from perry.")
    page.shot("session")

    # A turn made elsewhere appears without a reload.
    run(container, "opencode", "run", "--session", found["sessionId"], "Now say goodbye")
    expect()(page.locator(".pp-msg-assistant").last).to_contain_text("Goodbye from the model.", timeout=30_000)
    expect()(messages).to_have_count(5)

    page.get_by_label("Continue the session").fill("Thanks!")
    page.get_by_role("button", name="Send").tap()
    # Once the call is answered (the box emptied), the saved reply is shown, not the streamed one.
    expect()(page.get_by_label("Continue the session")).to_have_value("", timeout=90_000)
    expect()(page.locator(".pp-pending")).to_have_count(0)
    expect()(page.locator(".pp-msg-assistant").last).to_contain_text("You are welcome.")
    expect()(page.locator(".pp-msg-user").last).to_contain_text("Thanks!")
    page.shot("session-continued")


def test_dispatch_a_task_into_a_session_and_see_it_end(phone, lab, session):
    _, found = session
    page = phone
    page.goto(f"{lab.url}perry/#/w/{NAME}/tasks")
    page.get_by_label("Session").select_option(found["sessionId"])
    page.get_by_label("Prompt").fill("Say OK")
    page.get_by_role("button", name="Dispatch").tap()
    task = page.locator(".pp-card[data-task]").filter(has_text="Say OK")
    expect()(task.locator(".pp-badge")).to_have_text("succeeded", timeout=120_000)
    # The agent's output, live while it ran, told in words (its events are JSON), and the page's word that it ended.
    expect()(task.get_by_label("Output")).to_contain_text("OK.")
    expect()(task.get_by_label("Output")).to_contain_text("· done")
    assert '{"' not in task.get_by_label("Output").inner_text()
    expect()(page.locator(".pp-toast")).to_contain_text(f"Task in {NAME} succeeded: Say OK")
    assert f"Task in {NAME} succeeded: Say OK" in page.evaluate("() => window.perryNotified")
    page.shot("task-succeeded")
    [listed] = [t for t in lab.api("GET", f"workspaces/{NAME}/tasks").json()["tasks"] if t["prompt"] == "Say OK"]
    assert listed["sessionId"] == found["sessionId"]


def slow_down_the_model(container, delay: float) -> None:
    """The stand-in model again, one streamed frame every `delay` seconds: a task that runs long
    enough to be cancelled however busy the machine is."""
    run(container, "sh", "-c", f"kill $(pgrep -f '^python3 /tmp/modelserver.py --port {MODEL_PORT}')")
    container.exec_run(["python3", "/tmp/modelserver.py", "--port", str(MODEL_PORT), "--script", "/tmp/replies.json",
                        "--log", "/tmp/modelserver.log", "--delay", str(delay)], user="workspace", detach=True)
    deadline = time.monotonic() + 20
    while "ok" not in run(container, "sh", "-c", f"curl -sf http://127.0.0.1:{MODEL_PORT}/_health && echo ok",
                          check=False):
        assert time.monotonic() < deadline, run(container, "cat", "/tmp/modelserver.log", check=False)
        time.sleep(0.3)


def test_dispatch_and_cancel_a_task(phone, lab, session):
    container, _ = session
    slow_down_the_model(container, 3)
    page = phone
    page.goto(f"{lab.url}perry/#/w/{NAME}/tasks")
    agent = page.get_by_label("Agent")
    expect()(agent.locator("option[value=opencode]")).to_be_enabled()
    expect()(agent).to_have_value("opencode")
    expect()(agent.locator("option[value=claude]")).to_be_disabled()  # not in the default image
    page.get_by_label("Prompt").fill("a draft to drop")
    page.get_by_label("Prompt").press("Escape")
    expect()(page.get_by_label("Prompt")).to_have_value("")
    page.get_by_label("Session").select_option("")  # a new session
    page.get_by_label("Prompt").fill("Count to a million, slowly")
    page.get_by_role("button", name="Dispatch").tap()
    task = page.locator(".pp-card[data-task]").filter(has_text="Count to a million, slowly")
    # Running: a task cancelled while still queued is started all the same (a race in core/tasks.py).
    expect()(task.locator(".pp-badge")).to_have_text("running", timeout=60_000)
    page.shot("task-running")
    task.get_by_role("button", name="Cancel").tap()
    expect()(task.locator(".pp-badge")).to_have_text("cancelled", timeout=60_000)
    expect()(task.get_by_role("button", name="Cancel")).to_have_count(0)
    # The page tells of the end while it is open.
    expect()(page.locator(".pp-toast").first).to_contain_text(f"Task in {NAME} cancelled")
    page.shot("task-cancelled")
    [listed] = [t for t in lab.api("GET", f"workspaces/{NAME}/tasks").json()["tasks"]
                if t["prompt"] == "Count to a million, slowly"]
    assert listed["status"] == "cancelled"


def test_changes_and_ports(phone, lab, session):
    page = phone
    page.goto(f"{lab.url}perry/#/w/{NAME}/changes")
    section = page.get_by_role("region", name="Changes")
    expect()(section).to_contain_text("/home/workspace")
    page.get_by_role("link", name="Ports").tap()
    # The stand-in model server listens in the workspace.
    expect()(page.get_by_role("region", name="Ports").locator(".pp-card").filter(has_text="8089")).to_be_visible()
    page.shot("ports")


def test_manifest_and_a_worker_that_never_caches_the_api(phone, lab):
    page = phone
    page.goto(f"{lab.url}perry/")
    manifest = page.request.get(f"{lab.url}perry/manifest.webmanifest")
    assert manifest.ok and manifest.headers["content-type"].startswith("application/manifest+json")
    data = json.loads(manifest.text())
    assert data["display"] == "standalone" and data["start_url"] == "./"
    for icon in data["icons"]:
        r = page.request.get(f"{lab.url}perry/{icon['src']}")
        assert r.ok and r.headers["content-type"].startswith(icon["type"]), icon
    assert page.evaluate("async () => (await navigator.serviceWorker.ready).active.state") == "activated"
    page.reload()
    expect()(card(page)).to_be_visible()
    assert page.evaluate("() => !!navigator.serviceWorker.controller")
    cached = page.evaluate("""async () => {
        await fetch('api/workspaces', {credentials: 'same-origin'});
        const urls = [];
        for (const key of await caches.keys()) {
            for (const request of await (await caches.open(key)).keys()) urls.push(request.url);
        }
        return urls;
    }""")
    assert f"{lab.url}perry/" in cached and f"{lab.url}perry/phone/build/phone.js" in cached, cached
    assert not [u for u in cached if "/perry/api/" in u or "/perry/terminal/" in u], cached


def axe_violations(page, selector: str | None = None) -> list[dict]:
    """axe-core's serious and critical findings on the page (or the part of it `selector` names)."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async (selector) => await axe.run(selector ? document.querySelector(selector) : document,"
                           " {resultTypes: ['violations']})", selector)
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("screen", ["", f"#/w/{NAME}/tasks", f"#/w/{NAME}/sessions", f"#/w/{NAME}/terminal"])
def test_no_serious_accessibility_violations(phone, lab, screen):
    page = phone
    page.goto(f"{lab.url}perry/{screen}")
    expect()(page.locator(".pp-header h1")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert axe_violations(page) == []
    assert not page.perry_errors


@pytest.fixture(scope="module")
def desktop(browser, lab, artifacts):
    """The same page in a desktop browser (1280x800, a mouse), signed in the same way."""
    context, page = open_page(browser, f"{lab.url}perry/?token={lab.token}", artifacts, "phone-desktop",
                              viewport={"width": 1280, "height": 800})
    expect()(page.locator(".pp-header h1")).to_have_text("Perry")
    yield page
    context.close()


def test_at_desktop_size_create_terminal_session_dispatch_cancel(desktop, lab, session):
    page = desktop
    other = f"{NAME}-d"
    page.get_by_label("New workspace").fill(other)
    page.get_by_role("button", name="Create").click()
    expect()(card(page, other).locator(".pp-badge")).to_have_text("running", timeout=150_000)
    page.shot("workspaces")
    assert lab.api("DELETE", f"workspaces/{other}").status_code == 204  # room for the rest on a small machine

    card(page).get_by_role("link", name="Terminal").click()
    expect()(page.locator(".pp-xterm .xterm-rows")).to_contain_text(f"workspace@{NAME}", timeout=30_000)
    page.locator(".pp-xterm").click()
    page.keyboard.type("echo desk-$((40+2))")
    page.keyboard.press("Enter")
    expect()(page.locator(".pp-xterm .xterm-rows")).to_contain_text("desk-42", timeout=20_000)
    page.shot("terminal")

    page.goto(f"{lab.url}perry/#/w/{NAME}/sessions")
    page.locator(".pp-card").filter(has_text="Write a greeting file").locator("a").click()
    expect()(page.locator(".pp-msg-user").first).to_contain_text("Write hello.txt with a greeting")
    page.locator(".pp-detail summary").filter(has_text="write").first.click()
    tool_input = page.locator(".pp-detail[open] .pp-pre").first
    expect()(tool_input).to_contain_text("filePath: /home/workspace/hello.txt")
    assert "{" not in tool_input.inner_text()
    page.shot("session")

    page.goto(f"{lab.url}perry/#/w/{NAME}/tasks")
    page.get_by_label("Session").select_option("")
    page.get_by_label("Prompt").fill("Count slowly at a desk")
    page.get_by_role("button", name="Dispatch").click()
    task = page.locator(".pp-card[data-task]").filter(has_text="Count slowly at a desk")
    expect()(task.locator(".pp-badge")).to_have_text("running", timeout=60_000)
    task.get_by_role("button", name="Cancel").click()
    expect()(task.locator(".pp-badge")).to_have_text("cancelled", timeout=60_000)
    page.shot("tasks")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_violations(page) == []
    assert not page.perry_errors


def test_stop_and_start(phone, lab):
    page = phone
    page.goto(f"{lab.url}perry/#/")
    item = card(page)
    item.get_by_role("button", name="Stop").tap()
    expect()(item.locator(".pp-badge")).to_have_text("stopped", timeout=60_000)
    expect()(item.get_by_role("link", name="Terminal")).to_have_count(0)
    page.shot("stopped")
    item.get_by_role("button", name="Start").tap()
    expect()(item.locator(".pp-badge")).to_have_text("running", timeout=120_000)
    assert lab.api("GET", f"workspaces/{NAME}").json()["status"] == "running"
