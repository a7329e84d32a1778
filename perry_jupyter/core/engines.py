"""The Docker engines Perry manages workspaces on, by name.

An engine is reached the way Docker reaches it: the local socket, ``ssh://user@host[:port]``
(the `ssh` command, host keys accepted the first time and then pinned in Perry's own
known_hosts), ``tcp://host:2376`` with TLS files, or ``context:NAME`` for a Docker context
the user already defined. Engines come from configuration (``PerryApp.engines``) and from
run-time additions kept in ``engines.json`` in the state directory.

An engine that fails is left alone for a while (a back-off that doubles up to a minute), so
one machine down never slows the lists of the others; a call on one of its workspaces still
tries it, and the first success brings it back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlsplit

from .engine import Engine, redact_address
from .errors import Conflict, EngineUnavailable, InvalidInput, NotFound, PerryError
from .events import EventBus
from .state import LockedJsonFile

log = logging.getLogger(__name__)

LOCAL = "local"
ENGINE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
SCHEMES = ("unix", "ssh", "tcp", "npipe")
# The fields an engine's settings may have, as configuration names them (the API uses camelCase).
SPEC_FIELDS = ("address", "ssh_host", "ssh_key", "tls_ca", "tls_cert", "tls_key", "bind_address")
BACKOFF_FIRST, BACKOFF_MAX = 2.0, 60.0

T = TypeVar("T")


def engine_spec(name: str, value: Any) -> dict[str, Any]:
    """An engine's settings as a dict of SPEC_FIELDS, from an address or a dict; InvalidInput when wrong."""
    if not isinstance(name, str) or not ENGINE_NAME.fullmatch(name):
        raise InvalidInput(f"engine name {name!r} must be 1-32 lowercase letters, digits, - or _")
    spec = {"address": value} if isinstance(value, str) or value is None else value
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"engine {name!r}: give an address or a dict with {', '.join(SPEC_FIELDS)}")
    unknown = sorted(set(spec) - set(SPEC_FIELDS))
    if unknown:
        raise InvalidInput(f"engine {name!r}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(SPEC_FIELDS)}")
    spec = {k: v for k, v in spec.items() if v not in (None, "")}
    for key, v in spec.items():
        if not isinstance(v, str) or "\0" in v or "\n" in v:
            raise InvalidInput(f"engine {name!r}: {key} must be a string")
    address = spec.get("address", "")
    if address and not address.startswith("context:"):
        parts = urlsplit(address)
        if parts.scheme not in SCHEMES or not (parts.netloc or parts.path):
            raise InvalidInput(f"engine {name!r}: address {redact_address(address)!r} is none of unix:///path, "
                               "ssh://user@host[:port], tcp://host:port or context:NAME")
    return spec


def context_endpoint(context: str, docker_config: str | None = None) -> tuple[str, dict[str, str] | None]:
    """(address, tls files or None) of the Docker context ``context`` (as `docker context create` stores it)."""
    base = Path(docker_config or os.environ.get("DOCKER_CONFIG") or "~/.docker").expanduser() / "contexts"
    digest = hashlib.sha256(context.encode()).hexdigest()
    try:
        meta = json.loads((base / "meta" / digest / "meta.json").read_text(encoding="utf-8"))
        endpoint = meta["Endpoints"]["docker"]
        host = endpoint["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InvalidInput(f"there is no usable Docker context {context!r} in {base} "
                           "(`docker context ls` lists them)") from None
    tls_dir = base / "tls" / digest / "docker"
    files = {k: str(tls_dir / f"{k}.pem") for k in ("ca", "cert", "key") if (tls_dir / f"{k}.pem").is_file()}
    return host, (files or None)


def engine_host(address: str) -> str | None:
    """The machine an address names (None for a local socket)."""
    parts = urlsplit(address)
    return parts.hostname if parts.scheme in ("ssh", "tcp") else None


def control_socket(identity: str) -> str | None:
    """A path for ssh's shared connection of ``identity``, short enough for a unix socket (ssh adds a
    suffix to it while it binds, and state directories can be long): in a folder of this user's
    own under the temporary directory; None when that folder is not safely ours."""
    folder = Path(tempfile.gettempdir()) / f"perry-ssh-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None  # made by someone else: a socket there could be theirs
    return str(folder / hashlib.sha256(identity.encode()).hexdigest()[:24])


def default_placement(workspace: str, candidates: list[dict[str, Any]]) -> str:
    """Among the reachable engines with the image: the fewest running workspaces, then the most memory."""
    best = min(candidates, key=lambda c: (c["running"], -(c.get("memory") or 0), c["name"]))
    return best["name"]


class Engines:
    """The engines by name, each an `Engine`, with what is known of their health."""

    def __init__(self, configured: Mapping[str, Any] | None = None, state_dir: str | os.PathLike | None = None, *,
                 docker_host: str | None = None, engine: Any = None, events: EventBus | None = None,
                 factory: Callable[..., Any] = Engine, backoff: float = BACKOFF_FIRST):
        """``configured``: PerryApp.engines (default: ``local``, the engine of ``docker_host`` or the
        environment). ``engine``: an engine object to serve as ``local`` (tests pass in-memory ones)."""
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.events = events or EventBus()
        self._factory = factory
        self._lock = threading.RLock()
        self._configured = {name: engine_spec(name, value) for name, value in (configured or {}).items()}
        if not self._configured:
            self._configured = {LOCAL: {"address": docker_host} if docker_host else {}}
        self._engines: dict[str, Any] = {}
        if engine is not None:
            self._engines[LOCAL if LOCAL in self._configured else next(iter(self._configured))] = engine
        self._file = (LockedJsonFile(self.state_dir / "engines.json", default=lambda: {"engines": {}},
                                     what="engines file") if self.state_dir is not None else None)
        self._added: dict[str, dict[str, Any]] = self._read_added()
        self._down: dict[str, dict[str, Any]] = {}  # name -> {message, retry (monotonic), backoff}
        self._backoff = backoff  # the first; it doubles up to BACKOFF_MAX
        self._pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------ names and specs

    def _read_added(self) -> dict[str, dict[str, Any]]:
        if self._file is None:
            return {}
        added = {}
        for name, value in (self._file.read().get("engines") or {}).items():
            try:
                added[name] = engine_spec(name, value)
            except InvalidInput as e:
                log.warning("ignoring engine %s of %s: %s", name, self._file.path, e.message)
        return added

    def _specs(self) -> dict[str, dict[str, Any]]:
        return {**self._added, **self._configured}

    def names(self) -> list[str]:
        with self._lock:
            return list(self._specs())

    @property
    def default(self) -> str:
        """The engine of workspaces that name none (those made before there were several)."""
        names = self.names()
        return LOCAL if LOCAL in names else names[0]

    @property
    def single(self) -> bool:
        return len(self.names()) == 1

    def spec(self, name: str) -> dict[str, Any]:
        with self._lock:
            specs = self._specs()
        if name not in specs:
            raise NotFound(f"there is no engine {name!r}; `perry engines` lists them", code="engine_not_found")
        return specs[name]

    def get(self, name: str | None = None) -> Any:
        """The engine called ``name`` (the default one for None)."""
        name = name or self.default
        spec = self.spec(name)
        with self._lock:
            engine = self._engines.get(name)
            if engine is None:
                engine = self._engines[name] = self._build(name, spec)
            return engine

    def _build(self, name: str, spec: Mapping[str, Any]) -> Any:
        address = spec.get("address") or None
        tls = {k[4:]: spec[k] for k in ("tls_ca", "tls_cert", "tls_key") if spec.get(k)} or None
        if address and address.startswith("context:"):
            address, context_tls = context_endpoint(address[len("context:"):])
            tls = tls or context_tls
        ssh_options = self._ssh_options(name, spec, address) if address and address.startswith("ssh://") else None
        # The implicit local engine keeps the errors of the days of one engine.
        engine = self._factory(address, name=None if name == LOCAL and self.single else name, tls=tls,
                               ssh_options=ssh_options)
        if ssh_options and self.state_dir is not None:
            engine.ssh_log = str(self.state_dir / "engines" / f"{name}.ssh.log")
            engine.cli_dir = str(self.state_dir / "engines" / f"{name}.bin")  # the terminals' `ssh`
        return engine

    def _ssh_options(self, name: str, spec: Mapping[str, Any], address: str) -> list[str]:
        """Host keys accepted the first time, then pinned (a changed one fails); no prompts; a dead
        machine noticed within seconds; and one SSH connection per engine that every `ssh` shares.

        The sharing (ssh's ControlMaster) is what makes a remote engine fast: the client pools its
        plain API connections, but each exec takes a connection of its own, and a new SSH
        connection costs a handshake (about 0.4 s here) where a new session on a shared one costs
        a few milliseconds. The shared connection is this engine's alone (its socket is named by
        the state directory, the engine and its settings), so another engine at the same address
        still checks the host key for itself."""
        known_hosts = (self.state_dir / "engines" / "known_hosts") if self.state_dir is not None else None
        if known_hosts is not None:
            known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        options = {"BatchMode": "yes", "StrictHostKeyChecking": "accept-new", "ConnectTimeout": "5",
                   "ServerAliveInterval": "5", "ServerAliveCountMax": "2", "LogLevel": "ERROR"}
        if known_hosts is not None:
            options["UserKnownHostsFile"] = str(known_hosts)
            control = control_socket(f"{self.state_dir.resolve()}\0{name}\0{address}\0{spec.get('ssh_key')}")
            if control is not None:
                options.update(ControlMaster="auto", ControlPath=control, ControlPersist="60")
        if spec.get("ssh_key"):
            options["IdentityFile"] = str(Path(spec["ssh_key"]).expanduser())
            options["IdentitiesOnly"] = "yes"
        return [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]

    def public(self, name: str) -> dict[str, Any]:
        """An engine as answers show it: never a credential."""
        spec = self.spec(name)
        address = spec.get("address") or self.get(name).address
        return {"name": name, "address": redact_address(address), "sshHost": self.ssh_host(name),
                "configured": name in self._configured}

    def ssh_host(self, name: str, default: str | None = None) -> str | None:
        """Where the workspaces of engine ``name`` are reached by SSH: its ``ssh_host``, else its machine."""
        spec = self.spec(name)
        if spec.get("ssh_host"):
            return spec["ssh_host"]
        address = spec.get("address") or ""
        if address.startswith("context:"):
            try:
                address = context_endpoint(address[len("context:"):])[0]
            except PerryError:
                return default
        return engine_host(address) or default

    def bind_address(self, name: str, default: str) -> str:
        return self.spec(name).get("bind_address") or default

    def is_local(self, name: str) -> bool:
        """Whether the engine publishes its ports on this machine (so Perry can test a port is free)."""
        address = self.spec(name).get("address") or ""
        return not address or address.startswith(("unix://", "npipe://"))

    # ------------------------------------------------------------ run-time changes

    def add(self, name: str, value: Any) -> dict[str, Any]:
        spec = engine_spec(name, value)
        if not spec.get("address"):
            raise InvalidInput(f"engine {name!r} needs an address")
        if spec["address"].startswith("context:"):
            context_endpoint(spec["address"][len("context:"):])  # refused now, not at first use
        if self._file is None:
            raise Conflict("this Perry has no state directory to keep engines in")
        with self._lock, self._file.transaction() as data:
            if name in self._specs() or name in (data.get("engines") or {}):
                raise Conflict(f"there is already an engine {name!r}; remove it first")
            data.setdefault("engines", {})[name] = spec
            self._added[name] = spec
        log.info("engine %s added at %s", name, redact_address(spec["address"]))
        return self.public(name)

    def remove(self, name: str, holds: int) -> None:
        """Forget engine ``name``; refused while it holds ``holds`` > 0 workspaces or it is configured."""
        self.spec(name)
        if name in self._configured:
            raise Conflict(f"engine {name!r} comes from the configuration (PerryApp.engines): remove it there")
        if holds:
            raise Conflict(f"engine {name!r} holds {holds} workspace(s): delete or move them first")
        assert self._file is not None
        with self._lock, self._file.transaction() as data:
            (data.get("engines") or {}).pop(name, None)
            self._added.pop(name, None)
            engine = self._engines.pop(name, None)
            self._down.pop(name, None)
        if engine is not None:
            engine.close()
        log.info("engine %s removed", name)

    # ------------------------------------------------------------ health

    def resting(self, name: str) -> str | None:
        """Why engine ``name`` is left alone for now (it failed lately), or None."""
        with self._lock:
            down = self._down.get(name)
            if down is None or time.monotonic() >= down["retry"]:
                return None
            return down["message"]

    def unreachable(self, name: str) -> str | None:
        """Why engine ``name`` was found unreachable, until a call on it (or the probe) succeeds again."""
        with self._lock:
            down = self._down.get(name)
            return down["message"] if down else None

    def failed(self, name: str, error: PerryError) -> None:
        with self._lock:
            before = self._down.get(name)
            backoff = min(BACKOFF_MAX, before["backoff"] * 2) if before else self._backoff
            self._down[name] = {"message": error.message, "retry": time.monotonic() + backoff, "backoff": backoff}
        if before is None:
            log.warning("engine %s is down: %s", name, error.message)
            self.events.publish("engine.down", None, engine=name, message=error.message)

    def succeeded(self, name: str) -> None:
        with self._lock:
            was = self._down.pop(name, None)
        if was is not None:
            log.info("engine %s is back", name)
            self.events.publish("engine.up", None, engine=name)

    def probe(self) -> list[str]:
        """Ask each down engine whose back-off is over whether it is back; the names that are."""
        with self._lock:
            due = [n for n, down in self._down.items() if time.monotonic() >= down["retry"] and n in self._specs()]
        back = []
        for name in due:
            try:
                self.call(name, lambda engine: engine.facts())
            except PerryError:
                continue  # failed() doubled its back-off
            back.append(name)
        return back

    def call(self, name: str, fn: Callable[[Any], T]) -> T:
        """``fn(engine)``, keeping the engine's health up to date."""
        engine = self.get(name)
        if self.single:
            return fn(engine)
        try:
            result = fn(engine)
        except EngineUnavailable as e:
            self.failed(name, e)
            raise
        self.succeeded(name)
        return result

    def each(self, fn: Callable[[str, Any], T], names: list[str] | None = None,
             rest: bool = True) -> tuple[dict[str, T], dict[str, str]]:
        """``fn(name, engine)`` on every engine at once: ({name: answer}, {name: why it is unreachable}).

        Engines resting after a failure are not asked (unless ``rest`` is False). With one engine this is a plain call, whose
        errors are raised as they were before there were several."""
        names = self.names() if names is None else names
        if len(names) == 1 and self.single:
            return {names[0]: fn(names[0], self.get(names[0]))}, {}
        answers: dict[str, T] = {}
        down: dict[str, str] = {}
        asked = []
        for name in names:
            why = self.resting(name) if rest else None
            if why is not None:
                down[name] = why
            else:
                asked.append(name)
        futures = {name: self._executor().submit(self.call, name, lambda e, n=name: fn(n, e)) for name in asked}
        for name, future in futures.items():
            try:
                answers[name] = future.result()
            except EngineUnavailable as e:
                down[name] = e.message
        return answers, down

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(8, thread_name_prefix="perry-engines")
            return self._pool

    def survey(self, counts: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
        """Every engine as `perry engines` shows it; ``counts``: {name: {running, total}} of workspaces."""
        def facts(name: str, engine: Any) -> dict[str, Any]:
            started = time.monotonic()
            answer = engine.facts()
            return {**answer, "rttMs": round((time.monotonic() - started) * 1000, 1)}

        names = self.names()
        try:
            answers, down = self.each(facts, names, rest=False)
        except EngineUnavailable as e:  # the one engine there is
            answers, down = {}, {names[0]: e.message}
        out = []
        for name in names:
            row = {**self.public(name), "reachable": name in answers, "version": None, "cpus": None,
                   "memory": None, "rttMs": None, "error": down.get(name),
                   "workspaces": {"running": 0, "total": 0, **counts.get(name, {})}}
            if name in answers:
                row.update({k: answers[name][k] for k in ("version", "cpus", "memory", "rttMs")}, error=None)
            out.append(row)
        return out
