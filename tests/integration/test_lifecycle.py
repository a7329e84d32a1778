"""The whole workspace lifecycle through the REST API of a real Jupyter server on a real engine."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from docker.errors import NotFound

from ..conftest import SSH_PORTS, TEST_PREFIX

pytestmark = pytest.mark.engine


def make_repo(path):
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "README.md").write_text("hello from the cloned repo\n")
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@e.invalid",
                    "commit", "-q", "-m", "first"], check=True)
    return path


async def run(api, name, *command, user=None):
    body = {"command": list(command)}
    if user:
        body["user"] = user
    code, result = await api("POST", f"workspaces/{name}/exec", body)
    assert code == 200, result
    return result


async def next_event(ws, type_, timeout=120):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        msg = await asyncio.wait_for(ws.read_message(), deadline - asyncio.get_running_loop().time())
        assert msg is not None, "events socket closed"
        event = json.loads(msg)
        if event["type"] == type_:
            return event


async def test_lifecycle_end_to_end(api, jp_ws_fetch, docker_client, tmp_path, perry_state_dir):
    repo = make_repo(tmp_path / "project")
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "alpha"})
    assert json.loads(await events.read_message())["type"] == "hello"

    code, ws = await api("POST", "workspaces", {"name": "alpha", "clone": str(repo), "env": {"GREETING": "hi"}})
    assert code == 201, ws
    assert ws["status"] == "running"
    assert SSH_PORTS[0] <= ws["ports"]["ssh"] <= SSH_PORTS[1]
    assert ws["containerName"] == f"{TEST_PREFIX}alpha"
    assert ws["projectDir"] == "/home/workspace/project"
    assert (await next_event(events, "workspace.created"))["data"]["status"] == "creating"
    assert (await next_event(events, "workspace.progress"))["data"]["message"] == "creating volumes"
    assert (await next_event(events, "workspace.updated"))["data"]["status"] == "running"

    # What Docker holds is what Perry said.
    container = docker_client.containers.get(f"{TEST_PREFIX}alpha")
    assert container.attrs["Config"]["Hostname"] == "alpha"
    assert container.labels["perry.workspace"] == "alpha"
    assert container.attrs["HostConfig"]["PortBindings"]["22/tcp"][0]["HostIp"] == "127.0.0.1"
    mounts = {m["Destination"]: m.get("Name") for m in container.attrs["Mounts"]}
    assert mounts["/home/workspace"] == f"{TEST_PREFIX}alpha-home"
    assert mounts["/var/lib/docker"] == f"{TEST_PREFIX}alpha-docker"
    assert "perry-test" in container.attrs["NetworkSettings"]["Networks"]

    # The repository was cloned into the home, env reached the box, user files were copied.
    assert (await run(api, "alpha", "cat", "project/README.md"))["stdout"] == "hello from the cloned repo\n"
    assert (await run(api, "alpha", "sh", "-c", "echo $GREETING; whoami; pwd"))["stdout"].split() == [
        "hi", "workspace", "/home/workspace"]
    assert (await run(api, "alpha", "git", "config", "user.name"))["stdout"].strip() == "Perry Tester"
    assert (await run(api, "alpha", "perry-worker", "--version"))["exitCode"] == 0
    failed = await run(api, "alpha", "sh", "-c", "echo oops >&2; exit 7")
    assert (failed["exitCode"], failed["stderr"]) == (7, "oops\n")

    # Listing and getting.
    code, listing = await api("GET", "workspaces")
    assert [w["name"] for w in listing["workspaces"]] == ["alpha"]
    code, got = await api("GET", "workspaces/alpha")
    assert code == 200 and got["status"] == "running" and got["containerId"] == container.id

    # Files in the home survive stop and start.
    await run(api, "alpha", "sh", "-c", "echo keep-me > notes.txt")
    code, stopped = await api("POST", "workspaces/alpha/stop")
    assert code == 200 and stopped["status"] == "stopped"
    container.reload()
    assert container.status == "exited"
    code, result = await api("POST", "workspaces/alpha/exec", {"command": ["true"]})
    assert code == 409 and "not running" in result["error"]["message"]
    code, started = await api("POST", "workspaces/alpha/start")
    assert code == 200 and started["status"] == "running"
    assert (await run(api, "alpha", "cat", "notes.txt"))["stdout"] == "keep-me\n"

    # Sync puts back what a user broke.
    await run(api, "alpha", "sh", "-c", "rm -f ~/.ssh/authorized_keys ~/.gitconfig")
    code, synced = await api("POST", "workspaces/alpha/sync")
    assert code == 200 and {"worker", "ssh keys", "git config"} <= set(synced["copied"])
    assert (await run(api, "alpha", "stat", "-c", "%a %U", ".ssh/authorized_keys"))["stdout"].strip() == "600 workspace"

    # A worker unlike the server's (a workspace made by another Perry version) is replaced on use.
    await run(api, "alpha", "sh", "-c", "echo '# from an older Perry' >> /opt/perry/perry_worker/sessions.py",
              user="root")
    code, listing = await api("GET", "workspaces/alpha/sessions")
    assert code == 200 and listing["sessions"] == [], listing
    assert "older Perry" not in (await run(api, "alpha", "cat", "/opt/perry/perry_worker/sessions.py"))["stdout"]

    code, logs = await api("GET", "workspaces/alpha/logs", params={"tail": "50"})
    assert code == 200 and "perry:" in logs["logs"]

    # The state file holds the promise.
    state = json.loads((perry_state_dir / "state.json").read_text())
    assert state["workspaces"]["alpha"]["status"] == "running"

    code, _ = await api("DELETE", "workspaces/alpha")
    assert code == 204
    assert (await next_event(events, "workspace.deleted"))["workspace"] == "alpha"
    with pytest.raises(NotFound):
        docker_client.containers.get(f"{TEST_PREFIX}alpha")
    for vol in ("home", "docker"):
        with pytest.raises(NotFound):
            docker_client.volumes.get(f"{TEST_PREFIX}alpha-{vol}")
    code, err = await api("GET", "workspaces/alpha")
    assert code == 404 and err["error"]["code"] == "not_found"
    assert "alpha" not in json.loads((perry_state_dir / "state.json").read_text())["workspaces"]
    events.close()


async def test_ssh_login_with_key_only(api, ssh_key):
    code, ws = await api("POST", "workspaces", {"name": "sshbox"})
    assert code == 201, ws
    base = ["ssh", "-p", str(ws["ports"]["ssh"]), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20"]
    ok = subprocess.run([*base, "-i", str(ssh_key), "workspace@127.0.0.1", "echo $((6*7)); whoami; hostname"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["42", "workspace", "sshbox"]
    # Without the key, and offering passwords, the server refuses: key-only login.
    refused = subprocess.run([*base, "-o", "PreferredAuthentications=password,keyboard-interactive",
                              "-o", "PubkeyAuthentication=no", "workspace@127.0.0.1", "true"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 255
    assert "Permission denied (publickey)" in refused.stderr


NESTED_IMAGE = r"""
set -e
root=$(mktemp -d)
mkdir -p "$root/bin"
cp /bin/dash "$root/bin/sh"
for lib in $(ldd /bin/dash | grep -o '/[^ ]*'); do mkdir -p "$root$(dirname "$lib")"; cp "$lib" "$root$lib"; done
tar -C "$root" -c . | docker import - nested-mini:1 >/dev/null
docker run --rm nested-mini:1 /bin/sh -c 'echo nested-$((40+2))'
"""


async def test_docker_in_docker(api):
    code, ws = await api("POST", "workspaces", {"name": "dind"})
    assert code == 201, ws
    assert ws["dind"] in ("privileged", "capabilities")
    info = await run(api, "dind", "docker", "info", "--format", "{{.ServerVersion}}")
    assert info["exitCode"] == 0 and info["stdout"].strip(), info
    nested = await run(api, "dind", "bash", "-c", NESTED_IMAGE)
    assert nested["exitCode"] == 0, nested
    assert nested["stdout"].strip() == "nested-42"


async def test_inner_docker_works_the_moment_create_returns(api, jp_ws_fetch):
    """Readiness does not wait for the workspace's own Docker engine, yet its first users
    succeed: the `docker` CLI and a client of the socket itself (as an SDK is) wait for it."""
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "early"})
    assert json.loads(await events.read_message())["type"] == "hello"
    code, ws = await api("POST", "workspaces", {"name": "early"})
    assert code == 201, ws
    assert ws["dindStatus"] in ("starting", "ready"), ws
    ping = await run(api, "early", "curl", "-sS", "--unix-socket", "/var/run/docker.sock", "docker/_ping")
    assert ping["exitCode"] == 0 and ping["stdout"] == "OK", ping
    info = await run(api, "early", "docker", "info", "--format", "{{.ServerVersion}}")
    assert info["exitCode"] == 0 and info["stdout"].strip(), info
    # The engine answered, so the workspace says so, in an event or in its state by now.
    if ws["dindStatus"] == "starting":
        while True:
            event = await next_event(events, "workspace.updated")
            if event["data"]["dindStatus"] == "ready":
                break
    code, got = await api("GET", "workspaces/early")
    assert got["dindStatus"] == "ready", got
    # Stopped, nothing runs; started again, the engine starts again.
    code, stopped = await api("POST", "workspaces/early/stop")
    assert code == 200 and stopped["dindStatus"] is None
    code, started = await api("POST", "workspaces/early/start")
    assert code == 200 and started["dindStatus"] in ("starting", "ready"), started
    info = await run(api, "early", "docker", "ps", "--format", "{{.ID}}")
    assert info["exitCode"] == 0, info
    events.close()


class TestAgentCredentials:
    SECRET = "sk-perry-test-0123456789-secret"

    @pytest.fixture
    def perry_config(self, perry_config, tmp_path):
        home = tmp_path / "host-home"
        (home / ".claude").mkdir(parents=True)
        (home / ".claude" / ".credentials.json").write_text(json.dumps({"token": self.SECRET}))
        (home / ".local/share/opencode").mkdir(parents=True)
        (home / ".local/share/opencode/auth.json").write_text(json.dumps({"key": self.SECRET}))
        return {**perry_config, "host_home": str(home)}

    async def test_credentials_land_private_and_never_in_answers_or_logs(self, api, caplog):
        code, ws = await api("POST", "workspaces", {"name": "creds"})
        assert code == 201, ws
        listing = await run(api, "creds", "sh", "-c",
                            "stat -c '%a %U %n' .claude .claude/.credentials.json "
                            ".local/share/opencode/auth.json; cat .claude/.credentials.json")
        lines = listing["stdout"].splitlines()
        assert lines[:3] == ["700 workspace .claude", "600 workspace .claude/.credentials.json",
                             "600 workspace .local/share/opencode/auth.json"]
        assert self.SECRET in lines[3]
        code, synced = await api("POST", "workspaces/creds/sync")
        assert "agent file ~/.claude/.credentials.json" in synced["copied"]
        answers = [synced, ws, (await api("GET", "config"))[1], (await api("GET", "workspaces"))[1],
                   (await api("GET", "info"))[1]]
        assert self.SECRET not in json.dumps(answers)
        assert self.SECRET not in caplog.text


async def test_concurrent_creates_get_one_name_each_and_distinct_ports(api, docker_client, perry_state_dir):
    """Creates race through the thread pool: the state file's lock decides, and nothing is lost."""
    same = await asyncio.gather(*[api("POST", "workspaces", {"name": "racer"}) for _ in range(3)])
    codes = sorted(code for code, _ in same)
    assert codes == [201, 409, 409], same
    others = await asyncio.gather(*[api("POST", "workspaces", {"name": f"pair{i}"}) for i in range(2)])
    assert [code for code, _ in others] == [201, 201], others
    code, listing = await api("GET", "workspaces")
    names = sorted(w["name"] for w in listing["workspaces"])
    assert names == ["pair0", "pair1", "racer"]
    ports = [w["ports"]["ssh"] for w in listing["workspaces"]]
    assert len(set(ports)) == 3 and all(SSH_PORTS[0] <= p <= SSH_PORTS[1] for p in ports)
    state = json.loads((perry_state_dir / "state.json").read_text())
    assert sorted(state["workspaces"]) == names
    assert len(docker_client.containers.list(all=True, filters={"name": f"{TEST_PREFIX}racer"})) == 1
