"""A real OpenCode session in a workspace, read, followed live and continued from the panel.

OpenCode runs for real inside the workspace against the stand-in model server
(tests/modelserver.py), started on the workspace's loopback.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import tarfile
import time
from pathlib import Path

import pytest

from .conftest import E2E_PREFIX

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(180)]

NAME = f"agent-{secrets.token_hex(2)}"
MODEL_PORT = 8089
REPLIES = {
    "title": "Write a greeting file",
    "default": "OK.",
    "replies": [
        {"text": "I will write the file.", "tool": "write",
         "input": {"filePath": "/home/workspace/hello.txt", "content": "hello from perry\n"},
         "usage": {"input": 1200, "output": 40}},
        {"text": "Done: hello.txt says hello from perry.", "usage": {"input": 1300, "output": 12}},
        "Goodbye from the model.",
        "You are welcome.",
    ],
}
OPENCODE_CONFIG = {
    "$schema": "https://opencode.ai/config.json",
    "provider": {"test": {"npm": "@ai-sdk/openai-compatible", "name": "Test",
                          "options": {"baseURL": f"http://127.0.0.1:{MODEL_PORT}/v1", "apiKey": "x"},
                          "models": {"m": {"name": "m"}}}},
    "model": "test/m",
}
HOME = "/home/workspace"


def expect():
    from playwright.sync_api import expect

    return expect


def put_files(container, directory: str, files: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o644, 1000, 1000
            tar.addfile(info, io.BytesIO(data))
    container.put_archive(directory, buf.getvalue())


def run(container, *cmd: str, check: bool = True) -> str:
    code, out = container.exec_run(list(cmd), user="workspace", workdir=HOME, environment={"HOME": HOME})
    text = out.decode(errors="replace")
    if check and code != 0:
        raise AssertionError(f"{cmd} exited {code}:\n{text}")
    return text


def serve_model(container, replies: dict) -> None:
    """Run the stand-in model in the workspace with ``replies`` and point OpenCode at it."""
    modelserver = (Path(__file__).resolve().parents[1] / "modelserver.py").read_bytes()
    put_files(container, "/tmp", {"modelserver.py": modelserver, "replies.json": json.dumps(replies).encode()})
    container.exec_run(["python3", "/tmp/modelserver.py", "--port", str(MODEL_PORT), "--script",
                        "/tmp/replies.json", "--log", "/tmp/modelserver.log"], user="workspace", detach=True)
    run(container, "mkdir", "-p", f"{HOME}/.config/opencode")
    put_files(container, f"{HOME}/.config/opencode", {"opencode.json": json.dumps(OPENCODE_CONFIG).encode()})
    deadline = time.monotonic() + 20
    while "ok" not in run(container, "sh", "-c", f"curl -sf http://127.0.0.1:{MODEL_PORT}/_health && echo ok",
                          check=False):
        assert time.monotonic() < deadline, run(container, "cat", "/tmp/modelserver.log", check=False)
        time.sleep(0.3)


@pytest.fixture(scope="module")
def agent_workspace(lab, docker_client):
    """A running workspace with the model server and OpenCode configured, and one real session."""
    r = lab.api("POST", "workspaces", json={"name": NAME})
    assert r.status_code == 201, r.text
    container = docker_client.containers.get(f"{E2E_PREFIX}{NAME}")
    serve_model(container, REPLIES)
    run(container, "opencode", "run", "Write hello.txt with a greeting")
    assert run(container, "cat", f"{HOME}/hello.txt") == "hello from perry\n"
    sessions = lab.api("GET", f"workspaces/{NAME}/sessions").json()["sessions"]
    assert len(sessions) == 1
    return container, sessions[0]


def test_session_list_and_view(page, lab, agent_workspace):
    _, session = agent_workspace
    page.locator('.jp-SideBar [data-id="perry-panel"]').click()
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    expect()(item).to_have_attribute("data-status", "running")
    item.locator(".perry-ws-toggle").click()
    entry = item.locator(".perry-session").first
    expect()(entry).to_contain_text("Write a greeting file")
    expect()(entry).to_contain_text("opencode")
    expect()(entry).to_contain_text("3 msgs")
    page.shot("session-listed")

    entry.click()
    view = page.locator(".perry-session-view")
    expect()(view.locator(".perry-session-header h2")).to_have_text("Write a greeting file")
    expect()(view.locator(".perry-msg")).to_have_count(3)
    expect()(view.locator(".perry-msg-user")).to_contain_text("Write hello.txt with a greeting")
    assistant = view.locator(".perry-msg-assistant")
    expect()(assistant.first).to_contain_text("I will write the file.")
    expect()(assistant.last).to_contain_text("Done: hello.txt says hello from perry.")
    # Token use of the whole session, as the worker counted it.
    expect()(view.locator(".perry-session-header")).to_contain_text("Tokens:")
    total = sum(session["tokens"].values())
    expect()(view.locator(".perry-session-header")).to_contain_text(f"{total:,}")

    tool = view.locator(".perry-tool").first
    expect()(tool).to_have_attribute("data-tool", "write")
    assert tool.evaluate("el => el.open") is False  # folded until asked
    tool.locator("summary").click()
    expect()(tool.locator(".perry-output").first).to_contain_text("/home/workspace/hello.txt")
    expect()(tool.locator(".perry-output").last).to_contain_text("Wrote file successfully")
    page.shot("session-view-tool-open")
    assert not page.perry_errors


def test_new_messages_appear_while_open(page, lab, agent_workspace):
    container, session = agent_workspace
    view = page.locator(".perry-session-view")
    expect()(view.locator(".perry-msg")).to_have_count(3)
    # Another turn, made outside the panel: the view follows without a reload.
    run(container, "opencode", "run", "--session", session["sessionId"], "Now say goodbye")
    expect()(view.locator(".perry-msg-assistant").last).to_contain_text("Goodbye from the model.", timeout=30_000)
    expect()(view.locator(".perry-msg")).to_have_count(5)
    page.shot("session-live-update")


def test_continue_box(page, lab, agent_workspace):
    view = page.locator(".perry-session-view")
    box = view.get_by_label("Message to the agent")
    box.fill("Thanks!")
    box.press("Control+Enter")
    expect()(view.locator(".perry-msg-assistant").last).to_contain_text("You are welcome.", timeout=90_000)
    expect()(view.locator(".perry-msg-user").last).to_contain_text("Thanks!")
    page.shot("session-continue")


def test_layout_restores_panel_and_session(page, lab, agent_workspace):
    """A reload brings back the open sidebar and the session tab, reading from the server again."""
    page.wait_for_timeout(1500)  # JupyterLab saves the layout shortly after it changes
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    expect()(page.locator("#perry-panel")).to_be_visible()
    view = page.locator(".perry-session-view")
    expect()(view.locator(".perry-session-header h2")).to_have_text("Write a greeting file", timeout=30_000)
    expect()(view.locator(".perry-msg").first).to_be_visible()
    page.shot("layout-restored")


def test_dispatch_task_from_the_command_palette(page, lab, agent_workspace):
    # Keyboard only: the palette's command opens the panel on the selected workspace's task box.
    page.locator(".perry-session-view textarea").click()
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#command-palette")
    expect()(palette).to_be_visible()
    page.keyboard.type("Dispatch Agent Task")
    expect()(palette.locator(".lm-CommandPalette-item.lm-mod-active")).to_contain_text("Dispatch Agent Task")
    page.keyboard.press("Enter")
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    prompt = item.locator("textarea.perry-task-prompt")
    expect()(prompt).to_be_focused()
    # The default image carries OpenCode only; the others are offered but cannot be picked.
    agents = item.locator(".perry-task-form select").first
    expect()(agents.locator("option[value=claude]")).to_be_disabled()
    expect()(agents.locator("option[value=claude]")).to_have_text("claude (not in the image)")
    expect()(agents.locator("option[value=opencode]")).to_be_enabled()
    page.keyboard.type("Say OK")
    page.keyboard.press("Control+Enter")
    task = item.locator(".perry-task").first
    expect()(task).to_contain_text("Say OK")
    page.shot("task-dispatched")
    expect()(task).to_have_attribute("data-status", re.compile("^(succeeded|failed|cancelled)$"), timeout=120_000)
    status = task.get_attribute("data-status")
    # A notification says it ended, and how.
    expect()(page.locator(".Toastify__toast").filter(has_text=f"Task in {NAME} {status}").first).to_be_visible()
    page.wait_for_timeout(1000)  # let the toast slide in for the screenshot
    page.shot("task-ended")
    assert status == "succeeded", task.inner_text()


def test_a_failed_task_says_why_in_the_agents_words(page, lab, agent_workspace):
    """The provider refuses the key: the task fails, and the panel and its notification say so
    in OpenCode's own words, whole words and URLs, wrapped in the narrow sidebar."""
    container, _ = agent_workspace
    run(container, "pkill", "-f", "/tmp/modelserver.py", check=False)
    container.exec_run(["python3", "/tmp/modelserver.py", "--port", str(MODEL_PORT), "--refuse-auth"],
                       user="workspace", detach=True)
    deadline = time.monotonic() + 20
    while "ok" not in run(container, "sh", "-c", f"curl -sf http://127.0.0.1:{MODEL_PORT}/_health && echo ok",
                          check=False):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    r = lab.api("POST", f"workspaces/{NAME}/tasks", json={"prompt": "Say OK once more"})
    assert r.status_code == 201, r.text
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    task = item.locator(".perry-task").filter(has_text="Say OK once more")
    expect()(task).to_have_attribute("data-status", "failed", timeout=120_000)
    reason = ("Incorrect API key provided: sk-te***st. You can find your API key at "
              "https://platform.openai.com/account/api-keys. (HTTP 401)")
    error = task.locator(".perry-error")
    expect()(error).to_have_text(reason)
    lines = error.evaluate("""e => { const r = document.createRange(); r.selectNodeContents(e);
        return {rows: new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size,
                overflow: e.scrollWidth - e.clientWidth}; }""")
    assert lines["rows"] >= 2 and lines["overflow"] <= 0, lines  # wrapped, nothing sticks out
    toast = page.locator(".Toastify__toast").filter(has_text=f"Task in {NAME} failed: Incorrect API key provided")
    expect()(toast).to_be_visible()
    # JupyterLab keeps 140 characters of a notification: Perry cuts before the URL, not inside it.
    words = toast.locator(".jp-toast-message").inner_text()
    assert words == f"Task in {NAME} failed: Incorrect API key provided: sk-te***st. You can find your API key at…", words
    page.wait_for_timeout(1000)  # let the toast slide in for the screenshot
    page.shot("task-failed")


def test_a_failed_conversation_says_why(page, lab, agent_workspace):
    """The key still refused: the continue box answers with OpenCode's reason, not an empty reply."""
    view = page.locator(".perry-session-view")
    count = view.locator(".perry-msg-assistant").count()
    box = view.get_by_label("Message to the agent")
    box.fill("Are you there?")
    box.press("Control+Enter")
    alert = view.locator(".perry-error[role=alert]")
    expect()(alert).to_contain_text("Incorrect API key provided: sk-te***st. You can find your API key at "
                                    "https://platform.openai.com/account/api-keys. (HTTP 401)", timeout=60_000)
    assert alert.evaluate("e => e.scrollWidth - e.clientWidth") <= 0
    # No empty reply shown as one: the turn OpenCode stored (live updates may bring it) says why it failed.
    replies = view.locator(".perry-msg-assistant")
    for i in range(count, replies.count()):
        expect()(replies.nth(i).locator(".perry-msg-failure")).to_contain_text("Incorrect API key provided")
    page.shot("conversation-failed")
