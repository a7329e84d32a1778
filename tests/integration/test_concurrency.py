"""Overlapping lifecycle requests on one workspace, against a real `perry serve`: one runs, the
other is refused at once with 409 `busy`, and the workspace ends in a state that holds."""

from __future__ import annotations

import io
import subprocess
import tarfile
import threading
import time

import pytest
import requests

from ..conftest import TEST_PREFIX
from .test_devcontainer import commit_repo

pytestmark = pytest.mark.engine


class Rest:
    def __init__(self, server):
        self.server = server

    def __call__(self, method: str, path: str, body=None):
        r = requests.request(method, f"{self.server.url}/perry/api/{path}", json=body,
                             headers=self.server.headers, timeout=600)
        return r.status_code, (r.json() if r.content else None)

    def in_background(self, method: str, path: str, body=None) -> dict:
        """Send a request from a thread; the dict gets its answer and when it came."""
        out: dict = {}

        def send():
            out["answer"] = self(method, path, body)
            out["at"] = time.monotonic()

        out["thread"] = threading.Thread(target=send)
        out["thread"].start()
        return out


@pytest.fixture
def rest(server):
    return Rest(server)


def ssh(port: int, key, command: str) -> subprocess.CompletedProcess:
    """``command`` over real SSH into a workspace, logging in with ``key`` only."""
    return subprocess.run(["ssh", "-p", str(port), "-i", str(key), "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
                           "workspace@127.0.0.1", command], capture_output=True, text=True, timeout=60)


def ssh_works(port: int, key) -> bool:
    r = ssh(port, key, "echo ok")
    return r.returncode == 0 and r.stdout.strip() == "ok"


def slow_sshd(container, seconds: int) -> None:
    """Make a stopped workspace's sshd come up ``seconds`` late, so its next start (which waits for
    sshd) stays in progress long enough to be raced, on a quiet machine too."""
    stream, _ = container.get_archive("/usr/sbin/sshd")
    original = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
    member = original.getmembers()[0]
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as tar:
        binary = original.extractfile(member)
        member.name = "sshd.real"
        tar.addfile(member, binary)
        script = f'#!/bin/sh\nsleep {seconds}\nexec /usr/sbin/sshd.real "$@"\n'.encode()
        wrapper = tarfile.TarInfo("sshd")
        wrapper.size, wrapper.mode = len(script), 0o755
        tar.addfile(wrapper, io.BytesIO(script))
    container.put_archive("/usr/sbin", packed.getvalue())


def test_stop_while_starting_is_refused_at_once_and_the_start_finishes(rest, docker_client, ssh_key):
    code, ws = rest("POST", "workspaces", {"name": "racing"})
    assert code == 201, ws
    code, ws = rest("POST", "workspaces/racing/stop")
    assert code == 200 and ws["status"] == "stopped"
    slow_sshd(docker_client.containers.get(f"{TEST_PREFIX}racing"), seconds=3)

    start = rest.in_background("POST", "workspaces/racing/start")
    time.sleep(0.8)
    # A stop, and anything else that would change the workspace, sent together while it starts
    # (one after another, a fast start could finish between them and rightly let the last one in).
    asked = time.monotonic()
    others = [rest.in_background(method, path) for method, path in
              [("POST", "workspaces/racing/stop"), ("POST", "workspaces/racing/sync"), ("DELETE", "workspaces/racing")]]
    for other in others:
        other["thread"].join(60)
    assert start.get("answer") is None or start["at"] > max(o["at"] for o in others), "the start ended too soon"
    for other in others:
        code, refused = other["answer"]
        assert (code, refused["error"]["code"]) == (409, "busy"), refused
        assert refused["error"]["message"].startswith("workspace 'racing' is busy: start in progress")
        assert other["at"] - asked < 0.5, f"the refusal took {other['at'] - asked:.2f}s"

    start["thread"].join(120)
    code, started = start["answer"]
    assert code == 200, started
    assert started["status"] == "running"
    assert docker_client.containers.get(f"{TEST_PREFIX}racing").status == "running"
    assert ssh_works(started["ports"]["ssh"], ssh_key)
    # Once it is done, the workspace takes the next operation.
    code, stopped = rest("POST", "workspaces/racing/stop")
    assert code == 200 and stopped["status"] == "stopped"


def test_delete_while_creating_is_refused_and_changes_nothing(rest, docker_client, ssh_key, tmp_path):
    # A create is ready in well under a second now: a project whose set-up takes a few seconds
    # keeps it in progress long enough to be raced, on a quiet machine too.
    repo = commit_repo(tmp_path / "slow", {".devcontainer/devcontainer.json": '{"postCreateCommand": "sleep 4"}'})
    create = rest.in_background("POST", "workspaces", {"name": "growing", "clone": repo})
    time.sleep(0.8)
    code, refused = rest("DELETE", "workspaces/growing")
    assert code == 409, refused
    assert refused["error"] == {"code": "busy", "message": refused["error"]["message"]}
    assert refused["error"]["message"].startswith("workspace 'growing' is busy: create in progress")
    code, refused = rest("POST", "workspaces/growing/start")
    assert (code, refused["error"]["code"]) == (409, "busy"), refused

    create["thread"].join(180)
    code, ws = create["answer"]
    assert code == 201, ws
    assert ws["status"] == "running"
    assert ssh_works(ws["ports"]["ssh"], ssh_key)
    code, listing = rest("GET", "workspaces")
    assert [(w["name"], w["status"]) for w in listing["workspaces"]] == [("growing", "running")]
