"""What a workspace serves, in the browser: the panel's ports with their Open buttons, and
OpenCode's own web UI (`opencode serve`, port 4096) in Chromium, opened through Perry's proxy
(its page, bundle and server through the tunnel) and through `perry forward` (the whole UI:
it calls its API at the page's origin root, which only a root of its own can give it).

The workspace is made from the agents image (it has the opencode CLI); OpenCode runs offline.
Screenshots: artifacts/e2e/test_proxy-*.png.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from .conftest import E2E_PREFIX, remove_e2e_objects, start_lab, stop_lab, with_built_extension

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(300)]

AGENTS_IMAGE = "perry-workspace-agents:latest"
NAME = f"web-{secrets.token_hex(2)}"
PORT = 4096
HOME = "/home/workspace"
# Where OpenCode's web UI keeps the servers added in its "Add server" dialog, and the default one.
SERVERS_KEY = "opencode.global.dat:server"
SERVER_URL_KEY = "opencode.settings.dat:defaultServerUrl"


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
    """A running workspace with `opencode serve` listening on 127.0.0.1:4096 inside it."""
    r = lab.api("POST", "workspaces", json={"name": NAME})
    assert r.status_code == 201, r.text
    container = docker_client.containers.get(f"{E2E_PREFIX}{NAME}")
    container.exec_run(["sh", "-c", f"mkdir -p {HOME}/project && cd {HOME}/project && "
                                    f"opencode serve --port {PORT} --hostname 127.0.0.1 > /tmp/opencode.log 2>&1"],
                       user="workspace", workdir=HOME, environment={"HOME": HOME}, detach=True)
    deadline = time.monotonic() + 60
    while True:
        ports = lab.api("GET", f"workspaces/{NAME}/ports").json().get("ports", [])
        if any(p["port"] == PORT for p in ports):
            return ports
        assert time.monotonic() < deadline, container.exec_run(["cat", "/tmp/opencode.log"]).output.decode()
        time.sleep(0.5)


def test_panel_lists_ports_and_opens_opencode_through_the_proxy(browser, lab, opencode_served, artifacts):
    from .conftest import open_lab_page

    context, page = open_lab_page(browser, lab, artifacts, "test_proxy")
    proxied = f"{lab.url}perry/proxy/{NAME}/{PORT}"
    # OpenCode's UI talks to the page's origin (here Jupyter's) unless another server was added
    # and made the default: add it behind the proxy, as its "Add server" dialog would. (In a try:
    # the script runs in sandboxed frames too, which have no localStorage.)
    servers = json.dumps({"list": [proxied], "projects": {}, "lastProject": {}, "recentlyClosed": {}})
    context.add_init_script(f"try {{ localStorage.setItem({SERVERS_KEY!r}, {json.dumps(servers)}); "
                            f"localStorage.setItem({SERVER_URL_KEY!r}, {proxied!r}) }} catch (e) {{}}")
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
        # The page, its bundle (its root-relative links put under the prefix) and the server it was
        # told of, all through the proxy.
        with ui.expect_response(f"{proxied}/global/health") as health:
            ui.wait_for_load_state()
        assert health.value.ok and health.value.json()["healthy"] is True
        expect()(ui).to_have_title("OpenCode")
        assert ui.url == f"{proxied}/"
        assert ui.locator("script[type=module]").get_attribute("src").startswith(f"/perry/proxy/{NAME}/{PORT}/assets/")
        ui.wait_for_selector("#root > *")
        time.sleep(2)  # the first paint settles
        ui.screenshot(path=str(artifacts / "test_proxy-02-opencode-through-the-proxy.png"))
        assert not errors, errors
    finally:
        context.close()


def test_opencode_ui_through_perry_forward(browser, lab, opencode_served, artifacts):
    """OpenCode's UI calls its API at the page's origin root (/api/...), which a path under Jupyter
    cannot give it; `perry forward` gives it a root of its own, through the same tunnel."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from .conftest import free_port

    local = free_port()
    env = {**os.environ, "PERRY_URL": lab.url.rstrip("/"), "PERRY_TOKEN": lab.token}
    forward = subprocess.Popen([str(Path(sys.executable).with_name("perry")), "forward", NAME, str(PORT),
                                "--local", str(local)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
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
