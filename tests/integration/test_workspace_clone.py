"""Cloning a workspace (not a git clone: that is test_clone.py): a new workspace with copies of another's
home and Docker volumes and an SSH port of its own, on the real engine; the source goes on running,
unchanged."""

from __future__ import annotations

import contextlib
import subprocess
import threading

import pytest
import requests

from ..conftest import TEST_PREFIX
from .conftest import PERRY, until
from .test_move import INNER_IMAGE, READ_INNER, events, exec_in

pytestmark = pytest.mark.engine


async def test_a_clone_carries_the_home_and_the_inner_images_and_leaves_the_source_running(api):
    code, src = await api("POST", "workspaces", {"name": "src"})
    assert code == 201, src
    await exec_in(api, "src", "echo 'from the source' > ~/note.txt; " + INNER_IMAGE)

    code, body = await api("POST", "workspaces/src/clone", {"name": "twin"})
    assert code == 200, body
    progress = events(body)
    assert progress[-1]["stage"] == "done", progress
    assert any(e.get("message") == "pausing src while its volumes are copied" for e in progress), progress
    twin = progress[-1]["workspace"]
    assert (twin["name"], twin["status"]) == ("twin", "running"), twin
    assert twin["ports"]["ssh"] != src["ports"]["ssh"] and twin["sshCommand"].startswith(
        f"ssh -p {twin['ports']['ssh']} "), twin

    assert await exec_in(api, "twin", "hostname; cat ~/note.txt") == "twin\nfrom the source\n"
    assert await exec_in(api, "twin", READ_INNER) == "tiny:1\ntiny:tagged\ninner\n"

    # The source: the same container, port and files, running; and the two homes are apart.
    code, after = await api("GET", "workspaces/src")
    assert (after["status"], after["containerId"], after["ports"]) == ("running", src["containerId"], src["ports"])
    await exec_in(api, "twin", "echo 'only in the twin' > ~/note.txt")
    assert await exec_in(api, "src", "cat ~/note.txt; " + READ_INNER) == \
        "from the source\ntiny:1\ntiny:tagged\ninner\n"

    # Refused with nothing changed: a taken name, a bad one, an unknown source, an unknown field.
    for path, body, status, words in (("src", {"name": "twin"}, 409, "already exists"),
                                      ("src", {"name": "src"}, 409, "already exists"),
                                      ("src", {"name": "Bad_Name"}, 400, "invalid workspace name"),
                                      ("src", {}, 400, "name is required"),
                                      ("ghost", {"name": "other"}, 404, "ghost"),
                                      ("src", {"name": "other", "engine": "x"}, 400, "unknown field")):
        code, error = await api("POST", f"workspaces/{path}/clone", body)
        assert code == status and words in error["error"]["message"], (path, body, error)
    code, listing = await api("GET", "workspaces")
    assert sorted(w["name"] for w in listing["workspaces"]) == ["src", "twin"]


def test_perry_clone_on_the_command_line(served):
    def perry(*args):
        r = subprocess.run([PERRY, *args], env=served, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"perry {' '.join(args)}: {r.stdout}\n{r.stderr}"
        return r.stdout

    perry("create", "original")
    perry("exec", "original", "--", "sh", "-c", "echo carried > f.txt")
    assert "Cloned workspace copy" in perry("clone", "original", "copy")
    assert perry("exec", "copy", "--", "cat", "f.txt") == "carried\n"
    r = subprocess.run([PERRY, "clone", "original", "copy"], env=served, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "error: workspace 'copy' already exists" in r.stderr, r
    # `perry move` says what is wrong in one line (a move itself: test_move.py, between two engines).
    r = subprocess.run([PERRY, "move", "copy", "--to", "nowhere"], env=served, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "error: there is no engine 'nowhere'" in r.stderr, r


def test_a_clone_cut_short_by_a_killed_server_is_removed_and_its_source_runs_on(server, docker_client):
    url, headers = f"{server.url}/perry/api", server.headers
    r = requests.post(f"{url}/workspaces", json={"name": "big"}, headers=headers, timeout=300)
    assert r.status_code == 201, r.text
    r = requests.post(f"{url}/workspaces/big/exec", headers=headers, timeout=300, json={"command": [
        "sh", "-c", "echo 'still here' > note.txt; head -c 600000000 /dev/urandom > big"]})
    assert r.status_code == 200 and r.json()["exitCode"] == 0, r.text

    def clone_until_the_server_dies():
        with contextlib.suppress(requests.RequestException):
            requests.post(f"{url}/workspaces/big/clone", json={"name": "half"}, headers=headers, timeout=300)

    cloning = threading.Thread(target=clone_until_the_server_dies, daemon=True)
    cloning.start()
    until(lambda: docker_client.containers.list(filters={"name": f"{TEST_PREFIX}half.copy"}), timeout=120)
    assert docker_client.containers.get(f"{TEST_PREFIX}big").status == "paused"
    server.kill()
    server.start()

    # The half-made clone is gone, every piece of it; the source runs again (unpaused), whole.
    r = requests.get(f"{url}/workspaces", headers=headers, timeout=60)
    assert [(w["name"], w["status"]) for w in r.json()["workspaces"]] == [("big", "running")], r.text
    assert [c.name for c in docker_client.containers.list(all=True, filters={"name": f"{TEST_PREFIX}half"})] == []
    assert [v.name for v in docker_client.volumes.list(filters={"name": f"{TEST_PREFIX}half"})] == []
    r = requests.post(f"{url}/workspaces/big/exec", json={"command": ["cat", "note.txt"]}, headers=headers, timeout=60)
    assert r.status_code == 200 and r.json()["stdout"] == "still here\n", r.text
