"""`%perry` in real notebooks: a real kernel (nbclient), a real `perry serve`, the real engine.

Also: a kernel started by the server itself finds it with no configuration (kernel_env),
and the demo notebook runs where there is no Docker engine (as on Binder).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
import requests
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from ..conftest import TEST_PREFIX
from .agents import start_model
from .conftest import PerryServe

DEMO = Path(__file__).parents[2] / "notebooks" / "perry-demo.ipynb"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Kernel:
    """A real IPython kernel (nbclient) whose cells run one at a time, so the test can act between them."""

    def __init__(self, env: dict[str, str]):
        self.nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"}})
        self.client = NotebookClient(self.nb, timeout=600, kernel_name="python3", allow_errors=True)
        self._env = env

    def __enter__(self):
        saved = {k: os.environ.get(k) for k in ("PERRY_URL", "PERRY_TOKEN", "PERRY_CONFIG_DIR", "PERRY_JUPYTER_URL")}
        self._saved = saved
        for key in saved:  # the kernel inherits this process's environment
            os.environ.pop(key, None)
        os.environ.update(self._env)
        self._setup = self.client.setup_kernel()
        self._setup.__enter__()
        return self

    def __exit__(self, *exc):
        try:
            self._setup.__exit__(*exc)
        finally:
            for key, value in self._saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def run(self, source: str):
        cell = new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return cell

    def value(self, expression: str):
        """A JSON-able value of an expression in the kernel."""
        cell = self.run(f"import json as _json; print(_json.dumps({expression}))")
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, errors
        return json.loads("".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"))


def outputs(cell, kind: str) -> list:
    return [o for o in cell.outputs if o.output_type == kind]


def html_of(cell) -> str:
    [result] = outputs(cell, "execute_result")
    return result["data"]["text/html"]


def no_error(cell) -> None:
    assert not outputs(cell, "error"), outputs(cell, "error")


@pytest.mark.engine
def test_magics_create_list_info_dispatch_delete(server, docker_client, tmp_path):
    import subprocess

    env = {"PERRY_URL": server.url, "PERRY_TOKEN": server.token_file.read_text().strip(),
           "PERRY_CONFIG_DIR": str(server.dir / "perry")}
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "hello.txt").write_text("from the notebook's host\n")
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    t0 = time.monotonic()
    with Kernel(env) as k:
        no_error(k.run("%load_ext perry_jupyter"))

        cell = k.run(f"ws = %perry create nbmagic --clone {repo}\nws")
        no_error(cell)
        ws = k.value("ws")
        assert ws["name"] == "nbmagic" and ws["status"] == "running" and ws["ports"]["ssh"] > 0
        created = html_of(cell)
        assert "Created workspace <b>nbmagic</b>" in created and "running" in created
        assert f"ssh -p {ws['ports']['ssh']} workspace@127.0.0.1" in created
        assert k.value("isinstance(ws, dict)") is True
        assert ws["clone"] == str(repo)
        cell = k.run("out = %perry exec nbmagic -- cat proj/hello.txt\nout")
        no_error(cell)
        assert k.value("out") == {"exitCode": 0, "stdout": "from the notebook's host\n", "stderr": ""}
        assert "from the notebook&#x27;s host" in html_of(cell)

        cell = k.run("%perry list")
        no_error(cell)
        table = html_of(cell)
        assert "<table" in table and "<b>nbmagic</b>" in table and "running" in table
        listed = k.value("[(w['name'], w['status']) for w in _]")
        assert listed == [["nbmagic", "running"]]

        cell = k.run("info = %perry info nbmagic")
        no_error(cell)
        assert outputs(cell, "execute_result") == []  # an assignment shows nothing, as in Python
        info = k.value("info")
        server_view = requests.get(f"{server.url}/perry/api/workspaces/nbmagic", headers=server.headers,
                                   timeout=10).json()
        assert info == server_view
        assert "<table" in k.run("info").outputs[0]["data"]["text/html"]

        # A usage mistake: IPython's UsageError with the command's help, no traceback.
        cell = k.run("%perry create")
        text = ANSI.sub("", "".join(o.get("text", "") for o in outputs(cell, "stream")))
        assert "UsageError: Missing argument 'NAME'." in text and "Usage: %perry create [OPTIONS] NAME" in text
        assert "Traceback" not in text
        assert k.value("__import__('IPython').core.error.UsageError.__name__") == "UsageError"
        caught = k.run("from IPython.core.error import UsageError\ntry:\n"
                       "    %perry dispatch nbmagic\nexcept UsageError as e:\n    print('caught', e)")
        assert "caught Missing argument 'PROMPT'." in caught.outputs[0]["text"]

        # A server error: the server's message alone, as a PerryError code can catch.
        cell = k.run("%perry info nosuch")
        [error] = outputs(cell, "error")
        assert error["ename"] == "PerryError" and error["evalue"] == "workspace 'nosuch' does not exist"
        assert len(error["traceback"]) == 1 and "nosuch" in ANSI.sub("", error["traceback"][0])
        cell = k.run("from perry_jupyter.notebook.magics import PerryError\ntry:\n    %perry info nosuch\n"
                     "except PerryError as e:\n    print(e.status, e.code)")
        # print() writes its words one by one: a busy kernel may send them as several stream messages.
        assert "".join(o["text"] for o in cell.outputs if o.get("name") == "stdout").strip() == "404 not_found"

        # Dispatch to the stand-in model inside the workspace and wait for the task.
        container = docker_client.containers.get(f"{TEST_PREFIX}nbmagic")
        start_model(container, ["Notes written from the notebook."], title="Notebook task")
        cell = k.run('task = %perry dispatch nbmagic "write the notes" --wait\ntask')
        no_error(cell)
        task = k.value("task")
        assert task["status"] == "succeeded" and task["summary"] == "Notes written from the notebook."
        assert task["workspace"] == "nbmagic" and task["prompt"] == "write the notes"
        assert "succeeded" in html_of(cell) and task["id"] in html_of(cell)

        cell = k.run("%perry tasks nbmagic")
        no_error(cell)
        assert task["id"] in html_of(cell)
        assert k.value("[t['id'] for t in _]") == [task["id"]]

        cell = k.run("sessions = %perry sessions nbmagic\nsessions")
        no_error(cell)
        sessions = k.value("sessions")
        assert [s["sessionId"] for s in sessions] == [task["sessionId"]]
        assert task["sessionId"] in html_of(cell)

        cell = k.run(f"%perry sessions show nbmagic {task['sessionId']}")
        no_error(cell)
        assert "Notes written from the notebook." in html_of(cell) and "write the notes" in html_of(cell)

        cell = k.run("%perry stop nbmagic")
        no_error(cell)
        assert "Stopped workspace" in html_of(cell) and "stopped" in html_of(cell)

        # Delete asks nothing in a notebook: without --yes it is a usage mistake and changes nothing.
        cell = k.run("%perry delete nbmagic")
        assert "add --yes to confirm" in "".join(o.get("text", "") for o in outputs(cell, "stream"))
        assert requests.get(f"{server.url}/perry/api/workspaces/nbmagic", headers=server.headers,
                            timeout=10).status_code == 200
        cell = k.run("gone = %perry delete nbmagic --yes\ngone")
        no_error(cell)
        assert k.value("gone") == {"name": "nbmagic", "status": "deleted"}
        assert "Deleted workspace <b>nbmagic</b>" in html_of(cell)
        cell = k.run("%perry list")
        assert "No workspaces yet" in html_of(cell) and k.value("_") == []
    assert requests.get(f"{server.url}/perry/api/workspaces", headers=server.headers,
                        timeout=10).json()["workspaces"] == []
    print(f"magics notebook: {time.monotonic() - t0:.1f} s")


def test_a_kernel_of_the_server_finds_it_with_no_configuration(tmp_path, ssh_key):
    """A kernel started through the server's own API (as JupyterLab does) gets PERRY_URL/PERRY_TOKEN."""
    from jupyter_client import BlockingKernelClient

    serve = PerryServe(tmp_path, ssh_key)
    runtime = tmp_path / "runtime"
    serve.env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    serve.env.pop("PERRY_JUPYTER_URL", None)
    serve.start()
    try:
        r = requests.post(f"{serve.url}/api/sessions", headers=serve.headers, timeout=60,
                          json={"path": "probe.ipynb", "type": "notebook", "name": "probe.ipynb",
                                "kernel": {"name": "python3"}})
        assert r.status_code == 201, r.text
        kernel_id = r.json()["kernel"]["id"]
        client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel_id}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            seen: list[str] = []

            def run(code: str) -> dict:
                reply = client.execute_interactive(code, timeout=60, output_hook=lambda m: seen.append(
                    json.dumps(m["content"])))
                return reply["content"]

            assert run("%load_ext perry_jupyter")["status"] == "ok"
            seen.clear()
            assert run("import os; print(os.environ['PERRY_URL'], os.environ['PERRY_JUPYTER_URL'], "
                       "os.environ['PERRY_TOKEN'] == open(os.path.expanduser("
                       f"{str(serve.token_file)!r})).read().strip())")["status"] == "ok"
            printed = " ".join(json.loads(s).get("text", "") for s in seen)
            assert printed.split() == [f"{serve.url}/", f"{serve.url}/", "True"]
            seen.clear()
            assert run("%perry list")["status"] == "ok"
            assert any("No workspaces yet" in json.loads(s).get("data", {}).get("text/html", "") for s in seen), seen
        finally:
            client.stop_channels()
    finally:
        serve.stop()


def test_demo_notebook_without_a_docker_engine(tmp_path, ssh_key):
    """As on Binder: everything loads, and the notebook, the magics and the widget say what is missing."""
    serve = PerryServe(tmp_path, ssh_key)
    serve.argv.append(f"--PerryApp.docker_host=unix://{tmp_path}/no-docker.sock")
    serve.start()
    nb = nbformat.read(DEMO, as_version=4)
    nb.cells.append(new_code_cell("manager.wait(); print(manager.banner.value)"))
    env = {"PERRY_URL": serve.url, "PERRY_TOKEN": serve.token_file.read_text().strip()}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        t0 = time.monotonic()
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
        print(f"demo notebook without an engine: {time.monotonic() - t0:.1f} s")
    finally:
        serve.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    code = [c for c in nb.cells if c.cell_type == "code"]
    by_source = {c.source.splitlines()[0]: c for c in code}
    assert not outputs(by_source["%load_ext perry_jupyter"], "error")
    doctor = html_of(by_source["%perry doctor"])
    assert "engine" in doctor and "not reachable" in doctor and "✗" in doctor
    widget = by_source["from perry_jupyter.widgets import SessionViewer, WorkspaceManager"]
    assert "application/vnd.jupyter.widget-view+json" in outputs(widget, "execute_result")[0]["data"]
    banner = "".join(o.get("text", "") for o in outputs(code[-1], "stream"))
    assert "No Docker engine is reachable" in banner and "Binder" in banner
    create = by_source['ws = %perry create notebook-demo']
    [error] = outputs(create, "error")
    assert error["ename"] == "PerryError" and "not reachable" in error["evalue"] and len(error["traceback"]) == 1
    for cell in code:  # no traceback wall anywhere
        for e in outputs(cell, "error"):
            assert len(e["traceback"]) == 1, (cell.source, e["traceback"])


ROOT = Path(__file__).parents[2]


def test_binder_configuration_installs_and_enables_the_extension(tmp_path):
    """binder/ as mybinder would use it, offline: the pip section, then postBuild, in a fresh venv.

    The packages environment.yml lists come from this test environment (a .pth file) instead of
    the network; postBuild itself runs unchanged, with pip kept offline, and its own checks
    (the server extension and the lab extension listed as enabled and OK) must pass.
    """
    import subprocess
    import sys
    import sysconfig

    import yaml
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    t0 = time.monotonic()
    spec = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text())
    conda = [d for d in spec["dependencies"] if isinstance(d, str)]
    [pip_section] = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict)]
    python = next(d.split("=", 1)[1] for d in conda if d.startswith("python="))
    requires = re.search(r'requires-python = "([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert python + ".0" in SpecifierSet(requires) and any(d.startswith("nodejs") for d in conda)
    assert {Requirement(r).name for r in pip_section} >= {"jupyterlab", "ipywidgets"}

    venv = tmp_path / "binder-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bindir = venv / "bin"
    purelib = subprocess.run([str(bindir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "perry-binder-test.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # The console scripts a real install of jupyterlab would have put into the venv.
    for name, target in {"jupyter": "jupyter_core.command", "jupyter-server": "jupyter_server.serverapp",
                         "jupyter-labextension": "jupyterlab.labextensions"}.items():
        script = bindir / name
        script.write_text(f"#!{bindir / 'python'}\nimport sys\nfrom {target} import main\nsys.exit(main())\n")
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH",
                                                             "JUPYTER_CONFIG_PATH")}
    env.update(PATH=f"{bindir}:{env.get('PATH', '')}", PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0",
               PIP_DISABLE_PIP_VERSION_CHECK="1", JUPYTER_CONFIG_DIR=str(tmp_path / "user-config"),
               JUPYTER_DATA_DIR=str(tmp_path / "user-data"), JUPYTER_PLATFORM_DIRS="1")
    r = subprocess.run([str(bindir / "python"), "-m", "pip", "install", *pip_section], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["bash", str(ROOT / "binder" / "postBuild")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    output = ANSI.sub("", r.stdout + r.stderr)
    assert r.returncode == 0, output
    assert re.search(r"perry_jupyter \S+ OK", output) and re.search(r"perry-jupyter v\S+ enabled OK", output)
    assert Path(purelib, "perry_jupyter", "notebook", "magics.py").is_file()  # the project itself, not the test's copy
    print(f"binder check: {time.monotonic() - t0:.1f} s")
