"""The workspace image with a real Docker engine: build (or reuse), cache, and a workspace
container that runs SSH and its own Docker engine.

The first run builds the image (bootstrapping a Debian base where nothing can be pulled,
about 1-2 minutes); later runs reuse it through the context-hash label.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import docker
import pytest

from perry_jupyter.core.engine import Engine
from perry_jupyter.core.image import BASE_LABEL, HASH_LABEL, ImageBuilder
from perry_jupyter.core.workspaces import DIND_CAPABILITIES, DIND_SECURITY_OPT

from ..conftest import IMAGE_TAG

pytestmark = pytest.mark.engine

WORKER_DIR = Path(__file__).resolve().parents[2] / "perry_worker"

# Docker-in-Docker without --privileged, exactly as WorkspaceManager falls back to it.
CAPS_FALLBACK = {"cap_add": DIND_CAPABILITIES, "security_opt": DIND_SECURITY_OPT, "cgroupns": "host"}


@pytest.fixture(scope="module")
def client(docker_client):
    """The session's engine client (it fails, rather than skips, when no engine answers)."""
    return docker_client


@pytest.fixture(scope="module")
def built(client):
    """The workspace image, built once for the module (or found up to date)."""
    builder = ImageBuilder(Engine(), IMAGE_TAG)
    events = []
    started = time.monotonic()
    status = builder.build(progress=events.append)
    print(f"image build/reuse took {time.monotonic() - started:.1f}s, {len(events)} events")
    return builder, status, events


def test_build_gives_an_up_to_date_labelled_image(client, built):
    builder, status, events = built
    assert status["present"] and status["upToDate"]
    image = client.images.get(builder.tag)
    assert image.labels[HASH_LABEL] == status["hash"] == builder.context_hash()
    assert image.labels["perry.image"] == "workspace"
    assert image.labels[BASE_LABEL] in (
        f"bootstrap:{builder.bootstrap_tag}", f"image:{builder.base_image}"
    )
    stages = [e["stage"] for e in events]
    assert stages[0] == "check"
    if "build" in stages:  # built now rather than reused: progress was reported
        assert stages[-1] == "done"
        steps = [e for e in events if "step" in e]
        assert steps and steps[-1]["step"] == steps[-1]["steps"]


def test_second_build_comes_from_cache(client, built):
    builder, status, _ = built
    events = []
    again = ImageBuilder(Engine(), IMAGE_TAG).build(progress=events.append)
    assert again["upToDate"] is True
    assert again["id"] == status["id"]
    assert [e["stage"] for e in events] == ["check"]
    assert builder.status()["upToDate"] is True


def worker_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(
            WORKER_DIR,
            arcname="perry_worker",
            filter=lambda info: None if "__pycache__" in info.name else info,
        )
    return buf.getvalue()


def run_workspace(client, image: str, name: str, volumes: dict, environment: dict):
    """Start a workspace the way Perry does: privileged, or the capability fallback when
    the host refuses that ("unable to apply caps")."""
    common = dict(
        name=name, hostname=name, detach=True, environment=environment,
        labels={"perry.test": "image"},
    )
    try:
        return client.containers.run(image, privileged=True, volumes=volumes, **common), True
    except docker.errors.APIError as e:
        if "unable to apply caps" not in str(e):
            raise
        client.containers.get(name).remove(force=True)
    fallback_volumes = dict(volumes)
    fallback_volumes["/sys/fs/cgroup"] = {"bind": "/sys/fs/cgroup", "mode": "rw"}
    return client.containers.run(image, volumes=fallback_volumes, **CAPS_FALLBACK, **common), False


def sh(container, script: str, user: str = "root") -> tuple[int, str]:
    rc, out = container.exec_run(["bash", "-c", script], user=user, demux=False)
    return rc, (out or b"").decode(errors="replace")


@pytest.fixture
def workspace(client, built, tmp_path):
    builder, _, _ = built
    name = f"perry-imgtest-{uuid.uuid4().hex[:8]}"
    volumes = {
        f"{name}-home": {"bind": "/home/workspace", "mode": "rw"},
        f"{name}-docker": {"bind": "/var/lib/docker", "mode": "rw"},
    }
    environment = {}
    repo = None
    if shutil.which("git"):
        repo = tmp_path / "demo-repo"
        repo.mkdir()
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        (repo / "README").write_text("hello from the host\n")
        subprocess.run(git + ["add", "README"], check=True)
        subprocess.run(git + ["commit", "-qm", "init"], check=True)
        volumes[str(repo)] = {"bind": "/perry/clone-src", "mode": "ro"}
        # No PERRY_CLONE_NAME: the clone is named after the host folder.
        environment.update(PERRY_CLONE_URL="/perry/clone-src")
    container = None
    try:
        container, privileged = run_workspace(client, builder.tag, name, volumes, environment)
        container.put_archive("/opt/perry", worker_tar())
        yield container, privileged, repo
    finally:
        if container is not None:
            container.remove(force=True)
        else:
            try:
                client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        for vol in (f"{name}-home", f"{name}-docker"):
            try:
                client.volumes.get(vol).remove(force=True)
            except docker.errors.NotFound:
                pass


def test_workspace_container(client, workspace):
    container, privileged, repo = workspace
    print("privileged" if privileged else "capability fallback")

    rc, out = sh(container, "perry-worker health --wait 60 --json")
    report = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and report["ok"], (out, container.logs().decode(errors="replace"))
    assert report["sshd"] and report["ready"] and report["dind"] in ("starting", "ready")
    # Ready does not wait for the inner engine; --dind does.
    rc, out = sh(container, "perry-worker health --wait 60 --dind --json")
    report = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and report["dind"] == "ready" and report["docker"], out
    rc, out = sh(container, "perry-worker --version")
    assert rc == 0 and out.strip() == "0.1.0"

    # The user: passwordless sudo, the docker group, a seeded home that is theirs.
    rc, out = sh(container, "sudo -n true && id -nG && stat -c %U /home/workspace && "
                 "test -f ~/.bashrc && echo home-ok", user="workspace")
    assert rc == 0, out
    assert "docker" in out.split() and "workspace" in out and "home-ok" in out

    # sshd: keys only, host keys made in this container.
    rc, out = sh(container, "sshd -T")
    assert rc == 0, out
    settings = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["permitrootlogin"] == "no"
    assert settings["pubkeyauthentication"] == "yes"
    rc, out = sh(container, "ls /etc/ssh/ssh_host_ed25519_key")
    assert rc == 0, out

    # The inner engine, and a container inside it (a tiny image imported from a few files:
    # the inner engine cannot pull either).
    rc, out = sh(container, "docker info --format '{{.Driver}} {{.ServerVersion}}'",
                 user="workspace")
    assert rc == 0, out
    print("inner docker:", out.strip())
    rc, out = sh(
        container,
        "set -e; tar -ch -C / usr/bin/dash lib/x86_64-linux-gnu/libc.so.6 "
        "lib64/ld-linux-x86-64.so.2 2>/dev/null | docker import - perry-tiny:test >/dev/null; "
        "docker run --rm perry-tiny:test /usr/bin/dash -c 'echo nested $((6*7))'",
        user="workspace",
    )
    assert rc == 0 and "nested 42" in out, out

    if repo is not None:
        rc, out = sh(container, "for i in $(seq 100); do test -e ~/.perry/clone.done && break; "
                     "sleep 0.1; done; cat ~/demo-repo/README; cat ~/.perry/clone.log",
                     user="workspace")
        assert "hello from the host" in out, out

    logs = container.logs().decode(errors="replace")
    assert "perry: ready" in logs

    # docker stop: the entrypoint forwards SIGTERM and exits by itself (status 0, not the
    # SIGKILL that comes after the timeout).
    container.stop(timeout=10)
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0, container.logs().decode(errors="replace")
    assert "perry: stopped" in container.logs().decode(errors="replace")


def test_workspace_without_dind(client, built):
    builder, _, _ = built
    name = f"perry-imgtest-{uuid.uuid4().hex[:8]}"
    container = client.containers.run(
        builder.tag, name=name, detach=True, environment={"PERRY_DIND": "0"},
        labels={"perry.test": "image"},
    )
    try:
        container.put_archive("/opt/perry", worker_tar())
        rc, out = sh(container, "perry-worker health --wait 30 --json")
        report = json.loads(out.strip().splitlines()[-1])
        assert rc == 0 and report["ok"] and report["docker"] is None and report["dind"] == "off", out
        assert "Docker-in-Docker disabled" in container.logs().decode(errors="replace")
    finally:
        container.remove(force=True, v=True)
