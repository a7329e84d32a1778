"""The panel follows a workspace's log as it grows, and its search box finds a message of a
real OpenCode session (made by the real CLI talking to the stand-in model)."""

from __future__ import annotations

import secrets
import time

import pytest

from .conftest import E2E_PREFIX
from .test_sessions import expect, serve_model

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(300)]

NAME = f"fol-{secrets.token_hex(2)}"
PHRASE = "velvet kumquat"


@pytest.fixture(scope="module")
def workspace(lab, docker_client):
    r = lab.api("POST", "workspaces", json={"name": NAME})
    assert r.status_code == 201, r.text
    container = docker_client.containers.get(f"{E2E_PREFIX}{NAME}")
    serve_model(container, {"title": "Kumquats", "default": "OK.", "replies": ["Kumquats are small and sour."]})
    r = lab.api("POST", f"workspaces/{NAME}/tasks", json={"prompt": "Tell me about the Velvet Kumquat"})
    assert r.status_code == 201, r.text
    task = r.json()
    deadline = time.monotonic() + 120
    while task["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, task
        time.sleep(0.5)
        task = lab.api("GET", f"workspaces/{NAME}/tasks/{task['id']}").json()
    assert task["status"] == "succeeded", task
    return container


def test_the_log_follows_as_the_workspace_writes(page, workspace):
    page.locator('.jp-SideBar [data-id="perry-panel"]').click()
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    expect()(item).to_have_attribute("data-status", "running")
    item.locator(".perry-ws-toggle").click()
    logs = item.locator(".perry-logs")
    logs.get_by_role("button", name=f"Follow the log of {NAME}").click()
    log = logs.locator(".perry-log")
    expect()(log).to_contain_text("perry: ready")
    expect()(log).to_have_attribute("data-state", "following")
    workspace.exec_run(["sh", "-c", "echo written-while-the-panel-follows > /proc/1/fd/1"], user="root")
    expect()(log).to_contain_text("written-while-the-panel-follows")
    logs.scroll_into_view_if_needed()
    page.shot("logs-following")
    logs.get_by_role("button", name=f"Hide the log of {NAME}").click()
    expect()(log).to_have_count(0)
    assert not page.perry_errors


def test_the_search_box_finds_a_session_message(page, workspace):
    if not page.locator(".perry-sidebar").is_visible():  # a second click on the tab would close it
        page.locator('.jp-SideBar [data-id="perry-panel"]').click()
    box = page.get_by_role("searchbox", name="Search agent sessions")
    box.fill(PHRASE.upper())
    box.press("Enter")
    hit = page.locator(f'.perry-search-hit[data-workspace="{NAME}"][data-agent="opencode"]')
    expect()(hit).to_have_count(1)
    expect()(hit.locator(".perry-search-snippet")).to_have_text("Tell me about the Velvet Kumquat")
    expect()(hit.locator(".perry-search-where")).to_contain_text(f"{NAME} · opencode · user")
    page.shot("session-search")
    box.fill("no message says this")
    box.press("Enter")
    expect()(page.locator(".perry-search")).to_contain_text("No session message holds")
    assert not page.perry_errors
