"""An in-memory Docker engine with the gateway's interface (perry_jupyter.core.engine.Engine).

For the core's unit tests: reconcile, descriptions, tasks and recovery run in milliseconds
with no Docker engine. It keeps containers (labels, state, published ports), volumes,
networks and images as plain data; an exec answers through ``on_exec`` (canned or computed
answers) and every exec and archive is recorded. `test_core_gateway` checks that its
methods keep the real engine's signatures.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import tarfile
import threading
import time
from typing import IO, Any, Callable, Iterable, Iterator, Mapping

from perry_jupyter.core.engine import CapabilitiesRefused, Doing, DockerError, PortTaken, read_lines
from perry_jupyter.core.errors import EngineUnavailable, PerryError

ExecHook = Callable[..., "dict[str, Any] | str | None"]


class FakeEngine:
    local = False  # its containers have no addresses to connect to

    def __init__(self, address: str = "fake://engine", memory: int = 8 << 30, name: str | None = None) -> None:
        self.address = address
        self.name = name
        self.memory = memory
        self.api_calls = 0
        self.reachable = True
        self.containers_: dict[str, dict[str, Any]] = {}  # by id
        self.volumes: dict[str, dict[str, str]] = {}
        self.networks: dict[str, dict[str, str]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.pullable: set[str] = set()
        # Called as on_exec(container_name, command, user=, workdir=, env=): an answer dict
        # ({exitCode, stdout, stderr}, missing keys filled in), a str (stdout, exit 0) or None (exit 0).
        self.on_exec: ExecHook = lambda *a, **k: None
        # Called with the container (its "spec" included) before it starts; may raise.
        self.on_start: Callable[[dict[str, Any]], None] = lambda c: None
        self.execs: list[dict[str, Any]] = []
        self.archives: list[tuple[str, str, bytes]] = []
        self.calls: list[str] = []
        self._ids = itertools.count(1)
        self.doing = Doing()
        self._lock = threading.RLock()
        self.watchers: list[Callable[[str], None]] = []
        # Off by default: the unit tests that change containers_ by hand expect every list to see it;
        # a test of the views turns it on and changes containers through the methods below.
        self.streams_events = False
        self._streams: list[FakeEventStream] = []

    # ------------------------------------------------------------ test helpers

    def add_container(self, name: str, *, labels: Mapping[str, str], state: str = "running",
                      ports: Mapping[str, int] | None = None, image: str = "perry-workspace:latest") -> str:
        """A container made outside Perry (another server, an earlier run, a user)."""
        cid = f"{next(self._ids):064x}"
        self.containers_[cid] = {"id": cid, "name": name, "image": image, "state": state,
                                 "labels": dict(labels), "ports": dict(ports or {}), "spec": {}}
        self._emit("create", self.containers_[cid])
        return cid

    def refuse_privileged(self) -> None:
        """Start as on a host whose capability bounding set is short (see shared/ENVIRONMENT.md)."""
        def refuse(container: dict[str, Any]) -> None:
            if container["spec"].get("privileged"):
                raise CapabilitiesRefused(f"{self.doing.current('starting the container')} failed: "
                                          "unable to apply caps: operation not permitted",
                                          "unable to apply caps: operation not permitted")
        self.on_start = refuse

    def take_port(self, port: int) -> None:
        """Someone outside Perry listens on ``port``: a container publishing it does not start."""
        def refuse(container: dict[str, Any]) -> None:
            if any(p == port for _addr, p in container["spec"].get("ports", {}).values()):
                detail = f"Bind for 127.0.0.1:{port} failed: port is already allocated"
                raise PortTaken(f"{self.doing.current('starting the container')} failed: {detail}", detail)
        self.on_start = refuse

    def behind_perry(self, name: str, state: str | None = None) -> None:
        """Change container ``name`` as a user's `docker stop/start/rm` would: its state, or (None)
        removed; the engine's event streams tell of it, Perry's watchers are not called."""
        with self._lock:
            c = self._get(name)
            if state is None:
                del self.containers_[c["id"]]
            else:
                c["state"] = state
        self._emit("destroy" if state is None else "start" if state == "running" else "die", c)

    def cut_events(self) -> None:
        """End every event stream as an engine's restart does (the streams raise EngineUnavailable)."""
        with self._lock:
            streams, self._streams = self._streams, []
        for stream in streams:
            stream.cut()

    def running(self, name: str) -> dict[str, Any]:
        found = self._find(name)
        assert found is not None, f"no container {name}"
        return found

    # ------------------------------------------------------------ the gateway's interface

    @contextlib.contextmanager
    def errors(self, what: str = "Docker") -> Iterator[None]:
        with self.doing.label(what):
            yield

    def ping(self) -> dict:
        if not self.reachable:
            return {"reachable": False, "address": self.address, "error": "fake engine down"}
        return {"reachable": True, "address": self.address, "version": "fake", "apiVersion": "1.41"}

    def facts(self) -> dict:
        self._touch("facts")
        running = sum(c["state"] == "running" for c in self.containers_.values())
        return {"version": "fake", "cpus": 2, "memory": self.memory, "containersRunning": running}

    def close(self) -> None:
        pass

    def cli(self, docker_cli: str | None = None) -> list[str]:
        return [docker_cli or "docker", "-H", self.address]

    def containers(self, labels: Mapping[str, str], name: str | None = None) -> list[dict[str, Any]]:
        self._touch("containers")
        with self._lock:
            return [self._public(c) for c in self.containers_.values()
                    if all(c["labels"].get(k) == v for k, v in labels.items()) and (not name or name in c["name"])]

    def container(self, name: str) -> dict[str, Any] | None:
        self._touch("container")
        found = self._find(name)
        return self._public(found) if found else None

    def events(self, labels: Mapping[str, str], until: float) -> "FakeEventStream":
        if not self.streams_events:
            raise PerryError("this fake engine streams no events", code="events_unsupported")
        self._touch("events")
        stream = FakeEventStream(self, dict(labels), until)
        with self._lock:
            self._streams.append(stream)
        return stream

    def create_container(self, **spec: Any) -> str:
        with self._changing(spec.get("name") or ""):
            return self._create_container(spec)

    def _create_container(self, spec: dict[str, Any]) -> str:
        self._touch("create_container")
        with self._lock:
            if spec["image"] not in self.images:
                self._refuse(f"No such image: {spec['image']}")
            if self._find(spec["name"]) is not None:
                self._refuse(f'Conflict. The container name "/{spec["name"]}" is already in use')
            cid = f"{next(self._ids):064x}"
            self.containers_[cid] = {"id": cid, "name": spec["name"], "image": spec["image"], "state": "created",
                                     "labels": dict(spec.get("labels") or {}), "ports": {}, "spec": spec}
        self._emit("create", self.containers_[cid])
        return cid

    def start(self, container: str) -> None:
        with self._changing(container):
            self._touch("start")
            c = self._get(container)
            self.on_start(c)
            c["state"] = "running"
            c["ports"] = {k: p for k, (_addr, p) in (c["spec"].get("ports") or {}).items()} or c["ports"]
            self._emit("start", c)

    def stop(self, container: str, timeout: int) -> None:
        with self._changing(container):
            self._touch("stop")
            self._get(container)["state"] = "exited"
            self._emit("die", self._get(container))

    def update_container(self, container: str, resources: Mapping[str, Any]) -> None:
        with self._changing(container):
            self._touch("update_container")
            self._get(container).setdefault("resources", {}).update(resources)

    def stats(self, container: str) -> dict[str, Any] | None:
        self._touch("stats")
        c = self._find(container)
        if c is None or c["state"] != "running":
            return None
        self.stats_reads = getattr(self, "stats_reads", 0) + 1
        # Half a CPU busy between two readings of a second apart, 100 MiB used of the memory limit.
        n = self.stats_reads
        return {"cpuTotal": n * 500_000_000, "systemTotal": n * 2_000_000_000, "onlineCpus": 2,
                "memoryUsed": 100 << 20, "memoryLimit": c["spec"].get("mem_limit") or self.memory, "pids": 7}

    def remove_container(self, container: str, *, force: bool = True) -> bool:
        with self._changing(container):
            self._touch("remove_container")
            with self._lock:
                found = self._find(container)
                if found is None:
                    return False
                del self.containers_[found["id"]]
            self._emit("destroy", found)
            return True

    def logs(self, container: str, tail: int = 200, since: float | None = None) -> str:
        self._touch("logs")
        self._get(container)
        return ""

    def follow_logs(self, container: str, tail: int = 200, since: float | None = None):
        self._touch("follow_logs")
        self._get(container)
        return _EmptyLog()

    def attach_output(self, container: str):
        """What the real entrypoint says once the container is ready."""
        self._touch("attach_output")
        self._get(container)
        return _Said(["perry: ready (dind: ready)"])

    def volume_exists(self, name: str) -> bool:
        self._touch("volume_exists")
        return name in self.volumes

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self._touch("create_volume")
        self.volumes[name] = dict(labels)

    def remove_volume(self, name: str) -> bool:
        self._touch("remove_volume")
        return self.volumes.pop(name, None) is not None

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        self._touch("ensure_network")
        self.networks.setdefault(name, dict(labels))

    def exec(self, container: str, command: list[str], *, user: str, workdir: str | None = None,
             env: Mapping[str, str] | None = None,
             on_line: Callable[[str], bool] | None = None) -> dict[str, Any]:
        self._touch("exec")
        c = self._get(container)
        if c["state"] != "running":
            self._refuse(f"Container {c['id']} is not running")
        self.execs.append({"container": c["name"], "command": list(command), "user": user, "workdir": workdir,
                           "env": dict(env or {})})
        answer = self.on_exec(c["name"], list(command), user=user, workdir=workdir, env=dict(env or {}))
        if answer is None or isinstance(answer, str):
            answer = {"stdout": answer or ""}
        result = {"exitCode": 0, "stdout": "", "stderr": "", **answer}
        if on_line is not None:
            kept, _ = read_lines([(result["stdout"].encode(), None)], on_line)
            result["stdout"] = kept.decode()
        return result

    def exec_stream(self, container: str, command: list[str], *, user: str,
                    env: Mapping[str, str] | None = None) -> "FakeStream":
        self._touch("exec_stream")
        answer = self.exec(container, command, user=user, env=env)
        return FakeStream(answer["stdout"])

    def exec_socket(self, container: str, command: list[str], *, user: str,
                    env: Mapping[str, str] | None = None) -> "FakeSocket":
        """The command's whole answer as the stream's contents; what is sent is kept in ``sent``."""
        self._touch("exec_socket")
        answer = self.exec(container, command, user=user, env=env)
        return FakeSocket(answer["stdout"].encode(), answer["stderr"].encode())

    def start_helper(self, name: str, image: str, volumes: Mapping[str, str], labels: Mapping[str, str]) -> str:
        self._touch("start_helper")
        cid = self.create_container(image=image, name=name, labels=labels,
                                    volumes={v: {"bind": p, "mode": "rw"} for v, p in volumes.items()})
        self._get(cid)["state"] = "running"
        return cid

    def exec_output(self, container: str, command: list[str], *, user: str) -> Iterator[bytes]:
        self._touch("exec_output")
        answer = self.exec(container, command, user=user)
        if answer["exitCode"] != 0:
            self._refuse(answer["stderr"])
        yield answer["stdout"].encode()

    def exec_input(self, container: str, command: list[str], chunks: Iterable[bytes], *, user: str) -> None:
        """What ``chunks`` hold is kept as the exec's ``stdin``."""
        self._touch("exec_input")
        answer = self.exec(container, command, user=user)
        self.execs[-1]["stdin"] = b"".join(chunks)
        if answer["exitCode"] != 0:
            self._refuse(answer["stderr"])

    def pause(self, container: str) -> None:
        with self._changing(container):
            self._touch("pause")
            self._get(container)["state"] = "paused"
            self._emit("pause", self._get(container))

    def unpause(self, container: str) -> None:
        with self._changing(container):
            self._touch("unpause")
            self._get(container)["state"] = "running"
            self._emit("unpause", self._get(container))

    def put_archive(self, container: str, path: str, tar: bytes) -> None:
        self._touch("put_archive")
        c = self._get(container)
        self.archives.append((c["name"], path, tar))

    def get_archive(self, container: str, path: str) -> bytes | None:
        self._touch("get_archive")
        self._get(container)
        for _name, root, tar in reversed(self.archives):
            with tarfile.open(fileobj=io.BytesIO(tar)) as t:
                for member in t.getmembers():
                    if f"{root.rstrip('/')}/{member.name}" == path:
                        out = io.BytesIO()
                        with tarfile.open(fileobj=out, mode="w") as o:
                            o.addfile(member, t.extractfile(member) if member.isfile() else None)
                        return out.getvalue()
        return None

    def image(self, ref: str) -> dict[str, Any] | None:
        self._touch("image")
        found = self.images.get(ref) or next((i for i in self.images.values() if i["id"] == ref), None)
        return dict(found) if found else None

    def remove_image(self, image_id: str) -> None:
        self._touch("remove_image")
        for tag in [t for t, i in self.images.items() if i["id"] == image_id]:
            del self.images[tag]

    def pull(self, repository: str, tag: str) -> Iterator[dict[str, Any]]:
        self._touch("pull")
        ref = f"{repository}:{tag}"
        if ref not in self.pullable:
            self._refuse(f"Get https://registry/v2/{repository}: no such host")
        self.add_image(ref)
        yield {"status": f"Downloaded newer image for {ref}"}

    def import_image(self, tar: IO[bytes], repository: str, tag: str) -> str:
        self._touch("import_image")
        tar.read()
        self.add_image(f"{repository}:{tag}")
        return '{"status":"sha256:imported"}'

    def build(self, *, path: str | None = None, tag: str, no_cache: bool = False,
              buildargs: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
              dockerfile: str | None = None, context_tar: bytes | None = None) -> Iterator[dict[str, Any]]:
        self._touch("build")
        base = (buildargs or {}).get("BASE_IMAGE")
        if base and base not in self.images:
            self._refuse(f"pull access denied for {base}")
        yield {"stream": "Step 1/1 : FROM base\n"}
        self.add_image(tag, labels=labels)

    def save_image(self, ref: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        import json

        self._touch("save_image")
        if ref not in self.images:
            self._refuse(f"reference does not exist: {ref}")
        data = json.dumps({ref: self.images[ref]}).encode()
        for i in range(0, len(data), chunk_size):
            yield data[i:i + chunk_size]

    def load_image(self, chunks: Iterable[bytes]) -> list[dict[str, Any]]:
        import json

        self._touch("load_image")
        loaded = json.loads(b"".join(chunks))
        self.images.update(loaded)
        return [{"stream": f"Loaded image: {tag}\n"} for tag in loaded]

    def add_image(self, tag: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        image = {"id": f"sha256:{next(self._ids):064x}", "labels": dict(labels or {}),
                 "created": "2026-01-01T00:00:00Z", "tags": [tag]}
        self.images[tag] = image
        return image

    # ------------------------------------------------------------ inside

    @contextlib.contextmanager
    def _changing(self, container: str) -> Iterator[None]:
        try:
            yield
        finally:
            for watcher in list(self.watchers):
                watcher(container)

    def _emit(self, action: str, c: dict[str, Any]) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.put({"action": action, "id": c["id"], "name": c["name"], "labels": dict(c["labels"]),
                        "time": time.time()})

    def _touch(self, call: str) -> None:
        if not self.reachable:
            raise EngineUnavailable(f"the Docker engine at {self.address} is not reachable (fake engine down)")
        self.api_calls += 1
        self.calls.append(call)

    def _refuse(self, detail: str) -> None:
        raise DockerError(f"{self.doing.current('Docker')} failed: {detail}", detail)

    def _find(self, name_or_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((c for c in self.containers_.values() if name_or_id in (c["id"], c["name"])), None)

    def _get(self, name_or_id: str) -> dict[str, Any]:
        found = self._find(name_or_id)
        if found is None:
            self._refuse(f"No such container: {name_or_id}")
        return found

    @staticmethod
    def _public(c: dict[str, Any]) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in c.items() if k != "spec"}


class FakeSocket:
    """ExecSocket's interface over a finished command's output."""

    socket = None  # not a plain socket: readers go through recv

    def __init__(self, stdout: bytes, stderr: bytes):
        self._stdout, self.stderr, self.sent = stdout, bytearray(stderr), bytearray()
        self.stdout_before = b""

    def recv(self, n: int = 65536) -> bytes:
        chunk, self._stdout = self._stdout[:n], self._stdout[n:]
        return chunk

    def read_stderr_line(self) -> bytes | None:
        if b"\n" not in self.stderr:
            self.stdout_before, self._stdout = self._stdout, b""
            return None
        line, _, rest = bytes(self.stderr).partition(b"\n")
        self.stderr = bytearray(rest)
        return line

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def shutdown_write(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeEventStream:
    """Engine.events' stream: what the fake engine emits until ``until``, its close or a cut."""

    def __init__(self, engine: FakeEngine, labels: dict[str, str], until: float):
        self._engine, self._labels, self._until = engine, labels, until
        self._queue: list[dict[str, Any]] = []
        self._ended: str | None = None  # "closed" or "cut"
        self._changed = threading.Condition()

    def put(self, event: dict[str, Any]) -> None:
        if all(event["labels"].get(k) == v for k, v in self._labels.items()):
            with self._changed:
                self._queue.append(event)
                self._changed.notify_all()

    def cut(self) -> None:
        with self._changed:
            self._ended = self._ended or "cut"
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._ended = self._ended or "closed"
            self._changed.notify_all()

    def events(self) -> Iterator[dict[str, Any]]:
        while True:
            with self._changed:
                while not self._queue and self._ended is None and time.time() < self._until:
                    if not self._engine.reachable:
                        self._ended = "cut"
                        break
                    self._changed.wait(0.05)
                if self._queue:
                    event = self._queue.pop(0)
                elif self._ended == "cut":
                    raise EngineUnavailable(f"the Docker engine at {self._engine.address} is not reachable (stream cut)")
                else:
                    return
            yield event


class FakeStream:
    def __init__(self, stdout: str):
        self._stdout = stdout

    def lines(self) -> Iterator[bytes]:
        yield from (line.encode() for line in self._stdout.splitlines())

    def close(self) -> None:
        pass




def workspace_labels(name: str, **more: str) -> dict[str, str]:
    """The labels Perry gives a workspace's container."""
    from perry_jupyter.core.names import LABEL_MANAGED, LABEL_WORKSPACE

    return {LABEL_MANAGED: "true", LABEL_WORKSPACE: name, **more}


def worker(answers: Callable[[list[str]], Any]) -> ExecHook:
    """An ``on_exec`` that answers `perry-worker ARGS --json` with ``answers(ARGS)`` as JSON (a PerryError
    raised by it becomes the worker's error answer) and every other command with exit 0."""
    import json

    def on_exec(container: str, command: list[str], **_: Any) -> dict[str, Any] | None:
        if command[:1] != ["perry-worker"] or command[1:2] == ["health"]:
            return None
        try:
            answer = answers([c for c in command[1:] if c != "--json"])
        except PerryError as e:
            answer = e.to_json()
        return {"stdout": json.dumps(answer) + "\n"}

    return on_exec


TEST_PREFIX = "perry-u-"
IMAGE = "perry-workspace:latest"


def core_config(**settings: Any):
    """PerryApp's defaults as the core sees them, with ``settings`` changed (the core has no defaults)."""
    import dataclasses

    from perry_jupyter.app import PerryApp

    return dataclasses.replace(PerryApp().core_config(), **settings)


def make_manager(state_dir, engine: FakeEngine, **settings: Any):
    """A WorkspaceManager on ``engine`` with its state in ``state_dir`` and the workspace image built."""
    from perry_jupyter.core.state import StateStore
    from perry_jupyter.core.workspaces import WorkspaceManager

    if IMAGE not in engine.images:
        engine.add_image(IMAGE)
    defaults = dict(prefix=TEST_PREFIX, image=IMAGE, ssh_port_range=(2640, 2699), ssh_public_keys=[],
                    git_config=None, agent_files=(), host_home=str(state_dir))
    return WorkspaceManager(engine, StateStore(state_dir), core_config(**{**defaults, **settings}))


class _Said:
    """An attached output that says ``lines`` and ends."""

    def __init__(self, lines: list[str]):
        self._lines = lines

    def lines(self):
        return iter(self._lines)

    def close(self) -> None:
        pass


class _EmptyLog:
    """A followed log that has nothing and ends at once."""

    def lines(self):
        return iter(())

    def close(self) -> None:
        pass
