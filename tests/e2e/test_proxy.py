"""What a workspace serves, in the browser: the panel's ports with their Open buttons, and
OpenCode's own web UI (`opencode serve`, port 4096) in Chromium, opened through Perry's proxy
(its page, bundle and its calls to its server at the origin's root, moved under the proxy's
prefix by the proxy's script) and through `perry forward` (a root of its own).

The workspace is made from the agents image (it has the opencode CLI); OpenCode runs offline.
Screenshots: artifacts/e2e/test_proxy-*.png.
"""

from __future__ import annotations

import secrets
import time

import pytest

from .conftest import E2E_PREFIX, remove_e2e_objects, start_lab, stop_lab, with_built_extension

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(300)]

AGENTS_IMAGE = "perry-workspace-agents:latest"
NAME = f"web-{secrets.token_hex(2)}"
PORT = 4096
HOME = "/home/workspace"


def expect():
    from playwright.sync_api import expect

    return expect


@pytest.fixture(scope="module")
def lab(tmp_path_factory, docker_client, workspace_image, ssh_key):
    """A real `jupyter lab` with this checkout's extension, making workspaces from the agents image."""
    import sys
    from pathlib import Path

    if not docker_client.images.list(name=AGENTS_IMAGE):
        pytest.fail(f"{AGENTS_IMAGE} is missing: `perry build --agents opencode,claude,codex` builds it", pytrace=False)
    tmp = tmp_path_factory.mktemp("lab")
    remove_e2e_objects()
    lab = start_lab(tmp, jupyter=str(Path(sys.executable).with_name("jupyter")), env_extra=with_built_extension(tmp),
                    ssh_key=ssh_key, extra_args=[f"--PerryApp.image_tag={AGENTS_IMAGE}"])
    yield lab
    stop_lab(lab)
    remove_e2e_objects()


@pytest.fixture(scope="module")
def opencode_served(lab, docker_client):
    """A running workspace with `opencode serve` listening on 0.0.0.0:4096 inside it (the proxy's
    direct route; its page loads dozens of chunks at once, one exec each on the tunnel's)."""
    r = lab.api("POST", "workspaces", json={"name": NAME})
    assert r.status_code == 201, r.text
    container = docker_client.containers.get(f"{E2E_PREFIX}{NAME}")
    container.exec_run(["sh", "-c", f"mkdir -p {HOME}/project && cd {HOME}/project && "
                                    f"opencode serve --port {PORT} --hostname 0.0.0.0 > /tmp/opencode.log 2>&1"],
                       user="workspace", workdir=HOME, environment={"HOME": HOME}, detach=True)
    deadline = time.monotonic() + 60
    while True:
        ports = lab.api("GET", f"workspaces/{NAME}/ports").json().get("ports", [])
        if any(p["port"] == PORT for p in ports):
            break
        assert time.monotonic() < deadline, container.exec_run(["cat", "/tmp/opencode.log"]).output.decode()
        time.sleep(0.5)
    return ports


def test_panel_lists_ports_and_opens_opencode_through_the_proxy(browser, lab, opencode_served, artifacts):
    from .conftest import open_lab_page

    context, page = open_lab_page(browser, lab, artifacts, "test_proxy")
    proxied = f"{lab.url}perry/proxy/{NAME}/{PORT}"
    try:
        page.locator('.jp-SideBar [data-id="perry-panel"]').click()
        item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
        expect()(item).to_have_attribute("data-status", "running")
        item.locator(".perry-ws-toggle").click()
        row = item.locator(f'.perry-port[data-port="{PORT}"]')
        expect()(row).to_contain_text("opencode")
        link = row.get_by_role("link", name=f"Open port {PORT} of {NAME}")
        assert link.get_attribute("href") == f"{proxied}/"
        assert link.get_attribute("target") == "_blank"
        row.scroll_into_view_if_needed()
        page.shot("ports-listed")

        with context.expect_page() as opened:
            link.click()
        ui = opened.value
        ui.set_default_timeout(60_000)
        errors: list[str] = []
        ui.on("pageerror", lambda e: errors.append(str(e)))
        requests: list[str] = []
        ui.on("request", lambda r: requests.append(r.url))
        failed: list[str] = []
        ui.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
        ui.on("response", lambda r: failed.append(f"{r.url}: {r.status}") if r.status >= 400 else None)
        # The app asks its server at its origin's root ("/api/session", "/project"): the proxy's
        # script puts those under the prefix, so OpenCode answers, not Jupyter's own /api.
        with ui.expect_response(lambda r: r.url.startswith(f"{proxied}/api/session")) as sessions, \
                ui.expect_response(f"{proxied}/project") as projects, ui.expect_response(f"{proxied}/path") as paths:
            ui.wait_for_load_state()
        assert sessions.value.ok and isinstance(sessions.value.json()["data"], list)
        assert projects.value.ok and "global" in [p["id"] for p in projects.value.json()]  # OpenCode's own
        assert paths.value.json()["directory"] == f"{HOME}/project"  # where opencode serve runs, in the workspace
        expect()(ui).to_have_title("OpenCode")
        assert ui.locator("head > script").first.get_attribute("src") == "/perry/proxy.js"
        assert ui.locator("script[type=module]").get_attribute("src").startswith(f"/perry/proxy/{NAME}/{PORT}/assets/")
        # Its router starts at "/", the path it would have at the root.
        assert ui.url == lab.url
        expect()(ui.get_by_text("Add project")).to_be_visible(timeout=60_000)
        # Its settings: a chunk loaded on demand, with the style sheet its bundler preloads.
        # (Clicked again if a click lands before the app's handlers are attached, on a busy machine.)
        dialog = ui.get_by_role("dialog")
        for attempt in range(3):
            ui.get_by_role("button", name="Settings").click()
            try:
                expect()(dialog).to_be_visible(timeout=20_000)
                break
            except AssertionError:
                assert attempt < 2, ("the settings dialog did not open", errors, requests[-20:])
        expect()(dialog).to_contain_text("Auto-accept permissions", timeout=60_000)
        time.sleep(1)  # the dialog's animation settles
        ui.screenshot(path=str(artifacts / "test_proxy-02-opencode-through-the-proxy.png"))

        # An unsafe request of the app (its log endpoint) carries Jupyter's XSRF token from the
        # cookie session, so Jupyter lets it through to OpenCode.
        status, body = ui.evaluate("""async () => {
            const r = await fetch("/log", {method: "POST", headers: {"Content-Type": "application/json"},
                body: JSON.stringify({service: "perry-e2e", level: "info", message: "through the proxy"})});
            return [r.status, await r.text()];
        }""")
        assert (status, body) == (200, "true")
        outside = [u for u in requests if u.startswith(lab.url) and not u.startswith(f"{lab.url}perry/")]
        assert outside == [], outside
        assert not errors, (errors, failed)
    finally:
        context.close()


def test_opencode_ui_through_perry_forward(browser, lab, opencode_served, artifacts):
    """`perry forward` gives OpenCode's UI a root of its own, through the same tunnel."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from .conftest import free_port

    local = free_port()
    env = {**os.environ, "PERRY_URL": lab.url.rstrip("/"), "PERRY_TOKEN": lab.token}
    # Its complaints go to a file: a pipe nobody reads fills up and would hold the process at exit.
    complaints = open(artifacts / "test_proxy-forward-stderr.txt", "w")
    forward = subprocess.Popen([str(Path(sys.executable).with_name("perry")), "forward", NAME, str(PORT),
                                "--local", str(local)], env=env, stdout=subprocess.PIPE, stderr=complaints,
                               text=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        assert f"127.0.0.1:{local} -> {NAME}:{PORT}" in forward.stdout.readline()
        ui = context.new_page()
        ui.set_default_timeout(60_000)
        errors: list[str] = []
        ui.on("pageerror", lambda e: errors.append(str(e)))
        with ui.expect_response(lambda r: "/api/" in r.url and r.ok) as answered:
            ui.goto(f"http://127.0.0.1:{local}/")
        assert answered.value.ok
        expect()(ui).to_have_title("OpenCode")
        ui.wait_for_selector("#root > *")
        time.sleep(3)  # the first paint settles
        ui.screenshot(path=str(artifacts / "test_proxy-03-opencode-through-perry-forward.png"))
        assert not errors, errors
    finally:
        context.close()
        forward.send_signal(2)
        forward.wait(15)
        complaints.close()
