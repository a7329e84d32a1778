"""The built wheel, installed into a fresh virtual environment with no Node on PATH, serves the panel.

The wheel is built from a clean copy of the sources (no node_modules, no earlier build
output), so this also proves the package build runs the JS build itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT, open_lab_page, start_lab, stop_lab

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

IGNORED = shutil.ignore_patterns(".git", ".venv", "node_modules", "lib", "dist", "build", "artifacts",
                                 "labextension", "__pycache__", ".pytest_cache", ".ruff_cache", ".yarn",
                                 "tsconfig.tsbuildinfo", "*.egg-info")


def clean_copy(dest: Path) -> Path:
    """The files git would commit (tracked or new, not ignored); a filtered copy outside git."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT, dest, ignore=IGNORED)
        return dest
    for raw in filter(None, listed):
        rel = Path(raw.decode())
        if not (ROOT / rel).is_file():
            continue  # deleted in the working tree
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = clean_copy(tmp_path_factory.mktemp("src") / "perry-jupyter")
    assert not (src / "perry_jupyter" / "labextension").exists()
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)], check=True)
    wheels = list(out.glob("perry_jupyter-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_carries_the_built_extension(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if "/data/share/jupyter/labextensions/perry-jupyter/" in n]
    assert any(n.endswith("/perry-jupyter/package.json") for n in data), data
    assert any(n.endswith("/perry-jupyter/install.json") for n in data), data
    assert any(re.search(r"/static/remoteEntry\.[0-9a-f]+\.js$", n) for n in data), data
    assert any(n.endswith("etc/jupyter/jupyter_server_config.d/perry_jupyter.json") for n in names)
    # The phone page's bundle, built by the same `jlpm build:prod`, inside the package.
    assert "perry_jupyter/static/phone/build/phone.js" in names
    assert "perry_jupyter/static/phone/sw.js" in names


def test_installed_wheel_serves_the_panel_without_node(wheel, tmp_path, browser, artifacts):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    # Nothing but the new environment on PATH: no node, no jlpm, no npm.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = str(bin_dir)
    assert shutil.which("node", path=env["PATH"]) is None
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel), "jupyterlab>=4.5,<5"],
                   check=True, env=env)

    listed = subprocess.run([str(bin_dir / "jupyter"), "labextension", "list"], env=env, check=True,
                            capture_output=True, text=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    assert re.search(r"perry-jupyter v\S+ enabled OK", text), text
    assert str(venv) in text  # the copy in the new environment, not a development one

    servers = subprocess.run([str(bin_dir / "jupyter"), "server", "extension", "list"], env=env, check=True,
                             capture_output=True, text=True)
    assert re.search(r"perry_jupyter\s+\S+\s+OK", re.sub(r"\x1b\[[0-9;]*m", "", servers.stdout + servers.stderr))

    lab = start_lab(tmp_path / "lab", jupyter=str(bin_dir / "jupyter"), env_extra={"PATH": env["PATH"] + ":/usr/bin"})
    try:
        context, page = None, None
        loaded: list[str] = []

        def on_response(response):
            if "/lab/extensions/perry-jupyter/static/" in response.url and response.ok:
                loaded.append(response.url)

        context, page = open_lab_page(browser, lab, artifacts, "test_wheel")
        page.on("response", on_response)
        page.reload()
        page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
        tab = page.locator('.jp-SideBar [data-id="perry-panel"]')
        tab.wait_for()
        tab.click()
        page.wait_for_selector("#perry-panel .perry-header", timeout=30_000)
        page.shot("installed-wheel-panel")
        assert any("remoteEntry." in u for u in loaded), loaded
        assert not page.perry_errors
        page.goto(f"{lab.url}perry/")
        page.wait_for_selector(".pp-header h1", timeout=30_000)
        page.shot("installed-wheel-phone")
        assert not page.perry_errors
        context.close()
    finally:
        stop_lab(lab)
