"""The `perry` CLI end to end against a real `perry serve` subprocess and the real engine."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

import requests
import websocket

from ..conftest import IMAGE_TAG
from .conftest import PERRY, PerryServe, free_port

pytestmark = pytest.mark.engine


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
    assert re.search(r"agents\s+opencode\b", info), info

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


def test_the_ssh_line_names_the_host_the_client_reached(tmp_path, ssh_key):
    # Ports published on every address: the server tells each client the host it reached it at,
    # so the CLI, the notebooks and the panel show one line that works from where they are.
    serve = PerryServe(tmp_path, ssh_key)
    serve.argv.append("--PerryApp.bind_address=0.0.0.0")
    serve.start()
    try:
        env = {**serve.cli_env(), "PERRY_URL": f"http://localhost:{serve.port}"}
        perry(env, "create", "wildbox")
        ws = json.loads(perry(env, "info", "wildbox", "--json").stdout)
        line = f"ssh -p {ws['ports']['ssh']} workspace@localhost"
        assert ws["sshHost"] == "0.0.0.0" and ws["sshCommand"] == line
        assert line in perry(env, "list").stdout and line in perry(env, "info", "wildbox").stdout
        listed = requests.get(f"{serve.url}/perry/api/workspaces", headers=serve.headers, timeout=30).json()
        assert [w["sshCommand"] for w in listed["workspaces"]] == [line.replace("localhost", "127.0.0.1")]
        # The events the panel updates its rows from say the same.
        events = websocket.create_connection(f"ws://localhost:{serve.port}/perry/api/events",
                                             header=[f"Authorization: {serve.headers['Authorization']}"], timeout=60)
        try:
            assert json.loads(events.recv())["type"] == "hello"
            perry(env, "stop", "wildbox")
            updated = next(e for e in (json.loads(events.recv()) for _ in range(50))
                           if e["type"] == "workspace.updated" and (e.get("data") or {}).get("status") == "stopped")
            assert updated["data"]["sshCommand"] == line
        finally:
            events.close()
        perry(env, "delete", "wildbox", "--yes")
    finally:
        serve.stop()
