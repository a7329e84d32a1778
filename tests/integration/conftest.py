from __future__ import annotations

import json
from typing import Any

import pytest
from traitlets.config import Config

from ..conftest import IMAGE_TAG, SSH_PORTS, TEST_PREFIX, remove_test_objects



@pytest.fixture
def perry_state_dir(tmp_path):
    return tmp_path / "perry-state"


@pytest.fixture
def perry_config(perry_state_dir, ssh_key, tmp_path) -> dict[str, Any]:
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Perry Tester\n\temail = tester@example.invalid\n")
    return {
        "state_dir": str(perry_state_dir),
        "workspace_prefix": TEST_PREFIX,
        "image_tag": IMAGE_TAG,
        "ssh_port_range": list(SSH_PORTS),
        "ssh_public_keys": [str(ssh_key) + ".pub"],
        "git_config": str(gitconfig),
        "network": "perry-test",
    }


@pytest.fixture
def jp_server_config(perry_config):
    return Config({
        "ServerApp": {"jpserver_extensions": {"perry_jupyter": True}},
        "PerryApp": perry_config,
    })


@pytest.fixture(autouse=True)
def _engine_and_image(request):
    """Tests marked `engine` get the built image and a clean slate of test containers."""
    if request.node.get_closest_marker("engine") is None:
        yield
        return
    client = request.getfixturevalue("docker_client")
    request.getfixturevalue("workspace_image")
    remove_test_objects(client)
    yield
    remove_test_objects(client)


class Api:
    """Calls Perry's REST API on the pytest-jupyter server, returning (status, json)."""

    def __init__(self, fetch):
        self._fetch = fetch

    async def __call__(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                       headers: dict | None = None, params: dict | None = None):
        kwargs: dict[str, Any] = {"method": method, "raise_error": False, "request_timeout": 600,
                                  "headers": headers, "params": params}
        if raw is not None:
            kwargs["body"] = raw
        elif body is not None or method in ("POST", "PATCH", "PUT"):
            kwargs["body"] = json.dumps(body if body is not None else {})
        r = await self._fetch("perry", "api", *[p for p in path.split("/") if p], **kwargs)
        data = json.loads(r.body) if r.body and r.headers.get("Content-Type", "").startswith("application/json") else r.body
        return r.code, data


@pytest.fixture
def api(jp_fetch) -> Api:
    return Api(jp_fetch)
