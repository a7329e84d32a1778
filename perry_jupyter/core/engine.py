"""The Docker gateway: the only module that talks to the Docker engine.

Everything else in Perry asks this module for containers, volumes, networks, images,
execs and archives, and gets plain data back (dicts, lists, bytes, str): no Docker SDK
object and no Docker exception leaves it. That keeps the interface small enough for
the in-memory engine of the unit tests (tests/fake_engine.py) and, later, for other
backends.

Every call blocks; callers in the server run them on an executor. Failures become
Perry errors in one place: "cannot reach the engine" is a 503 that names the engine's
address, wherever it happens; any other refusal is a `DockerError` whose message starts
with what Perry was doing (the innermost ``with engine.errors(what)`` around the call).
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from urllib.parse import urlsplit, urlunsplit
from typing import IO, Any, Callable, Iterable, Iterator, Mapping

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound
from docker.errors import NotFound as DockerNotFound
from docker.utils.socket import frames_iter

from .errors import EngineUnavailable, PerryError

DEFAULT_ADDRESS = "unix:///var/run/docker.sock"
# The container events that change what a list of containers says (state, name, ports, presence).
CONTAINER_CHANGES = ("create", "start", "die", "destroy", "pause", "unpause", "rename", "update")


class DockerError(PerryError):
    """The engine refused a request; ``detail`` is the engine's own words."""

    code = "docker_error"
    status = 502

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail


class CapabilitiesRefused(DockerError):
    """Starting a privileged container failed: this host's capability bounding set is short."""


class PortTaken(DockerError):
    """Starting a container failed: a host port it publishes is taken."""


class Doing:
    """What each thread is doing, for the messages of the errors it meets: the innermost label wins."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextlib.contextmanager
    def label(self, what: str) -> Iterator[None]:
        stack = self._stack()
        stack.append(what)
        try:
            yield
        finally:
            stack.pop()

    def current(self, default: str) -> str:
        stack = self._stack()
        return stack[-1] if stack else default

    def _stack(self) -> list[str]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack


class Engine:
    def __init__(self, base_url: str | None = None, timeout: int = 120, *, name: str | None = None,
                 tls: Mapping[str, str] | None = None, ssh_options: list[str] | None = None):
        """``name``: the engine's name among several (in its errors); ``tls``: {ca, cert, key} file
        paths for a ``tcp://`` address; ``ssh_options``: `ssh -o` options for an ``ssh://`` one."""
        self.base_url = base_url or None
        self.timeout = timeout
        self.name = name
        self.tls = dict(tls) if tls else None
        self.ssh_options = list(ssh_options or [])
        self.ssh_log: str | None = None  # where ssh's own messages go (a host key that changed...)
        self.cli_dir: str | None = None  # where cli() writes the `ssh` the Docker CLI is to run
        self._cli_tmp: str | None = None  # its folder when there is no cli_dir
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self.doing = Doing()  # see errors()
        self.api_calls = 0  # counted for benchmarks and tests
        # Called with the container (name or id) each create, start, stop, pause, unpause, update or
        # remove was asked about, once the call returns or fails: Perry's views of the containers
        # (core/container_view.py) learn of Perry's own changes without waiting for Docker's event.
        self.watchers: list[Callable[[str], None]] = []

    @property
    def address(self) -> str:
        """Where the engine is, without credentials (fit for answers and logs)."""
        return redact_address(self.base_url or os.environ.get("DOCKER_HOST") or DEFAULT_ADDRESS)

    @property
    def local(self) -> bool:
        """Whether the engine runs on this machine (a unix socket), so its containers' network
        addresses are reachable from here."""
        return self.address.startswith("unix://")

    # ------------------------------------------------------------ connection

    def _api(self) -> docker.APIClient:
        return self._sdk().api

    def _sdk(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> docker.DockerClient:
        try:
            if self.base_url and self.base_url.startswith("ssh://"):
                client = self._ssh_client()
            elif self.base_url:
                tls = None
                if self.tls:
                    cert = (self.tls["cert"], self.tls["key"]) if self.tls.get("cert") else None
                    tls = docker.tls.TLSConfig(client_cert=cert, ca_cert=self.tls.get("ca"),
                                               verify=self.tls.get("ca") or True)
                client = docker.DockerClient(base_url=self.base_url, version="auto", timeout=self.timeout, tls=tls)
            else:
                client = docker.from_env(timeout=self.timeout)
        except DockerException as e:
            raise self.unavailable(e) from None
        client.api.hooks["response"].append(self._count)
        return client

    def _ssh_client(self) -> docker.DockerClient:
        """A client over the `ssh` command running `docker system dial-stdio` on the machine, with
        Perry's ssh options. Each connection is one ssh process whose stdin and stdout are one end
        of a socket pair, so the SDK sees a plain socket (streams, half-close) and pools it like a
        local one; no paramiko, which the SDK's own ssh transport imports even when it shells out."""
        from docker.transport import unixconn

        parts = urlsplit(self.base_url or "")
        argv = ["ssh", *self.ssh_options, *(["-l", parts.username] if parts.username else []),
                *(["-p", str(parts.port)] if parts.port else []), "--", parts.hostname or "",
                "docker system dial-stdio"]
        log_path = self.ssh_log

        class Connection(unixconn.UnixHTTPConnection):
            def connect(self):
                ours, theirs = socket.socketpair()
                err = open(log_path, "ab") if log_path else subprocess.DEVNULL
                try:
                    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "SSL_CERT_FILE")}
                    subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=err, env=env, start_new_session=True)
                finally:
                    theirs.close()
                    if err is not subprocess.DEVNULL:
                        err.close()
                ours.settimeout(self.timeout)
                self.sock = ours

        class Pool(unixconn.UnixHTTPConnectionPool):
            def _new_conn(self):
                return Connection(self.base_url, self.socket_path, self.timeout)

        class Adapter(unixconn.UnixHTTPAdapter):
            def get_connection(self, url, proxies=None):
                # One pool for every URL: the SDK's adapter keeps a pool per whole URL, so each new path
                # (each volume, container, exec id) would open a connection, here a new ssh process.
                with self.pools.lock:
                    pool = self.pools.get("engine")
                    if pool is None:
                        pool = self.pools["engine"] = Pool(url, self.socket_path, self.timeout,
                                                           maxsize=self.max_pool_size)
                return pool

        # A fixed version first: "auto" would ask the engine before the adapter is in place.
        client = docker.DockerClient(base_url="unix:///perry-ssh", version="1.41", timeout=self.timeout)
        adapter = Adapter("http+unix:///perry-ssh", timeout=self.timeout)
        client.api.mount("http+docker://", adapter)
        client.api._custom_adapter = adapter
        client.api._version = client.api.version(api_version=False)["ApiVersion"]
        return client

    def cli(self, docker_cli: str | None = None) -> list[str]:
        """The command line start of the Docker CLI reaching this engine as the SDK does: the same
        address, TLS files and, for ``ssh://``, the same ssh options (the pinned known_hosts): the CLI
        runs whatever `ssh` is first on PATH, so it gets a wrapper with them, on a PATH of its own."""
        docker = [docker_cli or "docker"]
        if not self.base_url:
            return docker
        flags = ["-H", self.base_url]
        if self.tls:  # verified as the SDK does: against the CA given, else the system's
            flags.append("--tlsverify")
            for key, flag in (("ca", "--tlscacert"), ("cert", "--tlscert"), ("key", "--tlskey")):
                if self.tls.get(key):
                    flags += [flag, self.tls[key]]
        if not self.base_url.startswith("ssh://"):
            return [*docker, *flags]
        wrapper_dir = self._ssh_wrapper()
        return ["env", f"PATH={wrapper_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}", *docker, *flags]

    def _ssh_wrapper(self) -> str:
        """The folder of an `ssh` that runs the real one with this engine's options (written once)."""
        with self._lock:
            folder = self.cli_dir or self._cli_tmp
            if folder is None:
                folder = self._cli_tmp = tempfile.mkdtemp(prefix="perry-ssh-")
            wrapper = os.path.join(folder, "ssh")
            real = shutil.which("ssh", path=os.pathsep.join(
                p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if os.path.abspath(p) != folder))
            text = ("#!/bin/sh\n# Perry's options for this engine (pinned host keys, no prompts), "
                    "then the Docker CLI's own.\n"
                    f"exec {shlex.quote(real or 'ssh')} {shlex.join(self.ssh_options)} \"$@\"\n")
            os.makedirs(folder, mode=0o700, exist_ok=True)
            try:
                current = open(wrapper, encoding="utf-8").read()
            except OSError:
                current = None
            if current != text:
                temporary = f"{wrapper}.{os.getpid()}.tmp"
                with open(temporary, "w", encoding="utf-8") as f:
                    f.write(text)
                os.chmod(temporary, 0o700)
                os.replace(temporary, wrapper)  # a terminal starting meanwhile never runs half a file
            return folder

    def _count(self, response, *args, **kwargs):
        self.api_calls += 1
        return response

    def close(self) -> None:
        """Drop the connection; the next call connects afresh."""
        self._forget_client()

    def _forget_client(self) -> None:
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
            self._client = None

    def unavailable(self, cause: object) -> EngineUnavailable:
        said = self._ssh_said()
        if "IDENTIFICATION HAS CHANGED" in said or "Host key verification failed" in said:
            return EngineUnavailable(
                f"the Docker engine {self.name!r} at {self.address} is refused: its SSH host key is not the one "
                "Perry pinned at the first connection; if the machine was really reinstalled, remove its line "
                f"from {self.ssh_known_hosts or 'the known_hosts file'}")
        if self.name:
            return EngineUnavailable(
                f"the Docker engine {self.name!r} at {self.address} is not reachable ({_short(said or cause)}); "
                "start it, or check the address with `perry engines`")
        return EngineUnavailable(
            f"the Docker engine at {self.address} is not reachable ({_short(cause)}); "
            "start it (e.g. `dockerd &` as root) or set PerryApp.docker_host / DOCKER_HOST"
        )

    @property
    def ssh_known_hosts(self) -> str | None:
        for option in self.ssh_options:
            if option.startswith("UserKnownHostsFile="):
                return option.split("=", 1)[1]
        return None

    def _ssh_said(self) -> str:
        """What ssh wrote on its stderr since the last look (emptied: old news must not stick)."""
        if not self.ssh_log:
            return ""
        try:
            with open(self.ssh_log, "r+b") as f:
                text = f.read()[-2000:].decode("utf-8", "replace")
                f.truncate(0)
        except OSError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("@")]
        return " ".join(lines[-3:])

    # ------------------------------------------------------------ errors

    @contextlib.contextmanager
    def errors(self, what: str = "Docker") -> Iterator[None]:
        """Name what the block does in the errors of the engine calls inside it."""
        with self.doing.label(what), self._translated(what):
            yield

    @contextlib.contextmanager
    def _call(self, default: str) -> Iterator[None]:
        with self._translated(self.doing.current(default)):
            yield

    @contextlib.contextmanager
    def _changing(self, container: str) -> Iterator[None]:
        try:
            yield
        finally:
            for watcher in list(self.watchers):
                watcher(container)

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except PerryError:
            raise
        except (requests.exceptions.ConnectionError, ConnectionError) as e:
            self._forget_client()
            raise self.unavailable(e) from None
        except APIError as e:
            raise self._refusal(DockerError, what, e) from None
        except DockerException as e:
            if "Connection" in str(e) or "connect" in str(e):
                self._forget_client()
                raise self.unavailable(e) from None
            raise DockerError(f"{what} failed: {e}", str(e)) from None

    @staticmethod
    def _refusal(kind: type[DockerError], what: str, e: APIError) -> DockerError:
        detail = str(e.explanation or e)
        return kind(f"{what} failed: {detail}", detail)

    def ping(self) -> dict:
        """Engine facts for `info` and `doctor`; never raises."""
        try:
            with self.errors("ping"):
                version = self._sdk().version()
            return {"reachable": True, "address": self.address, "version": version.get("Version"),
                    "apiVersion": version.get("ApiVersion")}
        except PerryError as e:
            return {"reachable": False, "address": self.address, "error": e.message}

    def facts(self) -> dict:
        """What placement and `perry engines` need: {version, cpus, memory (bytes), containersRunning};
        raises EngineUnavailable."""
        with self._call("asking the engine about itself"):
            info = self._sdk().info()
        return {"version": info.get("ServerVersion"), "cpus": info.get("NCPU"), "memory": info.get("MemTotal"),
                "containersRunning": info.get("ContainersRunning")}

    # ------------------------------------------------------------ containers

    def containers(self, labels: Mapping[str, str], name: str | None = None) -> list[dict[str, Any]]:
        """Every container (running or not) carrying all ``labels``; one engine call.

        ``name`` narrows the answer on the engine's side, but it matches substrings:
        callers compare names exactly."""
        filters: dict[str, Any] = {"label": [f"{k}={v}" for k, v in labels.items()]}
        if name:
            filters["name"] = name
        with self._call("listing containers"):
            return [_listed(c) for c in self._api().containers(all=True, filters=filters)]

    def container(self, name: str) -> dict[str, Any] | None:
        """One container by name or id, in the shape containers() gives; None when there is none."""
        with self._call("looking up the container"):
            try:
                return _inspected(self._api().inspect_container(name))
            except DockerNotFound:
                return None

    def events(self, labels: Mapping[str, str], until: float) -> "EventStream":
        """The changes of the containers carrying all ``labels`` from now until ``until`` (epoch
        seconds), as they happen: {action, id, name, labels, time} (time: when, in the engine's epoch seconds). Only what changes a container's listed
        state is asked for (an exec, a health check or an attach is not)."""
        filters = {"type": ["container"], "event": list(CONTAINER_CHANGES),
                   "label": [f"{k}={v}" for k, v in labels.items()]}
        with self._call("following the engine's events"):
            return EventStream(self._api().events(until=int(until) + 1, filters=filters, decode=True), self)

    def create_container(self, **spec: Any) -> str:
        """Create (not start) a container from the SDK's `containers.create` arguments; its id."""
        with self._changing(spec.get("name") or ""), self._call("creating the container"):
            return self._sdk().containers.create(**spec).id

    def start(self, container: str) -> None:
        """Start a container; `CapabilitiesRefused` and `PortTaken` say why the engine could not."""
        with self._changing(container), self._call("starting the container"):
            try:
                self._api().start(container)
            except APIError as e:
                text = str(e)
                if "unable to apply caps" in text or "operation not permitted" in text:
                    raise self._refusal(CapabilitiesRefused, self.doing.current("starting the container"), e) from None
                if "port is already allocated" in text or "address already in use" in text:
                    raise self._refusal(PortTaken, self.doing.current("starting the container"), e) from None
                raise

    def stop(self, container: str, timeout: int) -> None:
        with self._changing(container), self._call("stopping the container"):
            self._api().stop(container, timeout=timeout)

    def pause(self, container: str) -> None:
        """Freeze a running container's processes (its files stay still for a copy)."""
        with self._changing(container), self._call("pausing the container"):
            self._api().pause(container)

    def unpause(self, container: str) -> None:
        with self._changing(container), self._call("unpausing the container"):
            self._api().unpause(container)

    def remove_container(self, container: str, *, force: bool = True) -> bool:
        """Remove a container, keeping its volumes; False when there was none."""
        with self._changing(container), self._call("removing the container"):
            try:
                self._api().remove_container(container, force=force, v=False)
            except DockerNotFound:
                return False
        return True

    def logs(self, container: str, tail: int = 200, since: float | None = None) -> str:
        with self._call("reading logs"):
            return self._api().logs(container, tail=tail, since=since).decode("utf-8", "replace")

    def follow_logs(self, container: str, tail: int = 200, since: float | None = None) -> "LogStream":
        """The container's log from ``tail`` lines back (or from ``since``, epoch seconds), then
        as it grows, until the container stops or the stream is closed (from any thread)."""
        with self._call("reading logs"):
            return LogStream(self._api().logs(container, stream=True, follow=True, tail=tail, since=since))

    def attach_output(self, container: str) -> "LogStream":
        """The container's output from now on, as lines (attached before its start, as `docker run`
        does, nothing is missed), until it stops or the stream is closed (from any thread)."""
        with self._call("attaching to the container"):
            return LogStream(self._api().attach(container, stdout=True, stderr=True, stream=True, logs=False))

    def update_container(self, container: str, resources: Mapping[str, Any]) -> None:
        """Change a container's resources live: Docker's container update with ``resources``
        (NanoCpus, Memory, MemorySwap, PidsLimit); the SDK's update_container lacks the CPU and pids ones."""
        with self._changing(container), self._call("updating the container's limits"):
            api = self._api()
            api._raise_for_status(api._post_json(api._url("/containers/{0}/update", container), data=dict(resources)))

    def stats(self, container: str) -> dict[str, Any] | None:
        """One reading of a running container's use: {cpuTotal, systemTotal (ns), onlineCpus, memoryUsed,
        memoryLimit (bytes), pids}; None when the container is gone or stopped. CPU use is the
        difference of two readings (one-shot: Docker does not wait a second for a second one)."""
        with self._call("reading the container's use"):
            try:
                raw = self._api().stats(container, stream=False, one_shot=True)
            except DockerNotFound:
                return None
        cpu, memory = raw.get("cpu_stats") or {}, raw.get("memory_stats") or {}
        if not memory.get("usage"):
            return None  # stopped: the engine answers with zeros
        inner = memory.get("stats") or {}
        # As `docker stats` counts it: the page cache the kernel can drop is not use.
        cache = inner.get("total_inactive_file", inner.get("inactive_file", 0))
        return {"cpuTotal": (cpu.get("cpu_usage") or {}).get("total_usage"),
                "systemTotal": cpu.get("system_cpu_usage"), "onlineCpus": cpu.get("online_cpus"),
                "memoryUsed": max(0, memory["usage"] - cache), "memoryLimit": memory.get("limit"),
                "pids": (raw.get("pids_stats") or {}).get("current")}

    # ------------------------------------------------------------ volumes and networks

    def volume_exists(self, name: str) -> bool:
        with self._call("looking up a volume"):
            try:
                self._api().inspect_volume(name)
            except DockerNotFound:
                return False
        return True

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        with self._call("creating a volume"):
            self._api().create_volume(name, labels=dict(labels))

    def remove_volume(self, name: str) -> bool:
        """False when there was none."""
        with self._call("removing a volume"):
            try:
                self._api().remove_volume(name, force=True)
            except DockerNotFound:
                return False
        return True

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        """A bridge network called ``name``, made unless it is there."""
        with self._call("creating the network"):
            api = self._api()
            # The engine's name filter matches substrings ("perry" finds "perry-test"): compare exactly.
            if any(n["Name"] == name for n in api.networks(names=[name])):
                return
            try:
                api.create_network(name, driver="bridge", labels=dict(labels))
            except APIError as e:
                if e.status_code != 409:  # made meanwhile by another process
                    raise

    # ------------------------------------------------------------ inside a container

    def exec(self, container: str, command: list[str], *, user: str, workdir: str | None = None,
             env: Mapping[str, str] | None = None,
             on_line: Callable[[str], bool] | None = None) -> dict[str, Any]:
        """Run ``command``; ``{exitCode, stdout, stderr}``. With ``on_line``, stdout is read as it
        comes, one line at a time; the lines it returns False for are left out of the answer."""
        with self._call("exec"):
            api = self._api()
            exec_id = api.exec_create(container, command, user=user, workdir=workdir,
                                      environment=dict(env or {}) or None)["Id"]
            if on_line is None:
                stdout, stderr = api.exec_start(exec_id, demux=True)
            else:
                stdout, stderr = read_lines(api.exec_start(exec_id, stream=True, demux=True), on_line)
            code = api.exec_inspect(exec_id).get("ExitCode")
        return {
            "exitCode": code,
            "stdout": (stdout or b"").decode("utf-8", "replace"),
            "stderr": (stderr or b"").decode("utf-8", "replace"),
        }

    def exec_stream(self, container: str, command: list[str], *, user: str,
                    env: Mapping[str, str] | None = None) -> "ExecStream":
        """Start a long-running ``command`` whose stdout is read line by line; closing the
        stream closes the command's stdin."""
        with self._call("exec"):
            api = self._api()
            exec_id = api.exec_create(container, command, stdin=True, stdout=True, stderr=False, user=user,
                                      environment=dict(env or {}) or None)["Id"]
            return ExecStream(api.exec_start(exec_id, socket=True))

    def exec_socket(self, container: str, command: list[str], *, user: str,
                    env: Mapping[str, str] | None = None) -> "ExecSocket":
        """Start ``command`` with stdin, stdout and stderr attached to one hijacked connection to the
        engine: a socket-like object to write the command's stdin to and read its output from."""
        with self._call("exec"):
            api = self._api()
            exec_id = api.exec_create(container, command, stdin=True, stdout=True, stderr=True, tty=False,
                                      user=user, environment=dict(env or {}) or None)["Id"]
            return ExecSocket(api.exec_start(exec_id, socket=True))

    def start_helper(self, name: str, image: str, volumes: Mapping[str, str], labels: Mapping[str, str]) -> str:
        """Start a container ``name`` of ``image`` that only waits, with ``volumes`` ({volume: path})
        mounted, for Perry's own commands on those volumes (the copies of move and clone); its id.

        It runs as root without a network. SYS_ADMIN lets tar keep the `trusted.*` extended
        attributes, where overlay2 marks a layer's opaque directories (a nested engine's images)."""
        with self._call("starting a helper container"):
            container = self._sdk().containers.create(
                image=image, name=name, entrypoint=["sleep", "infinity"], user="root", labels=dict(labels),
                volumes={volume: {"bind": path, "mode": "rw"} for volume, path in volumes.items()},
                network_mode="none", cap_add=["SYS_ADMIN"], detach=True)
            try:
                container.start()
            except APIError:
                container.remove(force=True)
                raise
            return container.id

    def exec_output(self, container: str, command: list[str], *, user: str) -> Iterator[bytes]:
        """Run ``command`` and yield its stdout in chunks as it comes; a `DockerError` with its
        stderr's tail when it exits non-zero."""
        with self._call("exec"):
            api = self._api()
            exec_id = api.exec_create(container, command, user=user)["Id"]
            stderr = bytearray()
            for out, err in api.exec_start(exec_id, stream=True, demux=True):
                if err:
                    stderr = (stderr + err)[-2000:]
                if out:
                    yield out
            self._exec_succeeded(exec_id, command, bytes(stderr))

    def exec_input(self, container: str, command: list[str], chunks: Iterable[bytes], *, user: str) -> None:
        """Run ``command`` with ``chunks`` streamed into its stdin; a `DockerError` with its stderr's
        tail when it exits non-zero."""
        with self._call("exec"):
            api = self._api()
            exec_id = api.exec_create(container, command, stdin=True, stdout=True, stderr=True, tty=False,
                                      user=user)["Id"]
            stream = ExecSocket(api.exec_start(exec_id, socket=True))
            try:
                for chunk in chunks:
                    stream.sendall(chunk)
                stream.shutdown_write()
                while stream.recv():
                    pass
            except OSError:
                # The command may have ended first (a full disk...): its words say more than a broken pipe.
                with contextlib.suppress(OSError):
                    while stream.recv():
                        pass
                self._exec_succeeded(exec_id, command, bytes(stream.stderr[-2000:]))
                raise
            finally:
                stream.close()
            self._exec_succeeded(exec_id, command, bytes(stream.stderr[-2000:]))

    def _exec_succeeded(self, exec_id: str, command: list[str], stderr: bytes) -> None:
        api = self._api()
        # The output ends a moment before the engine records the exit code.
        for _ in range(100):
            answer = api.exec_inspect(exec_id)
            if not answer.get("Running"):
                break
            time.sleep(0.05)
        code = answer.get("ExitCode")
        if code != 0:
            detail = " ".join(stderr.decode("utf-8", "replace").split()) or f"exit code {code}"
            raise DockerError(f"{self.doing.current(command[0])} failed: {command[0]} said: {detail}", detail)

    def put_archive(self, container: str, path: str, tar: bytes) -> None:
        """Unpack the tar ``tar`` at ``path`` in the container."""
        with self._call("copying files into the container"):
            self._api().put_archive(container, path, tar)

    def get_archive(self, container: str, path: str) -> bytes | None:
        """``path`` in the container as a tar; None when it does not exist."""
        with self._call("copying files out of the container"):
            try:
                stream, _stat = self._api().get_archive(container, path)
            except DockerNotFound:
                return None
            return b"".join(stream)

    # ------------------------------------------------------------ images

    def image(self, ref: str) -> dict[str, Any] | None:
        """``{id, labels, created, tags}`` of an image, or None when the engine has none of that name."""
        with self._call("looking up an image"):
            try:
                attrs = self._api().inspect_image(ref)
            except (ImageNotFound, DockerNotFound):
                return None
            except APIError as e:
                if e.status_code == 404:
                    return None
                raise
        return {"id": attrs.get("Id"), "labels": (attrs.get("Config") or {}).get("Labels") or {},
                "created": attrs.get("Created"), "tags": attrs.get("RepoTags") or []}

    def remove_image(self, image_id: str) -> None:
        with self._call("removing an image"):
            self._api().remove_image(image_id, noprune=False)

    def pull(self, repository: str, tag: str) -> Iterator[dict[str, Any]]:
        """The engine's progress events (dicts) of pulling ``repository:tag``."""
        with self._call("pulling an image"):
            yield from self._api().pull(repository, tag=tag, stream=True, decode=True)

    def import_image(self, tar: IO[bytes], repository: str, tag: str) -> str:
        """Make an image of a root file system's tar (read from the file ``tar``); the engine's answer."""
        with self._call("importing an image"):
            return str(self._api().import_image_from_stream(tar, repository=repository, tag=tag))

    def save_image(self, ref: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The image ``ref`` as `docker save` gives it: a tar, in chunks as they come."""
        with self._call("saving an image"):
            yield from self._api().get_image(ref, chunk_size=chunk_size)

    def load_image(self, chunks: Iterable[bytes]) -> list[dict[str, Any]]:
        """Load an image tar (`docker load`) streamed from ``chunks``; the engine's messages."""
        with self._call("loading an image"):
            return list(self._api().load_image(chunks))

    def build(self, *, path: str | None = None, tag: str, no_cache: bool = False,
              buildargs: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
              dockerfile: str | None = None, context_tar: bytes | None = None) -> Iterator[dict[str, Any]]:
        """Build the context folder ``path`` (or the tar ``context_tar``) as ``tag``, never pulling its
        base; ``dockerfile`` is the Dockerfile's path in the context (default ``Dockerfile``). The
        engine's events."""
        context: dict[str, Any] = ({"fileobj": io.BytesIO(context_tar), "custom_context": True}
                                   if context_tar is not None else {"path": path})
        with self._call("building an image"):
            yield from self._api().build(**context, tag=tag, decode=True, rm=True, forcerm=True, nocache=no_cache,
                                         pull=False, buildargs=dict(buildargs or {}), labels=dict(labels or {}),
                                         dockerfile=dockerfile)


class ExecStream:
    """A running exec's stdout as lines, and its stdin to close."""

    def __init__(self, sock):
        self._sock = sock

    def lines(self) -> Iterator[bytes]:
        """Complete stdout lines (without the newline) until the command ends."""
        buffer = b""
        for _stream, data in frames_iter(self._sock, tty=False):
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line

    def close(self) -> None:
        sock = self._sock
        raw = getattr(sock, "_sock", sock)
        try:
            if raw is not None:
                raw.shutdown(socket.SHUT_WR)  # stdin EOF: a command that reads it ends
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass


class LogStream:
    """A followed container log as lines; ``close`` ends a ``lines`` loop blocked in another thread."""

    def __init__(self, chunks):
        self._chunks = chunks
        self._closed = threading.Event()

    def lines(self) -> Iterator[str]:
        buffer = b""
        try:
            for chunk in self._chunks:
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    yield line.decode("utf-8", "replace")
        except (OSError, requests.RequestException, DockerException):
            if not self._closed.is_set():
                raise
        finally:
            # The socket's file object holds the descriptor open after a cancel: the
            # connection is released only with the response.
            response = getattr(self._chunks, "_response", None)
            if response is not None:
                response.close()
        if buffer and not self._closed.is_set():
            yield buffer.decode("utf-8", "replace")

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._chunks.close()
        except (OSError, DockerException):
            pass  # an SSH channel cannot be cancelled: it ends with the container's log


class EventStream:
    """A followed event stream; ``close`` ends an ``events`` loop blocked in another thread."""

    def __init__(self, stream, engine: Engine):
        self._stream = stream
        self._engine = engine
        self._closed = threading.Event()

    def events(self) -> Iterator[dict[str, Any]]:
        """The events until the stream's end; EngineUnavailable when the engine goes away meanwhile."""
        try:
            for event in self._stream:
                actor = event.get("Actor") or {}
                attributes = dict(actor.get("Attributes") or {})
                when = event.get("timeNano")
                yield {"action": event.get("Action") or event.get("status"), "id": actor.get("ID") or event.get("id"),
                       "name": attributes.pop("name", None), "labels": attributes,
                       "time": when / 1e9 if when else event.get("time")}
        except (OSError, requests.RequestException, DockerException, ValueError) as e:
            if not self._closed.is_set():
                raise self._engine.unavailable(e) from None
        finally:
            response = getattr(self._stream, "_response", None)
            if response is not None:
                response.close()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._stream.close()
        except (OSError, DockerException):
            pass


class ExecSocket:
    """A running exec's streams over the engine's hijacked connection, as a blocking socket.

    Without a tty the engine frames stdout and stderr (an 8-byte header: stream, 3 zero bytes,
    big-endian length); ``recv`` gives stdout's bytes only and keeps stderr's for ``stderr``.
    Stdin goes unframed. ``shutdown_write`` is the command's stdin EOF.
    """

    STDOUT, STDERR = 1, 2

    def __init__(self, sock):
        self._holder = sock  # keeps the SDK's response (and so the connection) alive
        self._sock = getattr(sock, "_sock", sock)  # the socket under the SDK's SocketIO
        # A plain socket (unix or TCP engine) can be read without this object, frames and all;
        # a TLS socket or an ssh:// engine's channel cannot.
        self.socket = self._sock if type(self._sock) is socket.socket else None
        self._left = 0  # bytes of stdout still to come in the current frame
        self.stderr = bytearray()
        self.stdout_before = b""  # stdout read by read_stderr_line

    def _exactly(self, n: int) -> bytes | None:
        data = bytearray()
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return bytes(data)

    def _frame(self) -> tuple[int, int] | None:
        """The next frame's (stream, length), or None at the end."""
        header = self._exactly(8)
        return None if header is None else (header[0], int.from_bytes(header[4:8], "big"))

    def recv(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes of stdout; b"" once the command's output has ended."""
        while not self._left:
            frame = self._frame()
            if frame is None:
                return b""
            stream, size = frame
            if stream == self.STDERR:
                data = self._exactly(size)
                if data is None:
                    return b""
                self.stderr += data
            else:
                self._left = size
        chunk = self._sock.recv(min(n, self._left))
        if not chunk:
            self._left = 0
            return b""
        self._left -= len(chunk)
        return chunk

    def read_stderr_line(self) -> bytes | None:
        """Read whole frames until stderr holds a line: it, or None at the end. Stdout read on the
        way is kept in ``stdout_before``. For a handshake, before any stdout is read with recv."""
        pending = bytearray()
        while b"\n" not in self.stderr:
            frame = self._frame()
            data = None if frame is None else self._exactly(frame[1])
            if data is None:
                self.stdout_before = bytes(pending)
                return None
            (self.stderr if frame[0] == self.STDERR else pending).extend(data)
        line, _, rest = bytes(self.stderr).partition(b"\n")
        self.stderr = bytearray(rest)
        self.stdout_before = bytes(pending)
        return line

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def shutdown_write(self) -> None:
        with contextlib.suppress(OSError):
            if hasattr(self._sock, "shutdown_write"):  # paramiko's channel, for ssh:// engines
                self._sock.shutdown_write()
            else:
                self._sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading it
        for sock in (self._sock, self._holder):
            with contextlib.suppress(OSError):
                sock.close()


def read_lines(chunks: Iterable[tuple[bytes | None, bytes | None]],
               on_line: Callable[[str], bool]) -> tuple[bytes, bytes]:
    """(kept stdout, stderr) of a demuxed exec stream, handing each stdout line to ``on_line``."""
    kept, err, pending = bytearray(), bytearray(), b""

    def line(raw: bytes) -> None:
        if on_line(raw.decode("utf-8", "replace")):
            kept.extend(raw + b"\n")

    for out, error in chunks:
        err.extend(error or b"")
        if out:
            pending += out
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line(raw)
    if pending:
        line(pending)
    return bytes(kept), bytes(err)


def _listed(c: dict[str, Any]) -> dict[str, Any]:
    """A container of the engine's list in Perry's shape: {id, name, image, state, labels, ports}."""
    ports = {}
    for p in c.get("Ports") or []:
        if p.get("PublicPort"):
            ports.setdefault(f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}", int(p["PublicPort"]))
    # Links add names like "/other/alias"; the container's own name has no inner slash.
    names = [n.lstrip("/") for n in c.get("Names") or []]
    name = next((n for n in names if "/" not in n), names[0] if names else None)
    return {"id": c.get("Id"), "name": name, "image": c.get("Image"),
            "state": c.get("State"), "labels": c.get("Labels") or {}, "ports": ports}


def _inspected(attrs: dict[str, Any]) -> dict[str, Any]:
    ports = {}
    for key, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
        for b in bindings or []:
            if b.get("HostPort"):
                ports.setdefault(key, int(b["HostPort"]))
    config = attrs.get("Config") or {}
    networks = ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).values()
    return {"id": attrs.get("Id"), "name": (attrs.get("Name") or "").lstrip("/") or None,
            "image": config.get("Image"), "state": (attrs.get("State") or {}).get("Status"),
            "labels": config.get("Labels") or {}, "ports": ports,
            "addresses": [n["IPAddress"] for n in networks if n.get("IPAddress")]}


def redact_address(address: str) -> str:
    """An engine address without the password a URL may carry (``tcp://user:secret@host`` -> ``tcp://user:***@host``)."""
    parts = urlsplit(address)
    if parts.password is None:
        return address
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _short(cause: object) -> str:
    text = str(cause)
    # requests' connection errors nest three layers of reprs; the innermost reason is enough.
    for marker in ("Errno", "No such file", "Connection refused", "ssh:"):
        idx = text.find(marker)
        if idx >= 0:
            text = text[idx:]
            break
    return text.strip("()'\" ")[:200]


# A terminal needs a pty on this side, which terminado gives a process, not an SDK call: terminals
# run the Docker CLI, started by ``docker`` (`Engine.cli`: the command reaching the workspace's engine).

def terminal_command(container: str, argv: list[str], *, docker: list[str], user: str, workdir: str,
                     env: dict[str, str]) -> list[str]:
    """The `docker exec -it` command line running ``argv`` in ``container`` on a terminal."""
    return [*docker, "exec", "-it", "-u", user, "-w", workdir,
            *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")), container, *argv]


def container_running_command(container: str, *, docker: list[str]) -> list[str]:
    """A command line that prints ``true`` while ``container`` runs, ``false`` while it is stopped,
    and fails when there is no such container: for a process that must not import the SDK."""
    return [*docker, "inspect", "-f", "{{.State.Running}}", container]
