"""Browser tests: a real `jupyter lab` with the extension, the real engine, Debian's Chromium.

The lab runs as a subprocess on a free port with a known token and Perry settings of
its own (prefix ``perry-e2e-``, network ``perry-e2e``, SSH ports 2800-2899, a temporary
state directory), so it never touches a user's workspaces. Screenshots of every step go
to ``artifacts/e2e/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ..conftest import IMAGE_TAG

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
# Parallel runs on one engine set their own (PERRY_E2E_PREFIX, e.g. "perry-e2e2-", and PERRY_E2E_SSH_PORTS).
E2E_PREFIX = os.environ.get("PERRY_E2E_PREFIX", "perry-e2e-")
E2E_NETWORK = E2E_PREFIX.rstrip("-")
E2E_SSH_PORTS = tuple(int(p) for p in os.environ.get("PERRY_E2E_SSH_PORTS", "2800-2899").split("-"))
CHROMIUM = os.environ.get("PERRY_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BUILT = ROOT / "perry_jupyter" / "labextension"


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: browser test against a real jupyter lab and Docker engine")


# pytest-jupyter's autouse loop fixtures would grab (and close) the event loop Playwright's
# sync API runs: these tests talk to a lab subprocess and need neither.
@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remove_e2e_objects() -> None:
    """Containers and volumes named perry-e2e-*, and the perry-e2e network: nothing else."""
    import docker
    from docker.errors import APIError, NotFound

    client = docker.from_env()
    # Filtered by the engine, and one gone between the list and its inspection (another run's
    # cleanup) is skipped, not an error.
    for c in client.containers.list(all=True, filters={"name": E2E_PREFIX}, ignore_removed=True):
        if c.name.startswith(E2E_PREFIX):
            try:
                c.remove(force=True)
            except NotFound:
                pass
    for v in client.volumes.list():
        if v.name.startswith(E2E_PREFIX):
            try:
                v.remove(force=True)
            except (NotFound, APIError):
                pass
    for n in client.networks.list(names=[E2E_NETWORK]):
        if n.name == E2E_NETWORK:
            try:
                n.remove()
            except (NotFound, APIError):
                pass  # still in use by a lab of another module: removed at its end


class Lab:
    def __init__(self, url: str, token: str, process: subprocess.Popen, log: Path):
        self.url = url
        self.token = token
        self.process = process
        self.log = log

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}perry/api/{path}", timeout=300,
                                headers={"Authorization": f"token {self.token}"}, **kwargs)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def lab_settings(settings_dir: Path) -> None:
    """User settings for a quiet, testable lab: no news toasts; terminal text readable in the page."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
        # xterm draws on a canvas; its screen-reader mode mirrors the rows as text the test can read.
        "@jupyterlab/terminal-extension/plugin.jupyterlab-settings": {"screenReaderMode": True},
    }
    for rel, data in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))


def start_lab(tmp: Path, *, jupyter: str, env_extra: dict | None = None, extra_args: list[str] = (),
              ssh_key: Path | None = None, timeout: float = 90, port: int | None = None,
              token: str | None = None) -> Lab:
    port, token = port or free_port(), token or secrets.token_hex(16)
    for d in ("root", "state", "settings", "lab-workspaces", "runtime", "config", "data"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    lab_settings(tmp / "settings")
    gitconfig = tmp / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Perry E2E\n\temail = e2e@example.invalid\n")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_DATA_DIR": str(tmp / "data"), "PERRY_CONFIG_DIR": str(tmp / "state"), **(env_extra or {})}
    env.pop("JUPYTER_TOKEN", None)
    args = [
        jupyter, "lab", "--no-browser", *(["--allow-root"] if os.geteuid() == 0 else []), f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp / 'root'}", f"--LabApp.user_settings_dir={tmp / 'settings'}",
        f"--LabApp.workspaces_dir={tmp / 'lab-workspaces'}",
        f"--PerryApp.workspace_prefix={E2E_PREFIX}", f"--PerryApp.network={E2E_NETWORK}",
        f"--PerryApp.ssh_port_range={E2E_SSH_PORTS[0]}", f"--PerryApp.ssh_port_range={E2E_SSH_PORTS[1]}",
        f"--PerryApp.state_dir={tmp / 'state'}", f"--PerryApp.git_config={gitconfig}",
        *([f"--PerryApp.ssh_public_keys={ssh_key}.pub"] if ssh_key else []),
        # A repeated traitlets option does not override: defaults only where the caller gave none.
        *([] if any(a.startswith("--PerryApp.image_tag=") for a in extra_args)
          else [f"--PerryApp.image_tag={IMAGE_TAG}"]),
        *extra_args,
    ]
    log = tmp / "lab.log"
    process = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    lab = Lab(url, token, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{lab.log_tail()}")
        try:
            if requests.get(f"{url}api/status", headers={"Authorization": f"token {token}"}, timeout=2).ok:
                return lab
        except requests.RequestException:
            pass
        time.sleep(0.3)
    stop_lab(lab)
    raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s:\n{lab.log_tail()}")


def stop_lab(lab: Lab) -> None:
    if lab.process.poll() is None:
        lab.process.terminate()
        try:
            lab.process.wait(20)
        except subprocess.TimeoutExpired:
            lab.process.kill()
            lab.process.wait(10)


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (Debian's Chromium)", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Package scope: Playwright's sync API keeps its event loop running while it lives, which
# would break the asyncio tests of other packages if it outlived this one.
@pytest.fixture(scope="package")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright_instance, chromium):
    browser = playwright_instance.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, docker_client, workspace_image, ssh_key):
    """A real `jupyter lab` with the extension as built in this checkout."""
    tmp = tmp_path_factory.mktemp("lab")
    # This checkout's build output comes first on the data path, ahead of any installed copy.
    env = with_built_extension(tmp)
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    remove_e2e_objects()
    lab = start_lab(tmp, jupyter=jupyter, env_extra=env, ssh_key=ssh_key)
    yield lab
    stop_lab(lab)
    remove_e2e_objects()
    shutil.rmtree(tmp / "state", ignore_errors=True)


def open_page(browser, url: str | None, artifacts: Path, prefix: str, **context_options):
    """A browser page (in a context of its own, made with ``context_options``) on ``url`` (None: not
    yet anywhere), with page errors collected in ``page.perry_errors`` and numbered screenshots from
    ``page.shot``."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.perry_errors = errors  # type: ignore[attr-defined]
    page.shot = Shots(page, artifacts, prefix)  # type: ignore[attr-defined]
    if url is not None:
        page.goto(url)
    return context, page


def open_lab_page(browser, lab: Lab, artifacts: Path, prefix: str, **context_options):
    """A browser page on the lab (1400x900 unless ``context_options`` say otherwise)."""
    context, page = open_page(browser, f"{lab.url}lab?token={lab.token}", artifacts, prefix,
                              **(context_options or {"viewport": {"width": 1400, "height": 900}}))
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    return context, page


class Shots:
    """Numbered screenshots of one test module's steps."""

    def __init__(self, page, directory: Path, prefix: str):
        self.page, self.directory, self.prefix, self.n = page, directory, prefix, 0

    def __call__(self, name: str) -> Path:
        self.n += 1
        path = self.directory / f"{self.prefix}-{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture(scope="module")
def page(browser, lab, artifacts, request):
    context, page = open_lab_page(browser, lab, artifacts, request.module.__name__.rsplit(".", 1)[-1])
    yield page
    context.close()


def with_built_extension(tmp: Path) -> dict:
    """Environment that puts this checkout's build output first on Jupyter's data path."""
    if not (BUILT / "package.json").exists():
        pytest.fail("the lab extension is not built: `jlpm install && jlpm build` (or `pip install -e .`)",
                    pytrace=False)
    data = tmp / "jupyter-path"
    (data / "labextensions").mkdir(parents=True, exist_ok=True)
    link = data / "labextensions" / "perry-jupyter"
    if not link.exists():
        link.symlink_to(BUILT)
    return {"JUPYTER_PATH": str(data)}


@pytest.fixture
def lab_factory(tmp_path_factory):
    """Start labs with extra arguments; all stopped at the end of the test."""
    labs: list[Lab] = []

    def start(*extra_args: str) -> Lab:
        tmp = tmp_path_factory.mktemp("lab")
        lab = start_lab(tmp, jupyter=str(Path(sys.executable).with_name("jupyter")),
                        env_extra=with_built_extension(tmp), extra_args=list(extra_args))
        labs.append(lab)
        return lab

    yield start
    for lab in labs:
        stop_lab(lab)
