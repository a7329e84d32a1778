from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

import pytest
from traitlets.config import Config

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from ..conftest import IMAGE_TAG, SSH_PORTS, TEST_PREFIX, remove_test_objects

PERRY = str(Path(sys.executable).parent / "perry")


def until(check, timeout: float = 120, interval: float = 0.25):
    """Poll ``check`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out"
        time.sleep(interval)


async def until_async(check, timeout: float = 120, interval: float = 0.2):
    """``until`` for async tests: ``check`` may return a value or an awaitable."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(interval)


async def next_event(ws, predicate, timeout: float = 60):
    """The next event on an events WebSocket that ``predicate`` accepts, and when it came."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        msg = await asyncio.wait_for(ws.read_message(), deadline - loop.time())
        assert msg is not None, "events socket closed"
        event = json.loads(msg)
        if predicate(event):
            return event, time.time()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



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


class PerryServe:
    """A real `perry serve` subprocess with its own state directory, which can be killed and restarted."""

    def __init__(self, tmp_path, ssh_key):
        self.dir = tmp_path
        self.port = free_port()
        self.env = {**os.environ, "PERRY_CONFIG_DIR": str(tmp_path / "perry"), "NO_COLOR": "1", "COLUMNS": "200"}
        self.env.pop("PERRY_URL", None)
        self.env.pop("PERRY_TOKEN", None)
        self.argv = [PERRY, "serve", f"--port={self.port}", f"--PerryApp.workspace_prefix={TEST_PREFIX}",
                     f"--PerryApp.image_tag={IMAGE_TAG}", "--PerryApp.network=perry-test",
                     f"--PerryApp.ssh_port_range={SSH_PORTS[0]}", f"--PerryApp.ssh_port_range={SSH_PORTS[1]}",
                     f"--PerryApp.ssh_public_keys={ssh_key}.pub"]
        self.proc = None
        self.log = tmp_path / "serve.log"
        self.token_file = tmp_path / "perry" / "token"

    def start(self):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            if self.token_file.exists():
                try:
                    r = requests.get(f"{self.url}/perry/api/info", headers=self.headers, timeout=5)
                    if r.status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.2)
        return self

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self):
        return {"Authorization": f"token {self.token_file.read_text().strip()}"}

    def cli_env(self):
        return {**self.env, "PERRY_URL": self.url}

    def kill(self):
        """As a crash would: no shutdown hooks."""
        self.proc.kill()
        self.proc.wait(30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def server(tmp_path, ssh_key):
    serve = PerryServe(tmp_path, ssh_key).start()
    yield serve
    serve.stop()
    assert serve.token_file.read_text().strip() not in serve.log.read_text(), "the token leaked into the server log"


@pytest.fixture
def served(server):
    """The CLI's environment for a running `perry serve`."""
    return server.cli_env()
