"""The ipywidgets against a real `perry serve` and the real engine: buttons, their effect, the rendered state."""

from __future__ import annotations

import time

import pytest
import requests

from perry_jupyter.client import PerryClient
from perry_jupyter.widgets import ChangesViewer, SessionViewer, WorkspaceManager

from ..conftest import TEST_PREFIX
from .conftest import until
from .agents import add_replies, opencode, start_model
from .test_notebooks import Kernel, no_error

pytestmark = pytest.mark.engine



@pytest.fixture
def client(server):
    with PerryClient(server.url, server.token_file.read_text().strip()) as c:
        yield c


def server_status(server, name):
    r = requests.get(f"{server.url}/perry/api/workspaces/{name}", headers=server.headers, timeout=10)
    return r.json()["status"] if r.status_code == 200 else r.status_code


def test_workspace_manager(server, client):
    t0 = time.monotonic()
    manager = WorkspaceManager(client=client)
    try:
        assert manager.wait(30)
        assert "No workspaces yet" in manager.empty.value and manager.banner.value == ""
        until(manager._live.connected.is_set)

        # The create form: the kernel is never blocked, the row shows `creating` meanwhile.
        manager.name_input.value = "wbox"
        started = time.monotonic()
        manager.create_button.click()
        assert time.monotonic() - started < 0.5
        assert "Creating workspace wbox" in manager.message.value and manager.create_button.disabled
        assert manager.wait(300)
        until(lambda: "wbox" in manager.rows and "running" in manager.rows["wbox"].status_cell.value)
        assert server_status(server, "wbox") == "running"
        row = manager.rows["wbox"]
        assert "Created workspace wbox: running" in manager.message.value and manager.name_input.value == ""
        assert "ssh -p" in row.ssh_cell.value
        assert "local" in row.engine_cell.value  # the engine it runs on
        # Its use comes with the lists (the server's sampled reading), with its memory limit.
        until(lambda: (manager.refresh(), " / " in row.use_cell.value)[1], timeout=30, interval=1)
        assert "cpu " in row.use_cell.value and "MiB" in row.use_cell.value
        assert row.start_button.disabled and not row.stop_button.disabled and not row.terminal_button.disabled

        # Terminal: a workspace terminal on the server, and how to open it.
        row.terminal_button.click()
        assert manager.wait(30)
        assert "perry_wbox_1" in row.link.value and "perry shell wbox" in row.link.value
        terms = requests.get(f"{server.url}/perry/api/workspaces/wbox/terminals", headers=server.headers,
                             timeout=10).json()["terminals"]
        assert [t["name"] for t in terms] == ["perry_wbox_1"]

        # Stop, then start again.
        row.stop_button.click()
        assert "stopping" in row.status_cell.value and row.stop_button.disabled and row.delete_button.disabled
        assert manager.wait(120)
        until(lambda: "stopped" in row.status_cell.value)
        assert server_status(server, "wbox") == "stopped"
        assert not row.start_button.disabled and row.stop_button.disabled and row.terminal_button.disabled
        row.start_button.click()
        assert manager.wait(300)
        until(lambda: "running" in row.status_cell.value)
        assert server_status(server, "wbox") == "running"

        # Live refresh: a workspace made behind the widget's back shows up by itself.
        client.create_workspace("wother")
        until(lambda: "wother" in manager.rows and "running" in manager.rows["wother"].status_cell.value)

        # Delete asks first; cancel keeps it, confirm deletes it.
        row.delete_button.click()
        assert row.confirming and "cannot be undone" in row.confirm_text.value
        assert server_status(server, "wbox") == "running"
        row.cancel_button.click()
        assert not row.confirming
        row.delete_button.click()
        row.confirm_button.click()
        assert manager.wait(120)
        until(lambda: "wbox" not in manager.rows)
        assert server_status(server, "wbox") == 404
        assert "Deleted workspace wbox" in manager.message.value

        # The server's errors, in the widget.
        manager.create("Bad_Name")
        assert manager.wait(30)
        assert "invalid workspace name" in manager.message.value and "perry-error" in manager.message.value
        manager.create("wother")
        assert manager.wait(30)
        assert "already exists" in manager.message.value
        manager.create("")
        assert "give the new workspace a name" in manager.message.value
    finally:
        manager.close()
    print(f"workspace manager: {time.monotonic() - t0:.1f} s")


def test_session_viewer(server, client, docker_client):
    t0 = time.monotonic()
    client.create_workspace("wsess")
    container = docker_client.containers.get(f"{TEST_PREFIX}wsess")
    start_model(container, ["First answer."], title="Widget session")
    assert opencode(container, "--format", "json", "say something").exit_code == 0
    [session] = client.list_sessions("wsess")

    viewer = SessionViewer("wsess", client=client)
    try:
        assert viewer.wait(60)
        until(lambda: viewer.conversation)
        assert viewer.session_id == session["sessionId"]
        assert "Widget session" in viewer.session_picker.options[0][0]
        assert "say something" in viewer.messages.value and "First answer." in viewer.messages.value

        # Continue the conversation.
        add_replies(container, ["Second answer."])
        viewer.text_input.value = "and more?"
        viewer.send_button.click()
        assert "Waiting for the agent" in viewer.message.value
        assert viewer.wait(120)
        until(lambda: "Second answer." in viewer.messages.value)
        assert "and more?" in viewer.messages.value and viewer.text_input.value == ""
        assert viewer.reply.get("reply")

        # Dispatch a task in the selected session and watch it to the end.
        add_replies(container, ["Task done in the widget."])
        viewer.prompt_input.value = "finish it"
        viewer.continue_box.value = True
        viewer.dispatch_button.click()
        until(lambda: viewer.task.get("status") in ("succeeded", "failed", "cancelled"), timeout=120)
        assert viewer.task["status"] == "succeeded", viewer.task
        assert viewer.task["summary"] == "Task done in the widget."
        assert viewer.task["sessionId"] == session["sessionId"]
        assert "succeeded" in viewer.task_view.value and "Task done in the widget." in viewer.task_view.value
        [task] = client.list_tasks("wsess")
        assert task["id"] == viewer.task["id"] and task["prompt"] == "finish it"

        # Mistakes and server errors, in the widget.
        viewer.dispatch("")
        assert "prompt first" in viewer.message.value and "perry-error" in viewer.message.value
        client.stop_workspace("wsess")
        viewer.refresh()
        assert viewer.wait(30)
        assert "not running" in viewer.message.value or "stopped" in viewer.message.value, viewer.message.value
    finally:
        viewer.close()
    print(f"session viewer: {time.monotonic() - t0:.1f} s")


def test_changes_viewer(server, client, docker_client):
    client.create_workspace("wchg")
    container = docker_client.containers.get(f"{TEST_PREFIX}wchg")

    def sh(script):
        result = container.exec_run(["bash", "-lc", script], user="workspace", workdir="/home/workspace")
        assert result.exit_code == 0, result.output
    sh("mkdir proj && cd proj && git init -q -b main && printf 'def greet():\\n    return 1\\n' > greet.py"
       " && git add . && git -c user.name=T -c user.email=t@example.invalid commit -qm start"
       " && printf 'def greet():\\n    return 2\\n' > greet.py")

    viewer = ChangesViewer("wchg", client=client, dir="proj")
    try:
        until(lambda: viewer.changes and viewer.diff and viewer._live.connected.is_set())
        assert viewer.changes["branch"] == "main"
        assert [label for label, _ in viewer.file_picker.options] == ["all files", "greet.py  +1 -1"]
        assert "greet.py" in viewer.summary.value and "main" in viewer.summary.value
        # The diff coloured: the removed line red, the added one green.
        assert "#cf222e" in viewer.diff_view.value and "#1a7f37" in viewer.diff_view.value
        assert "return 2" in viewer.diff_view.value and "return 1" in viewer.diff_view.value

        # A task's end reads the changes again by itself: a file made meanwhile shows up.
        sh("printf 'note\\n' > proj/notes.txt")
        start_model(container, ["Done in the project."])
        task = client.dispatch("wchg", "look around")
        until(lambda: "notes.txt  +1 -0" in [label for label, _ in viewer.file_picker.options], timeout=120)
        assert client.get_task("wchg", task["id"])["status"] == "succeeded"

        # One file's diff.
        viewer.file_picker.value = "notes.txt"
        until(lambda: viewer.diff.get("file") == "notes.txt")
        assert "+note" in viewer.diff_view.value and "return 2" not in viewer.diff_view.value
    finally:
        viewer.close()


def test_workspace_manager_in_a_kernel(server):
    """The same buttons in a real kernel, whose widget messages go out from the background threads."""
    env = {"PERRY_URL": server.url, "PERRY_TOKEN": server.token_file.read_text().strip()}
    with Kernel(env) as k:
        no_error(k.run("from perry_jupyter.widgets import WorkspaceManager\nm = WorkspaceManager()\nm"))
        no_error(k.run("m.name_input.value = 'kbox'\nm.create_button.click()\nassert m.wait(300)"))
        assert server_status(server, "kbox") == "running"
        until(lambda: k.value("'kbox' in m.rows and 'running' in m.rows['kbox'].status_cell.value"), timeout=30)
        no_error(k.run("r = m.rows['kbox']\nr.stop_button.click()\nassert m.wait(120)"))
        assert server_status(server, "kbox") == "stopped"
        no_error(k.run("r.delete_button.click()\nr.confirm_button.click()\nassert m.wait(120)"))
        assert server_status(server, "kbox") == 404
        until(lambda: k.value("sorted(m.rows)") == [], timeout=30)
        no_error(k.run("m.close()"))
