"""The panel shows where workspaces run and what they may use and use: the engines' health, the
engine picker of the create form, a workspace's engine, its limits and its CPU and memory bars.

A second engine is declared by an address nothing answers on: it shows as down, and the picker
offers it as not reachable. The tests of this module run in order against one lab."""

from __future__ import annotations

import re
import secrets

import pytest

from .test_panel import open_panel

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(240)]

NAME = f"lim-{secrets.token_hex(2)}"


def expect():
    from playwright.sync_api import expect

    return expect


def test_engines_health_shows_the_unreachable_second_engine(page, lab):
    r = lab.api("POST", "engines", json={"name": "far", "address": "tcp://127.0.0.1:9"})
    assert r.status_code == 201, r.text
    panel = open_panel(page)
    panel.get_by_role("button", name="Refresh").click()
    engines = panel.get_by_label("Engines")
    expect()(engines.locator('li[data-engine="local"]')).to_have_attribute("data-reachable", "yes")
    expect()(engines.locator('li[data-engine="local"]')).to_contain_text("up")
    expect()(engines.locator('li[data-engine="far"]')).to_have_attribute("data-reachable", "no")
    expect()(engines.locator('li[data-engine="far"]')).to_contain_text("down")
    page.shot("engines-health")
    assert not page.perry_errors


def test_create_form_offers_the_engines(page, lab):
    panel = open_panel(page)
    panel.get_by_role("button", name="New workspace").click()
    picker = panel.locator('.perry-create select[name="engine"]')
    expect()(picker).to_have_value("")  # automatic placement by default
    options = picker.locator("option")
    expect()(options).to_have_text(["automatic placement", "far (not reachable)", "local"])
    expect()(picker.locator('option[value="far"]')).to_be_disabled()
    picker.select_option("local")
    panel.locator('.perry-create input[name="name"]').fill(NAME)
    page.shot("create-with-engine-picker")
    panel.get_by_role("button", name="Create", exact=True).click()
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    expect()(item).to_have_attribute("data-status", "running", timeout=150_000)
    expect()(item.locator(".perry-engine-badge")).to_have_text("local")
    assert lab.api("GET", f"workspaces/{NAME}").json()["engine"] == "local"
    # The health section follows the new workspace's count.
    panel.get_by_role("button", name="Refresh").click()
    expect()(panel.get_by_label("Engines").locator('li[data-engine="local"]')).to_contain_text("1/1 running")


def test_limits_and_use_bars(page, lab):
    r = lab.api("PATCH", f"workspaces/{NAME}", json={"cpus": 1, "memory": "512m", "pids": 256})
    assert r.status_code == 200, r.text
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    item.locator(".perry-ws-toggle").click()
    # The event of the change updates the details at once.
    expect()(item.locator(".perry-limits")).to_have_text("1 CPU, 512 MiB, 256 processes")

    # Something to see on the CPU bar: one CPU busy for a while.
    lab.api("POST", f"workspaces/{NAME}/exec",
            json={"command": ["sh", "-c", "timeout 90 sh -c 'while :; do :; done' >/dev/null 2>&1 &"]})
    memory = item.get_by_role("meter", name="Memory use")
    expect()(memory).to_have_attribute("aria-valuetext", re.compile(r" / 512 MiB$"), timeout=30_000)
    cpu = item.get_by_role("meter", name="CPU use")
    # Measured against the 1-CPU limit (how full depends on what else the machine runs).
    expect()(cpu).to_have_attribute("aria-valuetext", re.compile(r"^\d+% of 1 CPU$"), timeout=40_000)
    expect()(cpu).to_have_attribute("aria-valuenow", re.compile(r"^[1-9]\d*$"), timeout=40_000)
    page.shot("limits-and-use-bars")
    assert not page.perry_errors

    # Stopped: no bars.
    lab.api("POST", f"workspaces/{NAME}/stop")
    expect()(item).to_have_attribute("data-status", "stopped", timeout=60_000)
    expect()(item.get_by_role("meter")).to_have_count(0)
