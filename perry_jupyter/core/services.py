"""All of Perry's core objects, wired once: what the server extension, tests and benchmarks hold."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from perry_worker import agents as agent_registry

from .changes import Changes
from .doctor import run_checks
from .engine import Engine
from .engines import Engines
from .errors import Conflict, InvalidInput, PerryError
from .events import EventBus
from .sessions import AgentSessions
from .settings import PATCHABLE, SettingsStore
from .tasks import FINAL, TaskManager
from .transfer import Transfers, counted
from .state import StateStore
from .config import WorkspaceSettings
from .usage import UsageSampler
from .workspaces import WorkspaceManager


class Perry:
    def __init__(self, state_dir: str | Path, settings: WorkspaceSettings, docker_host: str | None = None,
                 engine: Engine | None = None, engines: Any = None,
                 placement: Callable[[str, list], str] | None = None):
        """``engine``: the gateway to Docker (by default one to ``docker_host``); tests pass an in-memory one.
        ``engines``: PerryApp.engines (name -> address or settings), when there are several;
        ``placement``: the rule that picks the engine of a create that names none."""
        self.state_dir = Path(state_dir)
        self.settings = settings
        self.events = EventBus()
        if isinstance(engines, Engines):
            self.engines = engines
        else:
            self.engines = Engines(engines, self.state_dir, docker_host=docker_host, engine=engine, events=self.events)
        self.store = StateStore(self.state_dir)
        self.runtime_settings = SettingsStore(self.state_dir)
        # What went wrong before start-up and was repaired: shown by `info` until a restart.
        self.warnings: list[str] = [w for w in (self.store.recover(), self.runtime_settings.recover()) if w]
        self.runtime_settings.apply(settings)
        self.workspaces = WorkspaceManager(self.engines, self.store, settings, self.events, placement=placement)
        self.sessions = AgentSessions(self.workspaces, self.events)
        self.changes = Changes(self.workspaces, self.events)
        self.usage = UsageSampler(self.workspaces)
        self.tasks = TaskManager(self.workspaces, self.store, self.events, on_end=self.changes.task_ended)
        self.transfers = Transfers(self.workspaces, tasks_running=lambda name: any(
            task["status"] not in FINAL for task in self.tasks.list(name)))
        self._build_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The default engine (the only one, unless several are configured)."""
        return self.engines.get()

    def engines_status(self) -> list[dict[str, Any]]:
        """Every engine with its health and its workspaces' counts (what `perry engines` shows)."""
        counts: dict[str, dict[str, int]] = {}
        for ws in self.workspaces.list():
            count = counts.setdefault(ws["engine"], {"running": 0, "total": 0})
            count["total"] += 1
            count["running"] += ws["status"] == "running"
        return self.engines.survey(counts)

    def probe_engines(self) -> list[str]:
        """The background probe's one round: engines that came back are reconciled; their names."""
        back = self.engines.probe()
        # Moves and clones cut short: tidied as soon as their engine answers again, which may be
        # a round after the one that saw it back (its engine answers before its objects can go).
        if back or self.transfers.pending():
            self.transfers.recover()
        if back:
            self.workspaces.reconcile(back)
        return back

    def add_engine(self, name: Any, address: Any, **settings: Any) -> dict[str, Any]:
        spec = {"address": address, **{k: v for k, v in settings.items() if v is not None}}
        return self.engines.add(name, spec)

    def remove_engine(self, name: str) -> None:
        holds = sum(1 for n, r in self.store.workspaces().items() if self.workspaces.engine_name(n, r) == name)
        self.engines.remove(name, holds)

    def image_builder(self, agents: tuple[str, ...] | None = None, engine: str | None = None):
        from .image import ImageBuilder  # the build context is only needed when asked about

        return ImageBuilder(self.engines.get(engine), self.settings.image,
                            agents=self.settings.image_agents if agents is None else agents)

    def image_status(self) -> dict[str, Any]:
        with self.engine.errors("checking the workspace image"):
            return self.image_builder().status()

    def build_image(self, *, bootstrap: bool | None = None, no_cache: bool = False,
                    agents: list[str] | None = None, engine: str | None = None,
                    progress: Callable[[dict], None] = lambda e: None) -> dict[str, Any]:
        """Build the image (on ``engine``, by default the default one)."""
        chosen = PATCHABLE["imageAgents"][1](agents) if agents is not None else None
        if engine is not None and (not isinstance(engine, str) or engine not in self.engines.names()):
            raise InvalidInput(f"there is no engine {engine!r}; `perry engines` lists them")
        if not self._build_lock.acquire(blocking=False):
            raise Conflict("an image build is already running on this server")
        try:
            with self.engines.get(engine).errors("building the workspace image"):
                built = self.image_builder(chosen, engine).build(bootstrap=bootstrap, no_cache=no_cache, progress=progress)
            if chosen is not None:
                # Remembered once built, so status and later builds agree with the image; a
                # failed or refused build changes nothing.
                self.runtime_settings.patch(self.settings, {"imageAgents": list(chosen)})
            return built
        finally:
            self._build_lock.release()

    def build_derived_image(self, dockerfile: Any, tag: Any, *, engine: str | None = None,
                            progress: Callable[[dict], None] = lambda e: None) -> dict[str, Any]:
        """Build ``dockerfile`` (a path on this machine; its folder is the context) as ``tag``, an
        image for `perry create --image` that must start FROM the workspace image."""
        from .image import build_derived, validate_reference

        validate_reference(tag, "tag")
        if tag == self.settings.image:
            raise InvalidInput(f"tag {tag} is Perry's own workspace image (`perry build` without "
                               "--dockerfile builds it): choose another")
        if not isinstance(dockerfile, str) or not Path(dockerfile).is_absolute() or not Path(dockerfile).is_file():
            raise InvalidInput(f"dockerfile must be the absolute path of a file on the server's machine, "
                               f"not {str(dockerfile)[:200]!r}")
        if engine is not None and (not isinstance(engine, str) or engine not in self.engines.names()):
            raise InvalidInput(f"there is no engine {engine!r}; `perry engines` lists them")
        target = self.engines.get(engine)
        with target.errors("building the image"):
            if target.image(self.settings.image) is None:
                raise PerryError(f"the workspace image {self.settings.image} is not built yet: run `perry build` "
                                 "first, then build yours FROM it", code="image_missing", status=409)
            path = Path(dockerfile)
            return build_derived(target, tag=tag, workspace_image=self.settings.image, progress=progress,
                                 path=str(path.parent), dockerfile=path.name)

    def copy_image(self, source: Any, target: Any,
                   progress: Callable[[dict], None] = lambda e: None) -> dict[str, Any]:
        """Copy the workspace image from engine ``source`` to engine ``target`` by streaming
        `docker save` into `docker load` (no registry); the image's status on ``target``."""
        names = self.engines.names()
        for what, name in (("copyFrom", source), ("engine", target)):
            if not isinstance(name, str) or name not in names:
                raise InvalidInput(f"{what}: there is no engine {name!r}; `perry engines` lists them")
        if source == target:
            raise InvalidInput(f"copyFrom and engine are both {source!r}: copy between two engines")
        if not self._build_lock.acquire(blocking=False):
            raise Conflict("an image build is already running on this server")
        try:
            tag = self.settings.image
            src, dst = self.engines.get(source), self.engines.get(target)
            with src.errors(f"copying the workspace image from {source!r} to {target!r}"):
                if src.image(tag) is None:
                    raise PerryError(f"engine {source!r} has no image {tag} to copy either",
                                     code="image_missing", status=409)
                progress({"stage": "copy", "message": f"copying {tag} from {source} to {target}"})
                dst.load_image(counted(src.save_image(tag), lambda n: progress(
                    {"stage": "copy", "message": f"{n / 2**20:.0f} MB copied"})))
            with dst.errors("checking the workspace image"):
                return self.image_builder(engine=target).status()
        finally:
            self._build_lock.release()

    def info(self) -> dict[str, Any]:
        from .. import __version__

        engine = self.engine.ping()
        image = None
        if engine["reachable"]:
            try:
                image = self.image_status()
            except PerryError as e:
                image = {"tag": self.settings.image, "present": False, "error": e.message}
        try:
            count = len(self.store.workspaces())
        except PerryError:
            count = None
        return {
            "version": __version__,
            "engine": engine,
            "image": image or {"tag": self.settings.image, "present": None},
            "workspaces": count,
            "stateDir": str(self.state_dir),
            "agents": [a.public() for a in agent_registry.AGENTS.values()],
            "warnings": list(self.warnings),
            "checks": run_checks(engine, image, self.settings, self.state_dir, self.warnings),
        }

    def config(self) -> dict[str, Any]:
        s = self.settings
        return {
            "stateDir": str(self.state_dir),
            "dockerHost": self.engine.address,
            "workspacePrefix": s.prefix,
            "imageTag": s.image,
            "network": s.network,
            "sshPortRange": list(s.ssh_port_range),
            "bindAddress": s.bind_address,
            "dindMode": s.dind_mode,
            "restartPolicy": s.restart_policy,
            "readyTimeout": s.ready_timeout,
            "sshPublicKeys": s.public_key_files(),
            "gitConfig": s.git_config,
            "terminalShell": s.terminal_shell,
            "imageAgents": list(s.image_agents),
            # Values may be secrets: only their names leave the server.
            "env": sorted(s.env_for("*")) if not callable(s.extra_env) else "(per-workspace callable)",
        }

    def update_config(self, changes: Any) -> dict[str, Any]:
        self.runtime_settings.patch(self.settings, changes)
        return self.config()
