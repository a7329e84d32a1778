"""Shared test fixtures: a real Docker engine, the real workspace image, an SSH key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

# Everything Perry makes in tests carries this prefix, so cleanup never touches a user's workspaces.
TEST_PREFIX = os.environ.get("PERRY_TEST_PREFIX", "perry-test-")
IMAGE_TAG = os.environ.get("PERRY_TEST_IMAGE", "perry-workspace:latest")
# Parallel runs on one engine each set their own prefix and port range (e.g. "2600-2699").
SSH_PORTS = tuple(int(p) for p in os.environ.get("PERRY_TEST_SSH_PORTS", "2500-2599").split("-"))


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as e:  # the engine is part of the test environment: say so, do not skip
        pytest.fail(f"no Docker engine reachable ({e}); `.ci/run` installs and starts one", pytrace=False)
    return client


@pytest.fixture(scope="session")
def workspace_image(docker_client):
    """The real workspace image, built once (the builder's cache makes later runs instant)."""
    from perry_jupyter.core.engine import Engine
    from perry_jupyter.core.image import ImageBuilder

    status = ImageBuilder(Engine(), IMAGE_TAG).build(
        progress=lambda e: e.get("stage") != "build" and print("image:", e.get("message", "")[:200])
    )
    assert status["present"] and status["upToDate"]
    return IMAGE_TAG


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory) -> Path:
    """A fresh ed25519 key pair; returns the private key path (``.pub`` beside it)."""
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def remove_test_objects(client) -> None:
    from docker.errors import NotFound

    # Filtered by name on the engine's side too: listing every managed container would inspect
    # other prefixes' containers, which another test run may remove meanwhile.
    for c in client.containers.list(all=True, filters={"label": "perry.managed=true", "name": TEST_PREFIX}):
        if c.name.startswith(TEST_PREFIX):
            try:
                c.remove(force=True)
            except NotFound:
                pass  # removed meanwhile (by the test itself, or auto-removed)
    for v in client.volumes.list(filters={"label": "perry.managed=true"}):
        if v.name.startswith(TEST_PREFIX):
            try:
                v.remove(force=True)
            except NotFound:
                pass
