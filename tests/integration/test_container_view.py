"""The workspace list from memory on the real engine: what a user does by hand with `docker` shows in
Perry's list (a real `perry serve`) within seconds, Perry's own changes show in the next list, and the
list is the one asked of Docker every time. (The engine going away and back: test_engines.py.)"""

from __future__ import annotations

import subprocess

import pytest
import requests

from perry_jupyter.app import PerryApp
from perry_jupyter.core.names import LABEL_DIND, LABEL_MANAGED, LABEL_WORKSPACE
from perry_jupyter.core.services import Perry

from ..conftest import IMAGE_TAG, TEST_PREFIX
from .conftest import until

pytestmark = pytest.mark.engine


def listed(server) -> dict[str, str]:
    r = requests.get(f"{server.url}/perry/api/workspaces", headers=server.headers, timeout=30)
    assert r.status_code == 200, r.text
    return {ws["name"]: ws["status"] for ws in r.json()["workspaces"]}


def create(server, name: str) -> None:
    r = requests.post(f"{server.url}/perry/api/workspaces", json={"name": name}, headers=server.headers, timeout=300)
    assert r.status_code == 201, r.text


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True, timeout=120)


def test_changes_made_by_hand_show_in_the_list(server):
    create(server, "byhand")
    assert listed(server) == {"byhand": "running"}
    docker("stop", "-t", "1", f"{TEST_PREFIX}byhand")
    until(lambda: listed(server) == {"byhand": "stopped"}, timeout=30, interval=0.1)
    docker("start", f"{TEST_PREFIX}byhand")
    until(lambda: listed(server) == {"byhand": "running"}, timeout=30, interval=0.1)
    docker("rm", "-f", f"{TEST_PREFIX}byhand")
    until(lambda: listed(server) == {"byhand": "error"}, timeout=30, interval=0.1)


@pytest.fixture
def perry(perry_state_dir, perry_config):
    perry = Perry(perry_state_dir, PerryApp(**perry_config).core_config())
    yield perry
    perry.workspaces.views.close()


def following(perry) -> None:
    """Wait until a list costs no engine call: the view follows the engine."""
    def free() -> bool:
        before = perry.engine.api_calls
        perry.workspaces.list()
        return perry.engine.api_calls == before
    until(free, timeout=30, interval=0.1)


def test_perrys_own_changes_show_in_the_next_list(perry):
    perry.workspaces.create("own")
    following(perry)
    perry.workspaces.stop("own")
    assert [ws["status"] for ws in perry.workspaces.list()] == ["stopped"]
    perry.workspaces.start("own")
    assert [ws["status"] for ws in perry.workspaces.list()] == ["running"]
    perry.workspaces.delete("own")
    assert perry.workspaces.list() == []


def test_the_list_from_memory_is_the_one_docker_gives(perry, perry_state_dir, perry_config):
    for name in ("up", "down", "gone"):
        perry.workspaces.create(name)
    perry.workspaces.stop("down")
    docker("rm", "-f", f"{TEST_PREFIX}gone")
    docker("stop", "-t", "1", f"{TEST_PREFIX}up")
    docker("start", f"{TEST_PREFIX}up")
    asked_every_time = Perry(perry_state_dir, PerryApp(**perry_config).core_config())
    asked_every_time.workspaces.views.close()  # never follows: every list asks Docker
    following(perry)
    # (Its dindStatus too: "up" restarted behind Perry's back has an inner engine neither server knows of.)
    until(lambda: perry.workspaces.list() == asked_every_time.workspaces.list(), timeout=30, interval=0.1)
    shown = {ws["name"]: ws["status"] for ws in perry.workspaces.list()}
    assert shown == {"up": "running", "down": "stopped", "gone": "error"}


def test_an_unchanged_list_is_not_sent_again_and_a_change_by_hand_is(server):
    url = f"{server.url}/perry/api/workspaces"
    first = requests.get(url, headers=server.headers, timeout=30)
    assert first.status_code == 200 and first.json() == {"workspaces": []}
    etag = first.headers["Etag"]
    assert requests.get(url, headers=server.headers, timeout=30).headers["Etag"] == etag
    again = requests.get(url, headers={**server.headers, "If-None-Match": etag}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    # A workspace's container made with `docker` (never started): the list shows it, with a new ETag.
    labels = {LABEL_MANAGED: "true", LABEL_WORKSPACE: "made", LABEL_DIND: "off"}
    docker("create", "--name", f"{TEST_PREFIX}made", *[f"--label={k}={v}" for k, v in labels.items()],
           "--entrypoint", "sleep", IMAGE_TAG, "infinity")

    def changed():
        r = requests.get(url, headers={**server.headers, "If-None-Match": etag}, timeout=30)
        return r if r.status_code == 200 else None

    r = until(changed, timeout=30, interval=0.1)
    assert [(ws["name"], ws["status"]) for ws in r.json()["workspaces"]] == [("made", "stopped")]
    assert r.headers["Etag"] != etag
