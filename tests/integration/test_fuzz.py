"""The OpenAPI document is true: it lists what is served, and a fuzzer finds no 5xx and no answer it misdescribes.

Schemathesis runs against a real `perry serve` whose workspace prefix is this test's own
(its stateful phase deletes the workspaces it finds), with a running workspace whose
agent talks to the stand-in model, so exec, session, task and terminal routes are reached.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from tornado.web import RequestHandler

from perry_jupyter.core.settings import PATCHABLE
from perry_jupyter.handlers import routes
from perry_worker import agents as agent_registry

from ..conftest import SSH_PORTS, TEST_PREFIX
from .agents import OPENCODE_CONFIG, start_model
from .conftest import PerryServe, until

ST = str(Path(sys.executable).parent / "st")
HOOKS = Path(__file__).parent / "fuzz_hooks.py"
# A prefix inside the suite's own, so the engine tests' cleanup removes what the fuzzer leaves,
# and no other server's workspaces are visible to it.
FUZZ_PREFIX = f"{TEST_PREFIX}fz-"
METHODS = ("get", "post", "put", "patch", "delete")
# Schemathesis counts every operation of the document, HEAD and OPTIONS of the proxy routes too.
ALL_METHODS = METHODS + ("head", "options", "trace")
# Group names in the routes, as the document calls the parameters.
PARAMETER_NAMES = {"workspace": "name", "session_id": "sessionId", "task_id": "taskId"}
LIFECYCLE = [("post", "/perry/api/workspaces"), ("delete", "/perry/api/workspaces/{name}"),
             *[("post", f"/perry/api/workspaces/{{name}}/{action}") for action in ("start", "stop", "sync")]]


def _expand(pattern: str) -> list[str]:
    """A group that is an alternation of words (start|stop|sync) is one documented path per word."""
    m = re.search(r"\(\?P<\w+>(\w+(?:\|\w+)+)\)", pattern)
    if m is None:
        return [pattern]
    return [p for word in m[1].split("|") for p in _expand(pattern[:m.start()] + word + pattern[m.end():])]


def served_operations() -> set[tuple[str, str]]:
    """(method, OpenAPI path) for every route and every HTTP method its handler implements."""
    out = set()
    for pattern, handler, *_ in routes():
        if handler.__name__ == "NoRouteHandler":
            continue  # the JSON 404 for any address Perry does not serve
        methods = {m for m in METHODS if getattr(handler, m) is not getattr(RequestHandler, m)}
        for path in _expand(pattern):
            path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda g: "{%s}" % PARAMETER_NAMES.get(g[1], g[1]), path)
            path = path.replace("{path}?", "/{path}")  # the proxy's optional rest of the path
            path = path.replace("\\.", ".").replace("/perry/?", "/perry/")  # /perry/proxy\.js; /perry[/]
            out |= {(m, path) for m in methods}
    return out


async def test_the_document_describes_every_served_route_from_the_code_constants(jp_fetch):
    r = await jp_fetch("perry", "api", "openapi.json")
    doc = json.loads(r.body)
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m in METHODS}
    assert documented == served_operations()

    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            # Every route is behind Jupyter's auth, and says so.
            assert "403" in op["responses"], (method, path)
            if "requestBody" in op:
                assert "413" in op["responses"], (method, path)
    # Busy while another lifecycle action on the workspace runs.
    for method, path in LIFECYCLE:
        assert "409" in doc["paths"][path][method]["responses"], (method, path)

    schemas = doc["components"]["schemas"]
    patch = doc["paths"]["/perry/api/config"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert list(patch["properties"]) == list(PATCHABLE)
    assert schemas["Dispatch"]["properties"]["agent"]["enum"] == list(agent_registry.NAMES)
    assert schemas["Workspace"]["properties"]["agents"]["items"]["enum"] == list(agent_registry.NAMES)
    assert schemas["Usage"]["properties"]["total"]["properties"]["cost"]["nullable"] is True


def fuzz_config(*, workspace: str, session: str, task: str, terminal: str) -> str:
    """Schemathesis' configuration: half the generated ids are real ones, so routes get past their 404.

    The token comes from the environment, so it is in no command line.
    """
    def dictionary(name, value):
        return f"[dictionaries.{name}]\nvalues = [{json.dumps(value)}]\n"

    return ('headers = { Authorization = "${PERRY_FUZZ_AUTH}" }\n'
            + dictionary("workspace", workspace) + dictionary("session", session) + dictionary("task", task)
            + dictionary("terminal", terminal) + "[parameters]\n"
            + "".join(f'"path.{p}" = {{ dictionary = "{d}", probability = 0.5 }}\n' for p, d in (
                ("name", "workspace"), ("sessionId", "session"), ("taskId", "task"), ("term", "terminal"))))


@pytest.fixture
def fuzz_server(tmp_path, ssh_key):
    """`perry serve` on its own prefix, state directory, home and SSH ports."""
    home = tmp_path / "home"
    (home / ".config" / "opencode").mkdir(parents=True)
    # Every workspace it makes gets an OpenCode that asks the stand-in model (or nothing) on its loopback.
    (home / ".config" / "opencode" / "opencode.json").write_text(json.dumps(OPENCODE_CONFIG))
    (home / ".gitconfig").write_text("[user]\n\tname = Fuzz\n\temail = fuzz@example.invalid\n")
    serve = PerryServe(tmp_path, ssh_key)
    serve.argv = [a for a in serve.argv if not a.startswith(("--PerryApp.workspace_prefix=",
                                                              "--PerryApp.ssh_port_range="))]
    serve.argv += [f"--PerryApp.workspace_prefix={FUZZ_PREFIX}", f"--PerryApp.host_home={home}",
                   f"--PerryApp.git_config={home / '.gitconfig'}",
                   # The top of the suite's range: other servers take the lowest free ports first.
                   f"--PerryApp.ssh_port_range={SSH_PORTS[1] - 19}", f"--PerryApp.ssh_port_range={SSH_PORTS[1]}"]
    serve.start()
    yield serve
    try:
        serve.stop()
    finally:
        if serve.proc.poll() is None:  # still stuck in a request after SIGTERM: nothing may outlive the test
            serve.kill()


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_fuzzing_the_document_finds_no_server_error_and_no_undocumented_answer(fuzz_server, docker_client, tmp_path):
    url, headers = fuzz_server.url + "/perry/api", fuzz_server.headers
    r = requests.post(f"{url}/workspaces", json={"name": "fz"}, headers=headers, timeout=300)
    assert r.status_code == 201, r.text
    container = docker_client.containers.get(f"{FUZZ_PREFIX}fz")
    start_model(container, [], default="Fuzzed.")
    # A finished task leaves a real session behind for the session routes.
    r = requests.post(f"{url}/workspaces/fz/tasks", json={"prompt": "hello"}, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    task_url = f"{url}/workspaces/fz/tasks/{r.json()['id']}"

    def finished():
        t = requests.get(task_url, headers=headers, timeout=30).json()
        return t if t["status"] not in ("queued", "running") else None
    done = until(finished)
    assert done["status"] == "succeeded", done

    session = requests.get(f"{url}/workspaces/fz/sessions", headers=headers, timeout=60).json()["sessions"][0]
    r = requests.post(f"{url}/workspaces/fz/terminals", headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    terminal = r.json()["name"]
    r = requests.post(f"{url}/workspaces", json={"name": "fz-spare"}, headers=headers, timeout=300)
    assert r.status_code == 201, r.text

    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=Fuzz", "-c", "user.email=fuzz@example.invalid",
                    "commit", "-q", "--allow-empty", "-m", "start"], check=True)

    doc = requests.get(f"{url}/openapi.json", headers=headers, timeout=30).json()
    # Not fuzzed: a build would rebuild the image every test shares, WebSockets are not HTTP, the
    # proxy answers whatever the server in the workspace answers, and the phone page is files.
    excluded = ["/perry/api/image/build"] + [p for p, ops in doc["paths"].items()
                                             if any(op.get("x-websocket") or op.get("x-proxy") or op.get("x-page")
                                                    for op in ops.values())]
    config = tmp_path / "schemathesis.toml"
    config.write_text(fuzz_config(workspace="fz", session=session["sessionId"], task=done["id"], terminal=terminal))
    report = tmp_path / "report.json"
    argv = [ST, "--config-file", str(config), "run", f"{url}/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                        "response_schema_conformance",
            "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "20",
            "--seed", "7391", "--generation-database", "none", "--workers", "1",
            "--request-timeout", "120", "--no-color", "--report", "json", "--report-json-path", str(report),
            *[a for p in excluded for a in ("--exclude-path", p)]]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "PERRY_FUZZ_REPO": str(repo),
           "PERRY_FUZZ_AUTH": headers["Authorization"],
           "PERRY_FUZZ_KEEP": "fz", "PERRY_FUZZ_SPARE": "fz-spare"}
    # About three minutes alone on two cores; the margin is for an engine other test runs share.
    run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=780)
    assert report.exists(), run.stdout[-5000:] + run.stderr[-5000:]
    result = json.loads(report.read_text())
    # Schemathesis' own text lists each failure with a curl that reproduces it.
    assert result["failures"] == [] and result["errors"] == [], run.stdout[-20000:]
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    operations = result["operations"]
    # Everything schemathesis loaded but what this test excluded was tested. (It loads one operation
    # fewer than the document lists, 30 of 31; which one was not found in the time there was.)
    assert operations["tested"] == operations["selected"] == operations["total"] - sum(
        m in ALL_METHODS for p, ops in doc["paths"].items() if p in excluded for m in ops)
    assert result["phases"]["stateful"]["status"] == "success", result["phases"]
    assert result["test_cases"]["generated"] >= 300
