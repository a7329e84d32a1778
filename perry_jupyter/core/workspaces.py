"""The workspace manager: Perry's promise (the state file) kept true on Docker.

Docker is the truth for what runs; the state file is the truth for what Perry
promised. Every method here blocks (Docker calls); the server runs them on an
executor.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import os
import re
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from . import archive, limits as resource_limits, project_setup, updates
from .activity import Activity
from .clone import REDACTED, redact, split_credentials
from .config import WorkspaceSettings
from .container_view import ContainerViews
from .engine import CapabilitiesRefused, DockerError, Engine, PortTaken
from .engines import Engines, default_placement
from .errors import Conflict, EngineUnavailable, InvalidInput, NotFound, PerryError
from .events import EventBus
from .image import AGENTS_LABEL, derives_from_workspace, not_derived, validate_reference
from .inner_engines import InnerEngines
from .startup import Startup
from .operations import Claim, WorkspaceOperations
from .names import (
    DOCKER_DIR,
    HOME_DIR,
    LABEL_CREATED,
    LABEL_DIND,
    LABEL_MANAGED,
    LABEL_WORKSPACE,
    Naming,
    validate_name,
)
from .state import StateStore

log = logging.getLogger(__name__)

# Docker's default capabilities plus what a nested dockerd needs, minus the ones
# hosts without a full bounding set refuse (see shared/ENVIRONMENT.md).
DIND_CAPABILITIES = [
    "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "SYS_TIME",
    "SYS_NICE", "SYS_BOOT", "SYS_PACCT", "SYS_TTY_CONFIG", "MKNOD", "AUDIT_CONTROL",
    "AUDIT_READ", "BLOCK_SUSPEND", "DAC_READ_SEARCH", "IPC_LOCK", "IPC_OWNER",
    "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "NET_BROADCAST",
    "SYSLOG", "WAKE_ALARM",
]
# ("systempaths=unconfined" is a docker CLI option the engine API refuses.)
DIND_SECURITY_OPT = ["seccomp=unconfined", "apparmor=unconfined"]

ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CLONE_SRC = "/perry/clone-src"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


Progress = Callable[[str], None]


def _no_progress(message: str) -> None:
    pass


Placement = Callable[[str, list], str]


class WorkspaceManager:
    def __init__(self, engine: Engine | Engines, store: StateStore, settings: WorkspaceSettings,
                 events: EventBus | None = None, placement: Placement | None = None):
        """``engine``: the engines (an `Engines`), or one engine object that is then the only one.
        ``placement(workspace, candidates)`` names the engine of a create that names none."""
        self.store = store
        self.settings = settings
        self.events = events or EventBus()
        self.engines = engine if isinstance(engine, Engines) else Engines(engine=engine, events=self.events)
        self.placement = placement or default_placement
        self.naming = Naming(settings.prefix)
        # What `auto` settled on for each engine's host, so later creates skip the failed try.
        self._dind_resolved: dict[str, str] = {}
        self.operations = WorkspaceOperations()
        # When each workspace was last used (the idle check reads it; see core/idle.py).
        self.activity = Activity()
        self._waking: dict[str, threading.Lock] = {}
        self._waking_lock = threading.Lock()
        self.inner_engines = InnerEngines(self.announce)
        # Containers started and not yet waited for (wait_ready takes them).
        self._startups: dict[str, Startup] = {}
        # list()'s last answer, what it was made of and its serial: the same inputs give the same list.
        self._listed: tuple[Any, int, list[dict[str, Any]]] | None = None
        self._list_serials = itertools.count(1)
        # The lists' containers, from memory (see core/container_view.py); everything that changes
        # a container asks Docker itself.
        self.views = ContainerViews(self.engines, lambda engine_name, name: self._containers(name, engine=engine_name),
                                    self.naming.container, settings.prefix, on_died=self.inner_engines.died)

    @property
    def engine(self) -> Engine:
        """The default engine (the only one, unless several are configured)."""
        return self.engines.get()

    def engine_name(self, name: str, record: Mapping[str, Any] | None = None) -> str:
        """The engine workspace ``name`` lives on (records from before engines: the default one)."""
        if self.engines.single:
            return self.engines.default
        if record is None:
            record = self.store.get_workspace(name) or {}
        return record.get("engine") or self.engines.default

    def engine_of(self, name: str) -> Engine:
        """The engine everything on workspace ``name`` goes to."""
        engine_name = self.engine_name(name)
        try:
            return self.engines.get(engine_name)
        except NotFound:
            raise EngineUnavailable(f"workspace {name!r} is on engine {engine_name!r}, which is no longer "
                                    "configured; add it again (`perry engines add`)") from None

    # ------------------------------------------------------------------ reads

    def list(self) -> list[dict[str, Any]]:
        """All workspaces: each engine's containers from its view (one Docker call per engine while
        the view is not live), the engines asked at once; an unreachable engine's workspaces show
        `unreachable` with their last known state."""
        return list(self.listing()[1])

    def listing(self) -> tuple[int, list[dict[str, Any]]]:
        """list() and the serial of its answer: the same serial, the same list (do not change it)."""
        text = self.store.file.text()
        read, down = self.engines.each(lambda engine_name, _: self.views.read(engine_name))
        versions = {name: version for name, (_, version) in read.items()}
        key = self._list_key(text, versions, down)
        listed = self._listed
        if None not in versions.values() and listed is not None and listed[0] == key:
            return listed[1], listed[2]
        found = {name: containers for name, (containers, _) in read.items()}
        records = self.store.workspaces_of(text)
        default = self.engines.default
        where: dict[str, str] = {}
        for engine_name in found:
            for ws in found[engine_name]:
                where.setdefault(ws, engine_name)
        out = []
        for n in sorted(set(records) | set(where)):
            record = records.get(n)
            engine_name = (record or {}).get("engine") or (default if record is not None else where[n])
            if engine_name not in found:
                out.append(self._unreachable(n, record or {}, engine_name, down.get(engine_name)))
            else:
                out.append(self._describe(n, record, found[engine_name].get(n), engine_name))
        serial = next(self._list_serials)
        self._listed = (key, serial, out)
        return serial, out

    def kept_listing(self) -> tuple[int, list[dict[str, Any]]] | None:
        """listing() when it would answer with the list it made last time and can tell so without a
        Docker call or a file read (a ``stat`` of the state file, the views' versions in memory): for a
        caller on an event loop. None when listing() must run (on an executor)."""
        listed = self._listed
        if listed is None:
            return None
        known, text = self.store.file.known_text()
        if not known:
            return None
        versions, down = {}, {}
        names = self.engines.names()
        for engine_name in names:
            why = None if len(names) == 1 and self.engines.single else self.engines.resting(engine_name)
            if why is not None:
                down[engine_name] = why
                continue
            version = self.views.known(engine_name)
            if version is None:
                return None
            versions[engine_name] = version
        if listed[0] != self._list_key(text, versions, down):
            return None
        return listed[1], listed[2]

    def _list_key(self, text: str | None, versions: dict[str, int | None], down: dict[str, str]) -> tuple:
        """What a list is made of (the state file's text, the views' versions, the engines found down, the
        settings a description reads, the inner engines' states): a list made with the same key is still true."""
        # What a description reads besides the record and the container (see _describe).
        settings = (self.settings.image, self.settings.idle_timeout, self.settings.bind_address,
                    {name: self.engines.spec(name) for name in self.engines.names()})
        return (text, settings, versions, down, self.inner_engines.version)

    def get(self, name: str) -> dict[str, Any]:
        validate_name(name)
        record = self.store.get_workspace(name)
        if record is None and not self.engines.single:
            found, _ = self.engines.each(lambda engine_name, _: self._containers(name, engine=engine_name))
            for engine_name, containers in found.items():
                if name in containers:
                    return self._describe(name, None, containers[name], engine_name)
            raise NotFound(f"workspace {name!r} does not exist")
        engine_name = self.engine_name(name, record)
        try:
            container = self._containers(name, engine=engine_name).get(name)
        except EngineUnavailable as e:
            if record is None or self.engines.single:
                raise
            return self._unreachable(name, record, engine_name, e.message)
        if record is None and container is None:
            raise NotFound(f"workspace {name!r} does not exist")
        return self._describe(name, record, container, engine_name)

    def running_containers(self) -> list[tuple[str, str, str]]:
        """(workspace, engine, container id) of every running workspace container, on the reachable
        engines (from the views, as list())."""
        found, _down = self.engines.each(lambda engine_name, _: self.views.containers(engine_name))
        return [(name, engine_name, c["id"]) for engine_name, containers in found.items()
                for name, c in containers.items() if c["state"] == "running"]

    def _unreachable(self, name: str, record: dict[str, Any], engine_name: str, why: str | None) -> dict[str, Any]:
        ws = self._describe(name, {**record, "status": "creating"}, None, engine_name)
        ws.update(status="unreachable", lastStatus=record.get("status"),
                  error=why or f"engine {engine_name!r} is not reachable")
        return ws

    def _containers(self, name: str | None = None, engine: str | None = None) -> dict[str, dict[str, Any]]:
        labels = {LABEL_MANAGED: "true"}
        if name is not None:
            labels[LABEL_WORKSPACE] = name
        engine_name = engine or self.engines.default
        with self.engines.get(engine_name).errors("listing containers"):
            # The name filter keeps other prefixes' containers out of the answer (it matches
            # substrings, so the exact check below still decides).
            found = self.engines.call(engine_name, lambda e: e.containers(labels, name=self.naming.container(name or "")))
        out = {}
        for c in found:
            ws = c["labels"].get(LABEL_WORKSPACE)
            # Only containers of our prefix: two Perry servers with different prefixes share an engine.
            if ws and c["name"] == self.naming.container(ws):
                out[ws] = c
        return out

    def _describe(self, name: str, record: dict | None, container: dict | None,
                  engine_name: str | None = None) -> dict[str, Any]:
        # What it reads of the settings and the engines is in list()'s key: add there what you add here.
        record = record or {}
        engine_name = engine_name or self.engines.default
        labels = (container or {}).get("labels") or {}
        status = record.get("status", "stopped")
        error = record.get("error")
        if status != "creating":
            if container is None:
                status = "error"
                error = error or (f"container {self.naming.container(name)} is missing; "
                                  "`perry start` recreates it from its volumes")
            else:
                state = container["state"]
                if state == "running" and record.get("setupFailed"):
                    status = "error"  # its devcontainer's command failed: kept running to be looked into
                elif state == "running":
                    status, error = "running", None
                elif state == "restarting":
                    status, error = "error", "the container keeps exiting and restarting; see `perry logs`"
                else:
                    status = "error" if status == "error" else "stopped"
        ssh_port = record.get("ports", {}).get("ssh")
        if ssh_port is None and container is not None:
            ssh_port = _published_ssh_port(container)
        ssh_host = self._ssh_host(engine_name)
        return {
            "name": name,
            "status": status,
            "engine": engine_name,
            "containerId": (container or {}).get("id") or record.get("containerId"),
            "containerName": self.naming.container(name),
            "created": record.get("created") or labels.get(LABEL_CREATED),
            "image": (container or {}).get("image") or record.get("customImage") or record.get("image")
            or self.settings.image,
            "ports": {"ssh": ssh_port},
            "sshHost": ssh_host,
            "sshCommand": ssh_command(ssh_port, ssh_host),
            "dind": record.get("dind") or labels.get(LABEL_DIND),
            # Its own Docker engine: "starting", "ready" or "off" while it runs (None when not known).
            "dindStatus": self._dind_status(name, status, record.get("dind") or labels.get(LABEL_DIND)),
            # Redacted again for records an older Perry wrote with the credentials in.
            "clone": redact(record["clone"]) if record.get("clone") else None,
            "projectDir": record.get("projectDir") or HOME_DIR,
            # The agents' CLIs its image carries (containers inherit the image's labels);
            # None when that is not known (no container, or an image from before the label).
            "agents": labels[AGENTS_LABEL].split() if AGENTS_LABEL in labels else None,
            "error": error,
            "idleTimeout": self.idle_timeout(record),
            # Why Perry stopped it ("idle" or "user"); None when it stopped otherwise (Docker, a crash).
            "stopReason": record.get("stopReason") if status == "stopped" else None,
            "volumes": {"home": self.naming.home_volume(name), "docker": self.naming.docker_volume(name)},
            **project_setup.workspace_fields(record),
            "limits": resource_limits.public(record.get("limits")),
        }

    def _ssh_host(self, engine_name: str) -> str:
        """Where SSH reaches the workspaces of an engine: its ``ssh_host``, else its machine (for a
        remote one) or the address ports are published on (for this machine's)."""
        bind = self._bind_address(engine_name)
        if self.engines.single:
            return self.engines.ssh_host(engine_name) or bind
        try:
            return self.engines.ssh_host(engine_name) or bind
        except NotFound:
            return bind

    def _bind_address(self, engine_name: str) -> str:
        try:
            return self.engines.bind_address(engine_name, self.settings.bind_address)
        except NotFound:
            return self.settings.bind_address

    # --------------------------------------------------------------- create

    def create(self, name: str, *, clone: str | None = None, env: Mapping[str, Any] | None = None,
               engine: str | None = None, image: str | None = None, limits: Mapping[str, Any] | None = None,
               idle_timeout: Any = None,
               progress: Progress = _no_progress) -> dict[str, Any]:
        """``image``: one built FROM the workspace image (`perry build --dockerfile`); default Perry's.
        ``limits``: {cpus, memory, pids} (see core/limits.py); those it lacks take PerryApp's defaults."""
        validate_name(name)
        clone = _validate_clone(clone)
        env = validate_env(env)
        if image is not None:
            validate_reference(image)
        chosen_limits = {**resource_limits.parse(self.settings.default_limits()), **resource_limits.parse(limits or {})}
        idle_timeout = updates.validate_idle_timeout(idle_timeout)
        if engine is not None:
            if not isinstance(engine, str):
                raise InvalidInput("engine must be the name of an engine (`perry engines` lists them)")
            try:
                self.engines.spec(engine)
            except NotFound as e:
                raise InvalidInput(e.message) from None
        with self.operations.hold(name, "create"):
            return self._create(name, clone, env, engine, chosen_limits, progress, image, idle_timeout)

    def _create(self, name: str, clone: str | None, env: dict[str, str], engine: str | None,
                limits: dict[str, Any], progress: Progress, image: str | None = None,
                idle_timeout: int | None = None) -> dict[str, Any]:
        engine = engine or self.place(name)
        self.require_image(engine, image)
        if limits.get("cpus"):
            self._require_cpus(engine, limits["cpus"])
        if self._containers(name, engine=engine):
            raise Conflict(f"workspace {name!r} already exists (a container {self.naming.container(name)} "
                           "is labelled as it)")
        # The record (state file, API, events) keeps the URL without its credentials; the
        # credentials live in this call only, until git has used them.
        record = self.reserve(name, clone=redact(clone) if clone else None, env=env, engine=engine,
                               image=image if image != self.settings.image else None, limits=limits,
                               idle_timeout=idle_timeout)
        progress = self._publishing(name, progress)
        self.events.publish("workspace.created", name, data=self._describe(name, record, None, engine))
        created_volumes: list[str] = []
        try:
            progress("creating volumes")
            created_volumes = self.ensure_volumes(name)
            container_id = self.create_container(name, record, progress)
            record = self.store.patch_workspace(name, containerId=container_id, dind=record["dind"],
                                                ports=record["ports"]) or record
            self.complete(name, record, progress, clone_source=clone)
        except project_setup.SetupFailed:
            self.announce(name)  # kept, `error`, with the command's output in its message
            raise
        except BaseException as e:
            log.warning("creating workspace %s failed: %s", name, redact(str(e)))
            self.rollback(name, created_volumes)
            self.events.publish("workspace.deleted", name)
            raise
        return self.announce(name)

    def _publishing(self, name: str, progress: Progress) -> Progress:
        """The caller's progress, and a `workspace.progress` event for every client."""
        def both(message: str) -> None:
            progress(message)
            self.events.publish("workspace.progress", name, data={"message": message})

        return both

    def complete(self, name: str, record: dict[str, Any], progress: Progress,
                  clone_source: str | None = None, started: bool = True, copy_files: bool = False) -> None:
        """What follows a running container, for create, start and an interrupted create alike:
        ready, the first clone made; then the workspace is running. The user's files went in
        with the worker as the container started, unless ``copy_files`` asks for them here.

        ``clone_source`` is the clone URL with its credentials, which only a create has; a
        create finished later clones the record's URL, which has none."""
        self.wait_ready(name, progress)
        if copy_files:
            progress("copying keys, git config and the worker")
            self._copy_user_files(name)
        changes: dict[str, Any] = {"status": "running", "error": None, "unfinished": None, "setupFailed": None,
                                   "stopReason": None}
        if _unfinished(record):
            clone = clone_source or record.get("clone")
            # A create cut short after its clone (in the project's own set-up, say) keeps that clone.
            cloned = None if clone_source or not clone else self._cloned_before(name)
            changes["projectDir"] = cloned or (self._clone(name, clone, record.get("env") or {}, progress)
                                               if clone else HOME_DIR)
            if clone:
                project_setup.after_clone(self, name, record, changes["projectDir"], progress)
        try:
            project_setup.lifecycle(self, name, record, changes.get("projectDir") or record.get("projectDir")
                                    or HOME_DIR, progress, started=started)
        except project_setup.SetupFailed as e:
            self.store.patch_workspace(name, **{**changes, "status": "error", "error": e.message, "setupFailed": True})
            raise
        self.store.patch_workspace(name, **changes)
        self.activity.touch(name)  # a start is a use: its idle time counts from now
        progress("ready")

    def announce(self, name: str) -> dict[str, Any]:
        ws = self.get(name)
        self.events.publish("workspace.updated", name, data=ws)
        return ws

    def place(self, name: str) -> str:
        """The engine a new workspace goes to when the create names none: the placement rule's
        choice among the reachable engines that have the image."""
        if self.engines.single:
            return self.engines.default

        def candidate(engine_name: str, engine: Engine) -> dict[str, Any] | None:
            if engine.image(self.settings.image) is None:
                return None
            running = sum(c["state"] == "running" for c in self._containers(engine=engine_name).values())
            return {"name": engine_name, "running": running, "memory": engine.facts().get("memory")}

        answers, down = self.engines.each(candidate)
        candidates = [c for c in answers.values() if c is not None]
        if not candidates:
            where = "; ".join(f"{n}: {why}" for n, why in down.items())
            raise PerryError(f"no reachable engine has the workspace image {self.settings.image}: run "
                             f"`perry build --engine NAME`{f' ({where})' if where else ''}",
                             code="image_missing", status=409)
        chosen = self.placement(name, candidates)
        if chosen not in {c["name"] for c in candidates}:
            raise PerryError(f"the placement rule chose {chosen!r}, which is none of "
                             f"{', '.join(c['name'] for c in candidates)}", code="placement_failed")
        return chosen

    def require_image(self, engine: str | None = None, image: str | None = None) -> None:
        target = self.engines.get(engine)
        if image is not None and image != self.settings.image:
            with target.errors("looking up the workspace's image"):
                found = target.image(image)
            if found is None:
                raise PerryError(f"the engine has no image {image}: build it FROM {self.settings.image} with "
                                 f"`perry build --dockerfile PATH --tag {image}`", code="image_missing", status=409)
            if not derives_from_workspace(found):
                raise not_derived(image, self.settings.image)
            return
        with target.errors("looking up the workspace image"):
            if target.image(self.settings.image) is None:
                if self.engines.single:
                    raise PerryError(f"the workspace image {self.settings.image} is not built yet: run `perry build`",
                                     code="image_missing", status=409)
                raise PerryError(f"engine {engine!r} has no workspace image {self.settings.image}: run "
                                 f"`perry build --engine {engine}` (or copy it from an engine that has it: "
                                 f"`perry build --engine {engine} --copy-from NAME`)", code="image_missing", status=409)

    def _require_cpus(self, engine_name: str, cpus: float) -> None:
        """Docker refuses more CPUs than the machine has; said here as the user's mistake, not the engine's."""
        engine = self.engines.get(engine_name)
        with engine.errors("asking the engine about its CPUs"):
            has = engine.facts().get("cpus")
        if has and cpus > has:
            raise InvalidInput(f"cpus {cpus:g} is more than the {has} CPUs engine {engine_name!r} has")

    def reserve(self, name: str, *, clone: str | None, env: dict[str, str], engine: str,
                 image: str | None = None, limits: dict[str, Any] | None = None,
                 idle_timeout: int | None = None) -> dict[str, Any]:
        """Claim the name and an SSH port in one locked step, so concurrent creates cannot collide."""
        with self.store.transaction() as data:
            if name in data["workspaces"]:
                raise Conflict(f"workspace {name!r} already exists")
            used = {r.get("ports", {}).get("ssh") for r in data["workspaces"].values()
                    if self.engine_name(r.get("name", ""), r) == engine}
            port = self._free_port(used, engine)
            record = {
                "name": name,
                "engine": engine,
                "status": "creating",
                # Until every step of the create ran (a crash may cut it short): see complete.
                "unfinished": True,
                "created": _now(),
                "image": image or self.settings.image,
                # An image of the user's (or the devcontainer's): its container is always made of it,
                # where one of Perry's follows PerryApp.image.
                "customImage": image,
                "ports": {"ssh": port},
                "clone": clone,
                "env": env,
                "limits": limits or {},
                "dind": None,
                "containerId": None,
                "error": None,
                "idleTimeout": idle_timeout,
            }
            data["workspaces"][name] = record
            return copy.deepcopy(record)

    def _free_port(self, used: set, engine: str) -> int:
        lo, hi = self.settings.ssh_port_range
        # Another machine's ports cannot be tried from here: its engine refuses a taken one at start.
        local = self.engines.single or self.engines.is_local(engine)
        for port in range(lo, hi + 1):
            if port not in used and (not local or port_free(self._bind_address(engine), port)):
                return port
        raise Conflict(f"no free SSH port left in {lo}-{hi}; widen PerryApp.ssh_port_range or delete workspaces")

    def volumes(self, name: str) -> dict[str, str]:
        """The Docker volumes of workspace ``name`` and where its container mounts them: what a
        move or a clone copies, and a delete removes."""
        return {self.naming.home_volume(name): HOME_DIR, self.naming.docker_volume(name): DOCKER_DIR}

    def ensure_volumes(self, name: str) -> list[str]:
        created = []
        engine = self.engine_of(name)
        with engine.errors("creating volumes"):
            for vol in self.volumes(name):
                if not engine.volume_exists(vol):
                    engine.create_volume(vol, labels={LABEL_MANAGED: "true", LABEL_WORKSPACE: name})
                    created.append(vol)
        return created

    def container_spec(self, name: str, record: dict[str, Any], dind: str) -> dict[str, Any]:
        """The container of workspace ``name`` as `Engine.create_container` takes it (the record
        gives its created time, SSH port, env and clone source; ``dind`` its Docker-in-Docker mode)."""
        env = {**self.settings.env_for(name), **project_setup.container_env(record), **(record.get("env") or {})}
        env["PERRY_WORKSPACE"] = name
        env["PERRY_DIND"] = "0" if dind == "off" else "1"
        volumes = {volume: {"bind": path, "mode": "rw"} for volume, path in self.volumes(name).items()}
        clone = record.get("clone")
        if clone and clone.startswith("/"):
            # Kept mounted, so `git fetch` from origin keeps working later.
            volumes[clone] = {"bind": CLONE_SRC, "mode": "ro"}
        kwargs: dict[str, Any] = dict(
            image=record.get("customImage") or self.settings.image,
            name=self.naming.container(name),
            hostname=name,
            labels={LABEL_MANAGED: "true", LABEL_WORKSPACE: name,
                    LABEL_CREATED: record["created"], LABEL_DIND: dind},
            environment=env,
            volumes=volumes,
            ports={"22/tcp": (self._bind_address(self.engine_name(name, record)), record["ports"]["ssh"])},
            network=self.settings.network,
            restart_policy={"Name": self.settings.restart_policy} if self.settings.restart_policy != "no" else None,
            detach=True,
            stop_signal="SIGTERM",
            **resource_limits.create_kwargs(record.get("limits") or {}),
        )
        if dind == "privileged":
            kwargs["privileged"] = True
        elif dind == "capabilities":
            kwargs.update(
                cap_add=DIND_CAPABILITIES,
                security_opt=DIND_SECURITY_OPT,
                cgroupns="host",
            )
            volumes["/sys/fs/cgroup"] = {"bind": "/sys/fs/cgroup", "mode": "rw"}
        return {k: v for k, v in kwargs.items() if v is not None}

    def create_container(self, name: str, record: dict[str, Any], progress: Progress) -> str:
        """Create and start the container, trying privileged first in `auto` mode; its id."""
        engine_name = self.engine_name(name, record)
        engine = self.engines.get(engine_name)
        with engine.errors("creating the workspace container"):
            engine.ensure_network(self.settings.network, labels={LABEL_MANAGED: "true"})
            wanted = record.get("dind") or self.settings.dind_mode
            resolved = self._dind_resolved.get(engine_name)
            if wanted == "auto":
                wanted = resolved or "privileged"
                fallback = resolved is None
            else:
                fallback = False
            files = self._startup_files()
            while True:
                progress(f"creating container {self.naming.container(name)} (docker-in-docker: {wanted})")
                container = engine.create_container(**self.container_spec(name, record, wanted))
                try:
                    progress("starting container")
                    self._start(name, engine, container, files)
                except PortTaken:
                    # Someone outside Perry took the port between our check and the start.
                    raise Conflict(f"SSH port {record['ports']['ssh']} was taken while creating {name!r}; "
                                   "try again") from None
                except CapabilitiesRefused:
                    engine.remove_container(container)
                    if fallback and wanted == "privileged":
                        # This host's capability bounding set is short: use the explicit set.
                        log.info("privileged containers are refused here; using the capability set")
                        wanted, fallback = "capabilities", False
                        continue
                    raise
                except DockerError:
                    engine.remove_container(container)
                    raise
                if self.settings.dind_mode == "auto":
                    self._dind_resolved[engine_name] = wanted
                record["dind"] = wanted
                return container

    def _start(self, name: str, engine: Engine, container: str, files: bytes) -> None:
        """Start the container with its output attached (readiness is its entrypoint's word) and
        copy the worker and the user's files in while it boots; wait_ready waits for both."""
        output = engine.attach_output(container)
        try:
            engine.start(container)
        except BaseException:
            output.close()
            raise

        def copy() -> None:
            with engine.errors("copying the worker and your files into the workspace"):
                engine.put_archive(container, "/", files)

        self._forget_startup(name)
        self._startups[name] = Startup(output, copy)

    def _forget_startup(self, name: str) -> None:
        """A start nobody waited for (its create failed on the way): let it go."""
        startup = self._startups.pop(name, None)
        if startup is not None:
            startup.abandon()

    def recreate_container(self, name: str, record: dict[str, Any], progress: Progress) -> None:
        """Make the running container again from ``record`` (its image and environment changed),
        on the same volumes and port; ready when this returns."""
        self._remove_container(name)
        container_id = self.create_container(name, record, progress)
        self.store.patch_workspace(name, containerId=container_id, dind=record["dind"])
        self.wait_ready(name, progress)

    def wait_ready(self, name: str, progress: Progress, engine_name: str | None = None) -> None:
        """Block until sshd answers inside the workspace: for a container Perry just started, its
        entrypoint's word on its output; else one exec that waits inside (no sleeps here).
        ``engine_name``: where its container is, when not yet where its record says (a move)."""
        progress("waiting for the workspace to be ready")
        timeout = self.settings.ready_timeout
        startup = self._startups.pop(name, None)
        if startup is not None:
            ready, dind = startup.wait(timeout)
            if not ready:
                self._not_ready(name, engine_name, "its entrypoint did not say it is ready")
            if dind is not None:
                self.inner_engines.started(name, dind, lambda: self._wait_inner_engine(name, engine_name))
                return
        result = self.run(name, ["perry-worker", "health", "--wait", str(timeout), "--json"], user="root",
                          engine_name=engine_name)
        if result["exitCode"] != 0:
            self._not_ready(name, engine_name, result["stdout"] or result["stderr"])
        self.inner_engines.started(name, _health_report(result["stdout"]).get("dind"),
                                   lambda: self._wait_inner_engine(name, engine_name))

    def _not_ready(self, name: str, engine_name: str | None, said: str) -> None:
        engine = self.engines.get(engine_name) if engine_name else self.engine_of(name)
        with engine.errors("reading logs"):
            logs = engine.logs(self.naming.container(name), tail=30)
        raise PerryError(f"workspace {name!r} did not become ready within {self.settings.ready_timeout:.0f}s: "
                         f"{said}\n{logs}", code="not_ready", status=504)

    def _wait_inner_engine(self, name: str, engine_name: str | None = None) -> bool:
        """Block until the workspace's own Docker engine has answered (one exec that waits inside):
        True when it did, False when it did not in time; raises when the wait itself ended (a stop)."""
        timeout = self.settings.ready_timeout
        result = self.run(name, ["perry-worker", "health", "--wait", str(timeout), "--dind", "--json"], user="root",
                          engine_name=engine_name)
        if result["exitCode"] not in (0, 1):
            raise PerryError(f"the wait ended with status {result['exitCode']}")
        return result["exitCode"] == 0

    def _dind_status(self, name: str, status: str, mode: str | None) -> str | None:
        if status != "running":
            return None
        return "off" if mode == "off" else self.inner_engines.state(name)

    def _cloned_before(self, name: str) -> str | None:
        """The project directory an earlier clone into this workspace made (the entrypoint's
        marker names it), if it is still there."""
        marker = f"{HOME_DIR}/.perry/clone.done"
        result = self.run(name, ["sh", "-c", 'd=$(cat "$1") && [ -d "$d/.git" ] && echo "$d"', "sh", marker],
                          user="workspace")
        return (result["stdout"].strip() or None) if result["exitCode"] == 0 else None

    def _clone(self, name: str, source: str, env: Mapping[str, str], progress: Progress) -> str:
        """Clone ``source`` into the home through one exec (the entrypoint's `clone`, as root);
        returns the project directory. Credentials go in that exec's environment only, which
        neither `docker inspect` nor the home keeps: git gets them from a one-time credential
        helper, and .git/config keeps the URL without them unless the create's env asks with
        PERRY_CLONE_KEEP_CREDENTIALS=1."""
        shown = redact(source)
        progress(f"cloning {shown}")
        timeout = self.settings.clone_timeout
        clone_env = {"PERRY_CLONE_TIMEOUT": str(int(timeout))}
        if source.startswith("/"):
            clone_env["PERRY_CLONE_URL"] = CLONE_SRC
        else:
            url, user, password = split_credentials(source)
            clone_env["PERRY_CLONE_URL"] = url
            if user == REDACTED and password is None:
                user = None  # a record's URL: its credentials were never kept
            if user is not None:
                clone_env.update(PERRY_CLONE_USERNAME=user, PERRY_CLONE_PASSWORD=password or "")
                if env.get("PERRY_CLONE_KEEP_CREDENTIALS", "") not in ("", "0"):
                    clone_env["PERRY_CLONE_ORIGIN"] = source
        result = self.run(name, ["perry-entrypoint", "clone"], user="root", env=clone_env)
        if result["exitCode"] == 0:
            return result["stdout"].strip() or HOME_DIR
        if result["exitCode"] == 124:
            raise PerryError(f"cloning {shown} took longer than {timeout:.0f}s",
                             code="clone_timeout", status=504)
        detail = " ".join(redact(result["stderr"] or result["stdout"]).split())
        if source.startswith("/"):
            detail = detail.replace(CLONE_SRC, source)  # git names the mount; the user knows the host path
        raise PerryError(f"cloning {shown} failed: {detail}", code="clone_failed", status=422)

    def rollback(self, name: str, created_volumes: Iterable[str]) -> None:
        self._forget_startup(name)
        try:
            engine = self.engine_of(name)
            engine.remove_container(self.naming.container(name))
            for vol in created_volumes:
                engine.remove_volume(vol)
        except Exception:
            log.exception("cleaning up after the failed create of %s", name)
        self.store.remove_workspace(name)

    # ------------------------------------------------------------ lifecycle

    def start(self, name: str, progress: Progress = _no_progress, *, claim: Claim | None = None) -> dict[str, Any]:
        with self.operations.hold(name, "start", claim):
            record = self.store.get_workspace(name)
            if record is None:
                engine_name = self.get(name)["engine"]  # 404 unless some engine has its container
            else:
                engine_name = self.engine_name(name, record)
            containers = self._containers(name, engine=engine_name)
            if record is None and not containers:
                raise NotFound(f"workspace {name!r} does not exist")
            if record is None:
                record = self._adopt(name, containers[name], engine_name)
            engine = self.engines.get(engine_name)
            container = containers.get(name)
            if container is not None and _unfinished(record) and container["state"] != "running":
                # Left by a create cut short (maybe the privileged try this host refuses): nothing
                # of the user's lives in it, so it is made again like a missing one.
                self._remove_container(name)
                container = None
            if container is None:
                self.require_image(engine_name, record.get("customImage"))
            with engine.errors(f"starting workspace {name!r}"):
                if container is None:
                    # Removed behind Perry's back (or a crash mid-create): rebuild it on its volumes.
                    progress("recreating the container on its volumes")
                    self.ensure_volumes(name)
                    record["ports"] = record.get("ports") or {}
                    port = record["ports"].get("ssh")
                    # No container held its port meanwhile: someone else may have taken it.
                    local = self.engines.single or self.engines.is_local(engine_name)
                    if not port or (local and not port_free(self._bind_address(engine_name), port)):
                        with self.store.transaction() as data:
                            used = {r.get("ports", {}).get("ssh") for r in data["workspaces"].values()
                                    if self.engine_name(r.get("name", ""), r) == engine_name}
                            record["ports"]["ssh"] = self._free_port(used, engine_name)
                    created = self.create_container(name, record, progress)
                    self.store.patch_workspace(name, containerId=created, dind=record["dind"],
                                               ports=record["ports"])
                else:
                    progress("starting container")
                    current = engine.container(container["id"])
                    already_running = current is not None and current["state"] == "running"
                    if already_running:
                        engine.put_archive(container["id"], "/", self._startup_files())
                    else:
                        self._start(name, engine, container["id"], self._startup_files())
            # A start of a running workspace starts nothing: its postStartCommand is not run again.
            self.complete(name, record, progress, started=container is None or not already_running)
            return self.announce(name)

    # ------------------------------------------------------------ changes

    def update(self, name: str, changes: Any) -> dict[str, Any]:
        """Change the settings of workspace ``name`` (PATCH): every field is checked before any is
        applied, so a bad one changes nothing; each group of fields is applied by its own updater."""
        if not isinstance(changes, Mapping) or not changes:
            raise InvalidInput("give the fields to change, such as {\"cpus\": 2}")
        unknown = sorted(str(k) for k in changes if k not in updates.FIELDS)
        if unknown:
            raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(updates.FIELDS)}")
        checked = {}
        for group_name, group in updates.GROUPS.items():
            given = {f: changes[f] for f in group.fields if f in changes}
            if given:
                checked[group_name] = group.check(given)
        with self.operations.hold(name, "update"):
            self.require_reachable(self.get(name))
            if self.store.get_workspace(name) is None:
                raise Conflict(f"workspace {name!r} is not in Perry's state yet: `perry start {name}` adopts it")
            for group_name, value in checked.items():
                updates.GROUPS[group_name].apply(self, name, value)
            return self.announce(name)

    def apply_limits(self, name: str, changes: dict[str, Any]) -> None:
        """New limits: live on the container (stopped ones too, so a start keeps them), then saved
        in the record for a re-created container. Docker refusing changes nothing."""
        engine = self.engine_of(name)
        container = self._container_or_none(name)
        if container is not None:
            machine = engine.facts() if None in changes.values() else {}
            try:
                with engine.errors(f"changing the limits of workspace {name!r}"):
                    engine.update_container(container["id"], resource_limits.update_body(changes, machine))
            except DockerError as e:
                raise Conflict(f"Docker refused the new limits of workspace {name!r}: {e.detail}") from None
        record = self.store.get_workspace(name) or {}
        self.store.patch_workspace(name, limits={**(record.get("limits") or {}), **changes})

    def stop(self, name: str, *, claim: Claim | None = None, reason: str = "user") -> dict[str, Any]:
        """Stop the container; ``reason`` ("user", or "idle" from the idle check) is kept as its
        stopReason, and only an idle-stopped workspace wakes on use."""
        with self.operations.hold(name, "stop", claim):
            self.get(name)  # 404 for unknown names
            container = self._container_or_none(name)
            engine = self.engine_of(name)
            self.inner_engines.forget(name)
            with engine.errors(f"stopping workspace {name!r}"):
                if container is not None and container["state"] in ("running", "restarting", "paused"):
                    engine.stop(container["id"], timeout=self.settings.stop_timeout)
            self.store.patch_workspace(name, status="stopped", stopReason=reason)
            return self.announce(name)

    def delete(self, name: str, *, claim: Claim | None = None) -> None:
        with self.operations.hold(name, "delete", claim):
            self.require_reachable(self.get(name))
            engine = self.engine_of(name)
            with engine.errors(f"deleting workspace {name!r}"):
                self._remove_container(name)
                self.inner_engines.forget(name)
                self._forget_startup(name)
                for vol in self.volumes(name):
                    engine.remove_volume(vol)
                project_setup.remove_image(self, name, (self.store.get_workspace(name) or {}).get("customImage"))
            self.store.remove_workspace(name)
            self.activity.forget(name)
            self.events.publish("workspace.deleted", name)

    def _remove_container(self, name: str) -> None:
        self.engine_of(name).remove_container(self.naming.container(name))

    def _container_or_none(self, name: str) -> dict[str, Any] | None:
        engine = self.engine_of(name)
        with engine.errors("looking up the container"):
            return engine.container(self.naming.container(name))

    @staticmethod
    def require_reachable(ws: dict[str, Any]) -> None:
        if ws["status"] == "unreachable":
            raise EngineUnavailable(f"workspace {ws['name']!r} is on engine {ws['engine']!r}, which is not "
                                    f"reachable: {ws['error']}")

    # ----------------------------------------------------- idle and waking

    def idle_timeout(self, record: Mapping[str, Any]) -> int:
        """Seconds without use before workspace ``record`` stops: its own, else the server's; 0 never."""
        own = record.get("idleTimeout")
        return int(self.settings.idle_timeout if own is None else own)

    def wake(self, name: str, progress: Progress = _no_progress) -> bool:
        """Start workspace ``name`` if the idle check stopped it (and PerryApp.auto_start allows);
        whether it did. Anything else (running, stopped by a user) is left for the caller's
        own checks. Callers at once wait for the one start."""
        if not self.wakes(name):
            return False
        with self._waking_lock:
            lock = self._waking.setdefault(name, threading.Lock())
        with lock:
            record = self.store.get_workspace(name)
            if not record or record.get("stopReason") != "idle" or self.get(name)["status"] != "stopped":
                return False
            log.info("waking workspace %s, stopped while idle", name)
            self.events.publish("workspace.waking", name, data={"reason": "idle"})
            progress(f"starting workspace {name} (stopped while idle)")
            self.start(name, self._publishing(name, progress))
            return True

    def woken(self, name: str, call: Callable[[], Any], progress: Progress = _no_progress) -> Any:
        """``call()``; when it is refused (409) because the idle check stopped ``name``, wake it and
        call again. A running workspace costs nothing more than the call."""
        try:
            return call()
        except Conflict:
            if not self.wake(name, progress):
                raise
        return call()

    def wakes(self, name: str) -> bool:
        """Whether a use of ``name`` would wake it (the state file only, no Docker call)."""
        record = self.store.get_workspace(name) or {}
        return bool(self.settings.auto_start and record.get("status") == "stopped"
                    and record.get("stopReason") == "idle")

    def _require_running(self, name: str) -> None:
        ws = self.get(name)
        self.require_reachable(ws)
        if ws["status"] != "running":
            raise Conflict(f"workspace {name!r} is {ws['status']}, not running: `perry start {name}` first")

    def ssh_port_on(self, engine_name: str, port: Any, name: str) -> int:
        """An SSH port for workspace ``name`` on engine ``engine_name``: ``port`` if no other
        workspace there has it and (on this machine) it is free, else the first free one."""
        used = {r.get("ports", {}).get("ssh") for n, r in self.store.workspaces().items()
                if n != name and self.engine_name(n, r) == engine_name}
        local = self.engines.single or self.engines.is_local(engine_name)
        if isinstance(port, int) and port not in used and (not local or port_free(self._bind_address(engine_name), port)):
            return port
        return self._free_port(used, engine_name)

    # ------------------------------------------------------ inside the box

    def put_worker(self, name: str) -> None:
        """Copy this server's perry_worker into the workspace."""
        self._require_running(name)
        engine = self.engine_of(name)
        with engine.errors(f"copying the worker into workspace {name!r}"):
            engine.put_archive(self.naming.container(name), "/", archive.worker_tar())

    def sync(self, name: str, *, claim: Claim | None = None) -> dict[str, Any]:
        with self.operations.hold(name, "sync", claim):
            self.put_worker(name)
            copied = self._copy_user_files(name)
            ws = self.get(name)
            self.events.publish("workspace.synced", name, data=ws)
            return {"workspace": ws, "copied": ["worker", *copied]}

    def _startup_files(self) -> bytes:
        """The worker and the user's files, as the one copy made while a container starts."""
        user_files, _ = self._user_files_tar()
        return archive.combined(("/", archive.worker_tar()), (HOME_DIR, user_files))

    def _copy_user_files(self, name: str) -> list[str]:
        tar, copied = self._user_files_tar()
        if copied:
            engine = self.engine_of(name)
            with engine.errors("copying files into the workspace"):
                engine.put_archive(self.naming.container(name), HOME_DIR, tar)
        return copied

    def _user_files_tar(self) -> tuple[bytes, list[str]]:
        """The host user's keys, git config and agent files as a tar for the home, and their names."""
        keys = []
        for path in self.settings.public_key_files():
            p = Path(path).expanduser()
            if p.is_file():
                keys.append(p.read_text(encoding="utf-8").strip())
        git_config = None
        if self.settings.git_config:
            p = Path(self.settings.git_config).expanduser()
            if p.is_file():
                git_config = p.read_bytes()
        agent_files = []
        home = Path(self.settings.host_home).expanduser()
        for rel in self.settings.agent_files:
            p = home / rel
            if p.is_file():
                agent_files.append((rel, p.read_bytes()))
        return archive.user_files_tar(authorized_keys=keys, git_config=git_config, agent_files=agent_files)

    def logs(self, name: str, tail: int = 200, since: float | None = None) -> str:
        self.get(name)
        container = self._container_or_none(name)
        if container is None:
            return ""
        engine = self.engine_of(name)
        with engine.errors("reading logs"):
            return engine.logs(container["id"], tail=tail, since=since)

    def follow_logs(self, name: str, tail: int = 200, since: float | None = None):
        """A LogStream of the running workspace's log; it ends when the workspace stops."""
        ws = self.get(name)
        container = self._container_or_none(name)
        if container is None or ws.get("status") != "running":
            raise Conflict(f"workspace {name!r} is not running; start it to follow its log")
        engine = self.engine_of(name)
        with engine.errors("reading logs"):
            return engine.follow_logs(container["id"], tail=tail, since=since)

    def exec(self, name: str, command: list[str], *, user: str = "workspace", workdir: str | None = HOME_DIR,
             env: Mapping[str, str] | None = None) -> dict[str, Any]:
        if (not isinstance(command, list) or not command
                or not all(isinstance(c, str) for c in command)):
            raise InvalidInput("command must be a non-empty list of strings")
        if not isinstance(user, str) or not user:
            raise InvalidInput("user must be a non-empty string")
        env = validate_env(env)
        self.woken(name, lambda: self._require_running(name))
        with self.activity.using(name):
            return self.run(name, command, user=user, workdir=workdir, env=env)

    def run(self, name: str, command: list[str], *, user: str = "workspace", workdir: str | None = None,
            env: Mapping[str, str] | None = None,
            on_line: Callable[[str], bool] | None = None, engine_name: str | None = None) -> dict[str, Any]:
        """Run ``command`` in the workspace's container as it is, without exec()'s checks (for Perry's
        own commands); ``{exitCode, stdout, stderr}``. With ``on_line``, stdout is read as it comes, one
        line at a time; the lines it returns False for are consumed and left out of the answer's stdout.
        ``engine_name``: the engine of the container, when not the one its record says (a move)."""
        engine = self.engines.get(engine_name) if engine_name else self.engine_of(name)
        with engine.errors(f"exec in workspace {name!r}"):
            return engine.exec(self.naming.container(name), command, user=user, workdir=workdir, env=env,
                                    on_line=on_line)

    # ---------------------------------------------------------- reconcile

    def reconcile(self, engines: list[str] | None = None) -> list[str]:
        """Bring the state file and Docker back into agreement after a restart; returns what changed.

        With ``engines`` (those that came back while the server runs), only their workspaces, and
        none that is being created: a create in flight is not one a crash interrupted."""
        changes: list[str] = []
        found, down = self.engines.each(lambda engine_name, _: self._containers(engine=engine_name), engines)
        with self.store.transaction() as data:
            records = data["workspaces"]
            for name, record in records.items():
                engine_name = self.engine_name(name, record)
                if engine_name not in found:
                    continue  # unknown until its engine is back: left as it was
                container = found[engine_name].get(name)
                if engines is not None and (record.get("status") == "creating" or self.operations.busy(name)):
                    continue
                if record.get("status") == "creating":
                    # Its container may run, but the keys, files and clone wait came after:
                    # finish_interrupted() does them, and until then it stays `creating`.
                    record["unfinished"] = True
                    if container is not None and container["state"] == "running":
                        record.update(containerId=container["id"])
                        changes.append(f"{name}: creation interrupted; finishing it")
                    else:
                        record.update(status="error", error="creation was interrupted; "
                                      f"`perry start {name}` finishes it, `perry delete {name}` removes it")
                        changes.append(f"{name}: creation interrupted")
                elif container is None and record.get("status") != "error":
                    record.update(status="error", error=f"container {self.naming.container(name)} was removed "
                                  f"outside Perry; `perry start {name}` recreates it from its volumes")
                    changes.append(f"{name}: container missing")
            for engine_name, containers in found.items():
                for name, container in containers.items():
                    if name not in records:
                        records[name] = self._record_from_container(name, container, engine_name)
                        changes.append(f"{name}: adopted a labelled container missing from the state")
        for change in changes:
            log.info("reconciled %s", change)
        return changes

    def finish_interrupted(self) -> list[str]:
        """Finish the creates a crash cut short (left `creating` by reconcile); returns their names.

        One whose finishing fails is marked `error` with the command that finishes it."""
        finished = []
        for name, record in self.store.workspaces().items():
            if record.get("status") != "creating":
                continue
            try:
                with self.operations.hold(name, "create"):
                    self._finish(name)
            except PerryError as e:
                if e.code != "busy":  # busy: a live create owns it
                    self._finish_failed(name, e.message)
            except Exception as e:
                self._finish_failed(name, str(e))
            else:
                finished.append(name)
        return finished

    def _finish(self, name: str) -> None:
        record = self.store.get_workspace(name)
        if record is None or record.get("status") != "creating":
            return  # deleted or started meanwhile
        self.complete(name, record, self._publishing(name, _no_progress), copy_files=True)
        self.announce(name)
        log.info("finished the interrupted create of %s", name)

    def _finish_failed(self, name: str, reason: str) -> None:
        log.warning("finishing the interrupted create of %s failed: %s", name, reason)
        self.store.patch_workspace(name, status="error", error=(
            f"creation was interrupted and finishing it failed: {reason}; "
            f"`perry start {name}` finishes it, `perry delete {name}` removes it"))
        try:
            self.announce(name)
        except PerryError:
            pass  # the engine is gone: the state file holds the news

    def _adopt(self, name: str, container: dict[str, Any], engine_name: str) -> dict[str, Any]:
        record = self._record_from_container(name, container, engine_name)
        self.store.put_workspace(name, record)
        return record

    def _record_from_container(self, name: str, container: dict[str, Any], engine_name: str) -> dict[str, Any]:
        labels = container["labels"]
        return {
            "name": name,
            "engine": engine_name,
            "status": "running" if container["state"] == "running" else "stopped",
            "created": labels.get(LABEL_CREATED) or _now(),
            "image": container["image"],
            "ports": {"ssh": _published_ssh_port(container)},
            "clone": None,
            "env": {},
            "dind": labels.get(LABEL_DIND),
            "containerId": container["id"],
            "error": None,
        }


def _health_report(stdout: str) -> dict[str, Any]:
    """`perry-worker health --json`'s report (its last line); empty if it printed none."""
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def _unfinished(record: dict[str, Any]) -> bool:
    """Whether a create never ran all its steps (records from before the flag: `creating`)."""
    return bool(record.get("unfinished")) or record.get("status") == "creating"


def _published_ssh_port(container: dict[str, Any]) -> int | None:
    return container["ports"].get("22/tcp")


WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")


def ssh_command(port: Any, bind_address: str, reached_as: str | None = None) -> str | None:
    """The command line that logs in to a workspace, or None without a published SSH port.

    A port published on a wildcard address answers on every address of the host, so the
    client is told the host it reached the server at (``reached_as``, loopback when unknown).
    """
    if not isinstance(port, int) or port <= 0:
        return None
    host = reached_as or "127.0.0.1" if bind_address in WILDCARD_HOSTS else bind_address
    return f"ssh -p {port} workspace@{host}"


def as_reached(ws: Any, reached_as: str) -> Any:
    """A workspace as told to a client that reached the server at host ``reached_as``
    (a request's host name; an IPv6 address loses its brackets). Anything else as it is."""
    if not isinstance(ws, dict) or ws.get("sshHost") not in WILDCARD_HOSTS:
        return ws
    port = (ws.get("ports") or {}).get("ssh")
    return {**ws, "sshCommand": ssh_command(port, ws["sshHost"], reached_as.strip("[]"))}


def port_free(host: str, port: int) -> bool:
    """Whether this machine can listen on ``host:port`` now (what publishing it will need)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _validate_clone(clone: object) -> str | None:
    if clone is None or clone == "":
        return None
    if not isinstance(clone, str):
        raise InvalidInput("clone must be a git URL or a local path")
    if clone.startswith(("/", "./", "../", "~")):
        path = Path(clone).expanduser().resolve()
        try:
            if not path.is_dir():
                raise InvalidInput(f"clone path {clone!r} is not a directory on the server's machine")
            # The workspace reads it as root: clone only what this server's own user may read.
            os.listdir(path)
            if (path / ".git").is_dir():
                os.listdir(path / ".git")
        except OSError as e:
            raise InvalidInput(f"clone path {e.filename or path} cannot be read by the Perry server "
                               f"(uid {os.geteuid()}): {e.strerror}") from None
        return str(path)
    if re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", clone) or re.fullmatch(r"[\w.-]+@[\w.-]+:\S+", clone):
        _, user, password = split_credentials(clone)
        if "\n" in (user or "") + (password or ""):
            raise InvalidInput(f"the credentials in clone URL {redact(clone)!r} hold a line break")
        return clone
    raise InvalidInput(f"clone {redact(clone)!r} is neither a git URL (https://..., ssh://..., git@host:repo) "
                       "nor an absolute local path")


def validate_env(env: object) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise InvalidInput("env must be an object of NAME: value strings")
    out = {}
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
            raise InvalidInput(f"env name {key!r} is not a valid variable name")
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidInput(f"env value of {key} must be a string")
        out[key] = str(value)
    return out
