"""After a crash or changes behind Perry's back, start-up reconciliation makes state and Docker agree."""

from __future__ import annotations

import subprocess
import threading

import pytest
import requests

from perry_jupyter.core.services import Perry
from perry_jupyter.app import PerryApp

from ..conftest import SSH_PORTS, TEST_PREFIX
from .conftest import PERRY, PerryServe, until
from .test_concurrency import ssh, ssh_works
from .test_devcontainer import commit_repo
from .test_lifecycle import make_repo

pytestmark = pytest.mark.engine


@pytest.fixture
def perry(perry_state_dir, perry_config):
    return Perry(perry_state_dir, PerryApp(**perry_config).core_config())


def test_container_removed_behind_perrys_back_is_recreated_on_its_volumes(perry, docker_client):
    perry.workspaces.create("recon")
    perry.workspaces.exec("recon", ["sh", "-c", "echo survived > keep.txt"])
    docker_client.containers.get(f"{TEST_PREFIX}recon").remove(force=True)

    changes = perry.workspaces.reconcile()
    assert changes == ["recon: container missing"]
    ws = perry.workspaces.get("recon")
    assert ws["status"] == "error" and "removed outside Perry" in ws["error"]

    ws = perry.workspaces.start("recon")
    assert ws["status"] == "running" and ws["error"] is None
    assert perry.workspaces.exec("recon", ["cat", "keep.txt"])["stdout"] == "survived\n"
    assert perry.workspaces.reconcile() == []


def test_labelled_container_missing_from_state_is_adopted(perry, docker_client):
    created = perry.workspaces.create("orphan")
    perry.store.remove_workspace("orphan")  # as if the state file were lost

    assert perry.workspaces.reconcile() == ["orphan: adopted a labelled container missing from the state"]
    record = perry.store.get_workspace("orphan")
    assert record["status"] == "running"
    assert record["ports"]["ssh"] == created["ports"]["ssh"]
    assert perry.workspaces.get("orphan")["status"] == "running"


def test_workspace_left_creating_by_a_crash(perry):
    with perry.store.transaction() as data:
        data["workspaces"]["halfway"] = {"name": "halfway", "status": "creating", "created": "2026-01-01T00:00:00+00:00",
                                         "ports": {"ssh": SSH_PORTS[1]}, "env": {}, "clone": None}
    assert perry.workspaces.reconcile() == ["halfway: creation interrupted"]
    ws = perry.workspaces.get("halfway")
    assert ws["status"] == "error" and "interrupted" in ws["error"]
    # The user can finish it: start builds the container on the reserved port.
    ws = perry.workspaces.start("halfway")
    assert ws["status"] == "running" and ws["ports"]["ssh"] == SSH_PORTS[1]
    perry.workspaces.delete("halfway")
    assert perry.store.get_workspace("halfway") is None


def test_lists_cost_no_docker_call_once_the_engine_is_followed(perry):
    perry.workspaces.create("one")
    perry.workspaces.create("two")

    def free() -> bool:
        before = perry.engine.api_calls
        listed = perry.workspaces.list()
        assert [w["name"] for w in listed] == ["one", "two"]
        # (Until their inner engines are up, a wait for each calls Docker in the background.)
        return perry.engine.api_calls == before and all(w["dindStatus"] != "starting" for w in listed)
    until(free, timeout=30, interval=0.1)
    before = perry.engine.api_calls
    for _ in range(10):
        assert [w["name"] for w in perry.workspaces.list()] == ["one", "two"]
    assert perry.engine.api_calls == before


def test_own_network_is_made_even_when_a_longer_named_one_exists(perry, docker_client):
    # The engine's name filter matches substrings; Perry must still make its own network.
    perry.settings.network = "perry-test-net"
    longer = docker_client.networks.create("perry-test-net-other")
    try:
        ws = perry.workspaces.create("netbox")
        container = docker_client.containers.get(f"{TEST_PREFIX}netbox")
        assert ws["status"] == "running"
        assert list(container.attrs["NetworkSettings"]["Networks"]) == ["perry-test-net"]
    finally:
        perry.workspaces.delete("netbox")
        longer.remove()
        for n in docker_client.networks.list(names=["perry-test-net"]):
            if n.name == "perry-test-net":
                n.remove()


@pytest.fixture
def server(tmp_path, ssh_key):
    """A real `perry serve` that also hands workspaces a git config and an agent's settings."""
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Perry Tester\n")
    home = tmp_path / "host-home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text('{"theme": "perry"}')
    serve = PerryServe(tmp_path, ssh_key)
    serve.argv += [f"--PerryApp.git_config={gitconfig}", f"--PerryApp.host_home={home}"]
    yield serve.start()
    serve.stop()


# The project's own set-up (its devcontainer.json) holds the create for a few seconds after the
# clone: the server is killed then, so a restart has a cut-short create to finish.
SLOW_SETUP = '{"postCreateCommand": "sleep 6 && echo set-up > ../setup.txt"}'


def crash_mid_create(server, docker_client, ssh_key, tmp_path):
    """Create with a clone through a real `perry serve`, and kill -9 it once the project is cloned,
    while the project's set-up runs; the workspace's container."""
    repo = commit_repo(tmp_path / "project", {"README.md": "hello\n", ".devcontainer/devcontainer.json": SLOW_SETUP})

    def create():
        try:
            requests.post(f"{server.url}/perry/api/workspaces", json={"name": "crashed", "clone": repo},
                          headers=server.headers, timeout=300)
        except requests.ConnectionError:
            pass  # the server died under it, as planned

    threading.Thread(target=create, daemon=True).start()

    def cloned():
        found = docker_client.containers.list(filters={"name": f"{TEST_PREFIX}crashed", "status": "running"})
        if found and found[0].exec_run(["test", "-f", "/home/workspace/.perry/clone.done"]).exit_code == 0:
            return found[0]
        return None

    container = until(cloned, timeout=120, interval=0.05)
    server.kill()
    done = container.exec_run(["cat", "/home/workspace/setup.txt"])
    assert done.exit_code != 0, "the crash came too late: the project's set-up had ended"
    return container


def get(server, name):
    r = requests.get(f"{server.url}/perry/api/workspaces/{name}", headers=server.headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_create_cut_short_by_a_crash_is_finished_after_the_restart(server, docker_client, ssh_key, tmp_path):
    crash_mid_create(server, docker_client, ssh_key, tmp_path)
    server.start()

    ws = until(lambda: (w := get(server, "crashed"))["status"] != "creating" and w, timeout=180)
    assert ws["status"] == "running", ws
    assert ws["error"] is None
    inside = ssh(ws["ports"]["ssh"], ssh_key, "git config user.name; cat .claude/settings.json; echo; ls project")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.splitlines() == ["Perry Tester", '{"theme": "perry"}', "README.md"]
    assert ws["projectDir"] == "/home/workspace/project"
    # And the restarted server knows it as finished: another restart changes nothing.
    server.stop()
    server.start()
    assert get(server, "crashed")["status"] == "running"
    assert ssh_works(ws["ports"]["ssh"], ssh_key)


def test_create_cut_short_whose_container_stopped_says_how_to_finish_it(server, docker_client, ssh_key,
                                                                          tmp_path):
    container = crash_mid_create(server, docker_client, ssh_key, tmp_path)
    container.stop(timeout=5)  # while Perry is down
    server.start()

    ws = get(server, "crashed")
    assert ws["status"] == "error"
    assert "interrupted" in ws["error"] and "`perry start crashed`" in ws["error"]
    # The command it names, run as the user would, finishes the workspace.
    done = subprocess.run([PERRY, "start", "crashed"], env=server.cli_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    ws = get(server, "crashed")
    assert ws["status"] == "running" and ws["error"] is None
    assert ws["projectDir"] == "/home/workspace/project"
    assert ssh_works(ws["ports"]["ssh"], ssh_key)
