"""The `perry` CLI end to end against a real `perry serve` subprocess and the real engine."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ..conftest import IMAGE_TAG, SSH_PORTS, TEST_PREFIX

pytestmark = pytest.mark.engine
PERRY = str(Path(sys.executable).parent / "perry")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path, ssh_key):
    """A `perry serve` on a free port with its own state directory; yields the CLI's environment."""
    port = free_port()
    env = {**os.environ, "PERRY_CONFIG_DIR": str(tmp_path / "perry"), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("PERRY_URL", None)
    env.pop("PERRY_TOKEN", None)
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [PERRY, "serve", f"--port={port}", f"--PerryApp.workspace_prefix={TEST_PREFIX}",
         f"--PerryApp.image_tag={IMAGE_TAG}", "--PerryApp.network=perry-test",
         f"--PerryApp.ssh_port_range={SSH_PORTS[0]}", f"--PerryApp.ssh_port_range={SSH_PORTS[1]}",
         f"--PerryApp.ssh_public_keys={ssh_key}.pub"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    token_file = tmp_path / "perry" / "token"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        if token_file.exists():
            try:
                r = requests.get(f"http://127.0.0.1:{port}/perry/api/info",
                                 headers={"Authorization": f"token {token_file.read_text().strip()}"}, timeout=5)
                if r.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
        assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
        time.sleep(0.2)
    env["PERRY_URL"] = f"http://127.0.0.1:{port}"
    yield env
    proc.terminate()
    proc.wait(30)
    log.close()
    serve_log = (tmp_path / "serve.log").read_text()
    assert token_file.read_text().strip() not in serve_log, "the token leaked into the server log"


def perry(env, *args, check=True, input=None):
    r = subprocess.run([PERRY, *args], env=env, capture_output=True, text=True, timeout=600, input=input)
    if check:
        assert r.returncode == 0, f"perry {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def test_cli_lifecycle(served, tmp_path):
    env = served
    # The image is built (by the test session); a second build returns from the cache.
    r = perry(env, "build")
    assert IMAGE_TAG in r.stdout

    repo = tmp_path / "proj"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "hello.txt").write_text("from the host\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e.invalid",
                    "commit", "-qm", "x"], check=True)

    perry(env, "create", "clibox", "--clone", str(repo))
    listing = json.loads(perry(env, "list", "--json").stdout)
    assert [(w["name"], w["status"]) for w in listing] == [("clibox", "running")]
    table = perry(env, "list").stdout
    assert "clibox" in table and "running" in table

    info = perry(env, "info", "clibox").stdout
    port = listing[0]["ports"]["ssh"]
    assert f"ssh -p {port} workspace@127.0.0.1" in info

    r = perry(env, "exec", "clibox", "--", "uname", "-a")
    assert r.stdout.startswith("Linux clibox ")
    assert perry(env, "exec", "clibox", "--", "cat", "proj/hello.txt").stdout == "from the host\n"
    r = perry(env, "exec", "clibox", "--", "sh", "-c", "exit 5", check=False)
    assert r.returncode == 5

    perry(env, "exec", "clibox", "--", "sh", "-c", "echo persisted > f.txt")
    perry(env, "stop", "clibox")
    assert json.loads(perry(env, "info", "clibox", "--json").stdout)["status"] == "stopped"
    perry(env, "start", "clibox")
    assert perry(env, "exec", "clibox", "--", "cat", "f.txt").stdout == "persisted\n"

    assert "ssh keys" in perry(env, "sync", "clibox").stdout
    assert "perry:" in perry(env, "logs", "clibox").stdout

    # `start` of an unknown name creates it.
    perry(env, "start", "second")
    assert {w["name"] for w in json.loads(perry(env, "list", "--json").stdout)} == {"clibox", "second"}

    r = perry(env, "delete", "clibox", input="n\n", check=False)
    assert r.returncode != 0
    perry(env, "delete", "clibox", "--yes")
    perry(env, "rm", "second", "--yes")
    assert json.loads(perry(env, "list", "--json").stdout) == []

    r = perry(env, "info", "clibox", check=False)
    assert r.returncode == 1 and r.stderr.strip() == "error: workspace 'clibox' does not exist"
    r = perry(env, "create", "Bad_Name", check=False)
    assert r.returncode == 1 and "invalid workspace name" in r.stderr and "Traceback" not in r.stderr


def test_doctor_and_config(served, tmp_path):
    env = served
    r = perry(env, "doctor", check=False)
    assert "engine" in r.stdout and "image" in r.stdout, r.stdout

    # Point the CLI elsewhere with `perry config worker`: a saved address and token.
    bare = {k: v for k, v in env.items() if k not in ("PERRY_URL",)}
    url = env["PERRY_URL"]
    token = (tmp_path / "perry" / "token").read_text().strip()
    perry(bare, "config", "worker", url.removeprefix("http://"), "--token", token)
    shown = perry(bare, "config", "show").stdout
    assert url in shown and token not in shown
    assert json.loads(perry(bare, "list", "--json").stdout) == []

    perry(bare, "config", "worker", url.removeprefix("http://"), "--token", "wrong")
    r = perry(bare, "list", check=False)
    assert r.returncode == 1 and "token" in r.stderr

    down = {**env, "PERRY_URL": f"http://127.0.0.1:{free_port()}"}
    r = perry(down, "list", check=False)
    assert r.returncode == 1 and "perry serve" in r.stderr and len(r.stderr.strip().splitlines()) == 1
