"""The panel's events stream survives a server restart: it reconnects with backoff and refetches."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest

from .conftest import free_port, open_lab_page, start_lab, stop_lab, with_built_extension

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(150)]


def test_reconnects_after_a_server_restart(browser, artifacts, tmp_path, docker_client, workspace_image):
    from playwright.sync_api import expect

    from .conftest import remove_e2e_objects

    jupyter = str(Path(sys.executable).with_name("jupyter"))
    port, token = free_port(), secrets.token_hex(16)
    env = with_built_extension(tmp_path)
    lab = start_lab(tmp_path, jupyter=jupyter, env_extra=env, port=port, token=token)
    context = None
    name = f"rc-{secrets.token_hex(2)}"
    try:
        context, page = open_lab_page(browser, lab, artifacts, "test_reconnect")
        page.locator('.jp-SideBar [data-id="perry-panel"]').click()
        panel = page.locator("#perry-panel")
        expect(panel.locator(".perry-live-open")).to_be_visible()

        stop_lab(lab)
        expect(panel.locator(".perry-live-open")).to_have_count(0, timeout=15_000)
        page.shot("server-gone")

        # Same port, token and runtime directory (so the login cookie stays valid).
        lab = start_lab(tmp_path, jupyter=jupyter, env_extra=env, port=port, token=token)
        expect(panel.locator(".perry-live-open")).to_be_visible(timeout=40_000)
        # Events flow again: a workspace made behind the panel's back shows up by itself.
        assert lab.api("POST", "workspaces", json={"name": name}).status_code == 201
        expect(panel.locator(f'.perry-workspace[data-workspace="{name}"]')).to_have_attribute(
            "data-status", "running", timeout=20_000)
        page.shot("reconnected")
        assert lab.api("DELETE", f"workspaces/{name}").status_code == 204
        expect(panel.locator(f'.perry-workspace[data-workspace="{name}"]')).to_have_count(0, timeout=20_000)
    finally:
        if context is not None:
            context.close()
        stop_lab(lab)
        remove_e2e_objects()
