"""The panel says why a workspace stopped: the idle check's "stopped after N idle", live."""

from __future__ import annotations

import secrets

import pytest

from .test_panel import expect, open_panel, workspace

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(240)]

NAME = f"idle-{secrets.token_hex(2)}"


def test_an_idle_stopped_workspace_says_why(page, lab):
    panel = open_panel(page)
    r = lab.api("POST", "workspaces", json={"name": NAME, "idleTimeout": 3})
    assert r.status_code == 201, r.text
    item = workspace(page, NAME)
    expect()(item).to_have_attribute("data-status", "running", timeout=60_000)
    # Nobody uses it: the idle check stops it, and the event updates the panel by itself.
    expect()(item).to_have_attribute("data-status", "stopped", timeout=60_000)
    expect()(item.locator(".perry-stop-reason")).to_have_text("stopped after 3 s idle")
    expect()(item.locator(".perry-badge")).to_have_attribute(
        "title", "stopped after 3 s idle; a terminal, task or request starts it again")
    page.shot("idle-stopped")

    # Its Terminal button stays usable: the terminal starts the workspace first.
    assert lab.api("PATCH", f"workspaces/{NAME}", json={"idleTimeout": 0}).status_code == 200
    item.get_by_role("button", name="Terminal").click()
    expect()(item).to_have_attribute("data-status", "running", timeout=120_000)
    terminal = page.locator(".jp-Terminal").last
    expect()(terminal.locator(".xterm-accessibility-tree")).to_contain_text(f"workspace@{NAME}", timeout=60_000)
    expect()(item.locator(".perry-stop-reason")).to_have_count(0)

    # Stopped by a user, it says that instead.
    assert lab.api("POST", f"workspaces/{NAME}/stop").status_code == 200
    expect()(item.locator(".perry-stop-reason")).to_have_text("stopped by a user", timeout=60_000)
    assert not page.perry_errors
    assert lab.api("DELETE", f"workspaces/{NAME}").status_code == 204
    assert panel.locator(".perry-error").count() == 0
