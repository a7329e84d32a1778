"""The Docker engine connection: one lazily made client and error translation.

Every Docker call in Perry blocks; callers in the server run them on an
executor. This module turns "cannot reach the engine" into a 503 that names
the engine's address, wherever it happens.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator

import docker
import requests
from docker.errors import APIError, DockerException

from .errors import EngineUnavailable, PerryError

DEFAULT_ADDRESS = "unix:///var/run/docker.sock"


class Engine:
    def __init__(self, base_url: str | None = None, timeout: int = 120):
        self.base_url = base_url or None
        self.timeout = timeout
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self.api_calls = 0  # counted for benchmarks and tests

    @property
    def address(self) -> str:
        return self.base_url or os.environ.get("DOCKER_HOST") or DEFAULT_ADDRESS

    @property
    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> docker.DockerClient:
        try:
            if self.base_url:
                client = docker.DockerClient(base_url=self.base_url, version="auto", timeout=self.timeout)
            else:
                client = docker.from_env(timeout=self.timeout)
        except DockerException as e:
            raise self.unavailable(e) from None
        client.api.hooks["response"].append(self._count)
        return client

    def _count(self, response, *args, **kwargs):
        self.api_calls += 1
        return response

    def unavailable(self, cause: object) -> EngineUnavailable:
        return EngineUnavailable(
            f"the Docker engine at {self.address} is not reachable ({_short(cause)}); "
            "start it (e.g. `dockerd &` as root) or set PerryApp.docker_host / DOCKER_HOST"
        )

    @contextlib.contextmanager
    def errors(self, what: str = "Docker") -> Iterator[None]:
        """Translate Docker SDK failures inside the block into Perry errors."""
        try:
            yield
        except PerryError:
            raise
        except (requests.exceptions.ConnectionError, ConnectionError) as e:
            self._forget_client()
            raise self.unavailable(e) from None
        except APIError as e:
            raise PerryError(f"{what} failed: {e.explanation or e}", code="docker_error", status=502) from None
        except DockerException as e:
            if "Connection" in str(e) or "connect" in str(e):
                self._forget_client()
                raise self.unavailable(e) from None
            raise PerryError(f"{what} failed: {e}", code="docker_error", status=502) from None

    def _forget_client(self) -> None:
        # After the engine comes back, the next call connects afresh.
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
            self._client = None

    def ping(self) -> dict:
        """Engine facts for `info` and `doctor`; never raises."""
        try:
            with self.errors("ping"):
                version = self.client.version()
            return {"reachable": True, "address": self.address, "version": version.get("Version"),
                    "apiVersion": version.get("ApiVersion")}
        except PerryError as e:
            return {"reachable": False, "address": self.address, "error": e.message}


def _short(cause: object) -> str:
    text = str(cause)
    # requests' connection errors nest three layers of reprs; the innermost reason is enough.
    for marker in ("Errno", "No such file", "Connection refused"):
        idx = text.find(marker)
        if idx >= 0:
            text = text[idx:]
            break
    return text.strip("()'\" ")[:200]


# A terminal needs a pty on this side, which terminado gives a process, not an SDK call: terminals
# run the Docker CLI, against the engine the SDK talks to (``docker_host``, else DOCKER_HOST).

def terminal_command(container: str, argv: list[str], *, docker_host: str | None, user: str, workdir: str,
                     env: dict[str, str], docker_cli: str = "docker") -> list[str]:
    """The `docker exec -it` command line running ``argv`` in ``container`` on a terminal."""
    return [docker_cli, *(["-H", docker_host] if docker_host else []), "exec", "-it", "-u", user, "-w", workdir,
            *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")), container, *argv]


def container_running_command(container: str, *, docker_host: str | None, docker_cli: str = "docker") -> list[str]:
    """A command line that prints ``true`` while ``container`` runs, ``false`` while it is stopped,
    and fails when there is no such container: for a process that must not import the SDK."""
    return [docker_cli, *(["-H", docker_host] if docker_host else []), "inspect", "-f", "{{.State.Running}}",
            container]
