"""When the Docker engine or the workspace image is missing, the panel says so and what to run."""

from __future__ import annotations

import pytest

from .conftest import open_lab_page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _panel(page):
    from playwright.sync_api import expect

    page.locator('.jp-SideBar [data-id="perry-panel"]').click()
    panel = page.locator("#perry-panel")
    expect(panel).to_be_visible()
    return panel


def test_missing_image_says_perry_build(browser, lab_factory, artifacts, docker_client):
    from playwright.sync_api import expect

    lab = lab_factory("--PerryApp.image_tag=perry-e2e-absent:none")
    context, page = open_lab_page(browser, lab, artifacts, "test_health-image")
    try:
        panel = _panel(page)
        health = panel.locator(".perry-health")
        expect(health).to_contain_text("The workspace image perry-e2e-absent:none is not built.")
        expect(health.locator("code").last).to_have_text("perry build")
        expect(panel.get_by_role("button", name="Create one")).to_have_count(0)
        page.shot("image-missing")
        assert not page.perry_errors
    finally:
        context.close()


def test_unreachable_engine_says_perry_doctor(browser, lab_factory, artifacts):
    from playwright.sync_api import expect

    lab = lab_factory("--PerryApp.docker_host=tcp://127.0.0.1:9")
    context, page = open_lab_page(browser, lab, artifacts, "test_health-engine")
    try:
        panel = _panel(page)
        health = panel.locator(".perry-health")
        expect(health).to_contain_text("The Docker engine is not reachable.")
        expect(health).to_contain_text("tcp://127.0.0.1:9")
        expect(health).to_contain_text("Fix:")
        expect(health.locator("code").last).to_have_text("perry doctor")
        # Not an empty list pretending all is well.
        expect(panel.locator(".perry-empty")).to_have_count(0)
        page.shot("engine-unreachable")
        assert not page.perry_errors
    finally:
        context.close()
