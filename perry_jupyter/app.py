"""The Perry Jupyter Server extension: configuration and wiring, nothing else."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop
from traitlets import Bool, Callable, Dict, Enum, Float, Int, List, Tuple, Unicode, Union, default, validate
from traitlets import TraitError

from perry_worker import agents as agent_registry

from . import paths
from ._version import __version__
from .core.config import DIND_MODES, RESTART_POLICIES, WorkspaceSettings
from .core.errors import PerryError
from .core.services import Perry


class PerryApp(ExtensionApp):
    """Perry's REST and WebSocket API inside any Jupyter server."""

    name = "perry_jupyter"
    description = "Isolated Docker development workspaces and the coding agents inside them"
    version = __version__
    load_other_extensions = True

    state_dir = Unicode(help="Where state.json, settings.json and the server token live "
                             "(default: $PERRY_CONFIG_DIR or ~/.config/perry)").tag(config=True)
    workspace_prefix = Unicode("workspace-", help="Prefix of container and volume names").tag(config=True)
    image_tag = Unicode("perry-workspace:latest", help="Tag of the workspace image").tag(config=True)
    docker_host = Unicode(None, allow_none=True,
                          help="Docker endpoint (default: DOCKER_HOST or the local socket)").tag(config=True)
    engines = Dict(help="Docker engines by name: an address (unix:///path, ssh://user@host[:port], "
                        "tcp://host:2376, context:NAME) or a dict with address, ssh_host, ssh_key, tls_ca, "
                        "tls_cert, tls_key, bind_address. Default: local, the engine of docker_host"
                   ).tag(config=True)
    placement = Callable(None, allow_none=True,
                         help="Picks the engine of a create that names none: called with the workspace "
                              "name and the candidates [{name, running, memory}], returns a name "
                              "(default: fewest running workspaces, then most memory)").tag(config=True)
    network = Unicode("perry", help="Name of the bridge network Perry's workspaces share").tag(config=True)
    ssh_port_range = Tuple(Int(), Int(), default_value=(2200, 2400),
                           help="Inclusive range of host ports for workspace SSH").tag(config=True)
    bind_address = Unicode("127.0.0.1", help="Host address published ports bind to").tag(config=True)
    dind_mode = Enum(list(DIND_MODES), default_value="auto",
                     help="Docker-in-Docker: auto tries privileged, then an explicit capability set").tag(config=True)
    restart_policy = Enum(list(RESTART_POLICIES), default_value="unless-stopped",
                          help="Docker restart policy of workspace containers").tag(config=True)
    ready_timeout = Float(120.0, help="Seconds to wait for a new workspace to be ready").tag(config=True)
    clone_timeout = Float(900.0, help="Seconds a workspace's clone of its repository may take").tag(config=True)
    stop_timeout = Int(10, help="Seconds a stopping workspace gets before it is killed").tag(config=True)
    engine_down_task_timeout = Float(3600.0, help="Seconds a running task's engine may stay unreachable: "
                                                  "the task keeps its record and its callback goes out "
                                                  "once the engine is back; after this long it is marked "
                                                  "failed (its end unknown) and called back").tag(config=True)
    ssh_public_keys = List(Unicode(), default_value=["~/.ssh/*.pub"],
                           help="Public key files (paths or glob patterns, expanded at each copy) "
                                "copied into workspaces' authorized_keys").tag(config=True)
    git_config = Unicode("~/.gitconfig", allow_none=True, help="Git config copied into workspaces").tag(config=True)
    workspace_env = Union([Dict(), Callable()], default_value={},
                          help="Environment for new workspaces: a dict, or a callable taking the "
                               "workspace name and returning one").tag(config=True)
    terminal_shell = Unicode("bash", help="Shell of workspace terminals, when the image has it "
                                          "(bash otherwise)").tag(config=True)
    agent_files = List(Unicode(), default_value=list(agent_registry.AGENT_FILES),
                       help="Agent credential and config files, relative to the home, copied from "
                            "the server user's home into each workspace (mode 600) at create and sync"
                       ).tag(config=True)
    host_home = Unicode("~", help="The home the agent files are copied from").tag(config=True)
    image_agents = List(Unicode(), default_value=list(agent_registry.IMAGE_DEFAULT),
                        help="Coding agents' CLIs installed in the image: "
                             + ", ".join(agent_registry.NAMES)).tag(config=True)
    executor_workers = Int(8, help="Threads for blocking Docker calls").tag(config=True)
    default_cpus = Float(None, allow_none=True,
                         help="CPUs a new workspace may use (such as 2 or 0.5) when its create names "
                              "none; default: no limit").tag(config=True)
    default_memory = Unicode(None, allow_none=True,
                             help="Memory a new workspace may use (such as 4g or 512m) when its create "
                                  "names none; default: no limit").tag(config=True)
    default_pids = Int(None, allow_none=True,
                       help="Processes a new workspace may run when its create names none; "
                            "default: no limit").tag(config=True)

    idle_timeout = Int(0, help="Seconds without use (no task, agent at work, terminal or SSH activity, exec "
                               "or proxied request) before a workspace stops; 0 never. A workspace's own "
                               "idleTimeout (create, PATCH) wins").tag(config=True)
    auto_start = Bool(True, help="Start a workspace stopped for idleness when a terminal, exec, task, "
                                 "conversation or proxied request uses it (one a user stopped stays "
                                 "stopped)").tag(config=True)

    @validate("idle_timeout")
    def _check_idle_timeout(self, proposal):
        from .core.updates import MAX_IDLE_TIMEOUT

        if not 0 <= proposal["value"] <= MAX_IDLE_TIMEOUT:
            raise TraitError(f"idle_timeout must be 0 (never) to {MAX_IDLE_TIMEOUT} seconds")
        return proposal["value"]

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return str(paths.config_dir())

    @validate("state_dir")
    def _expand_state_dir(self, proposal):
        # traitlets expands `~` on the command line, not in a config file's `c.PerryApp.state_dir`.
        return str(Path(proposal["value"]).expanduser())

    @validate("agent_files")
    def _check_agent_files(self, proposal):
        for rel in proposal["value"]:
            if rel.startswith("/") or ".." in rel.split("/") or not rel.strip("/"):
                raise TraitError(f"agent_files entries are paths inside the home, not {rel!r}")
        return proposal["value"]

    @validate("engines")
    def _check_engines(self, proposal):
        from .core.engines import engine_spec
        from .core.errors import PerryError

        for name, value in proposal["value"].items():
            try:
                engine_spec(name, value)
            except PerryError as e:
                raise TraitError(f"engines: {e.message}") from None
        return proposal["value"]

    @validate("default_cpus", "default_memory", "default_pids")
    def _check_limit(self, proposal):
        from .core.limits import PARSERS

        try:
            PARSERS[proposal["trait"].name[len("default_"):]](proposal["value"])
        except PerryError as e:
            raise TraitError(f"{proposal['trait'].name}: {e.message}") from None
        return proposal["value"]

    @validate("ssh_port_range")
    def _check_range(self, proposal):
        lo, hi = proposal["value"]
        if not 0 < lo <= hi < 65536:
            raise TraitError(f"ssh_port_range {lo}-{hi} is not a range of TCP ports")
        return proposal["value"]

    @validate("image_agents")
    def _check_agents(self, proposal):
        unknown = agent_registry.unknown(proposal["value"])
        if unknown:
            raise TraitError(f"image_agents: unknown agent(s) {', '.join(unknown)}; known: "
                             + ", ".join(agent_registry.NAMES))
        return proposal["value"]

    def core_config(self) -> WorkspaceSettings:
        """The core's configuration: these traits' values (the core has no defaults of its own)."""
        return WorkspaceSettings(
            prefix=self.workspace_prefix,
            image=self.image_tag,
            network=self.network,
            ssh_port_range=tuple(self.ssh_port_range),
            bind_address=self.bind_address,
            dind_mode=self.dind_mode,
            restart_policy=self.restart_policy,
            ready_timeout=self.ready_timeout,
            clone_timeout=self.clone_timeout,
            stop_timeout=self.stop_timeout,
            engine_down_task_timeout=self.engine_down_task_timeout,
            ssh_public_keys=list(self.ssh_public_keys),
            git_config=self.git_config,
            extra_env=self.workspace_env,
            terminal_shell=self.terminal_shell,
            image_agents=agent_registry.canonical(self.image_agents),
            agent_files=tuple(self.agent_files),
            host_home=self.host_home,
            default_cpus=self.default_cpus,
            default_memory=self.default_memory,
            default_pids=self.default_pids,
            idle_timeout=self.idle_timeout,
            auto_start=self.auto_start,
        )

    perry: Perry | None = None
    _config_error: Exception | None = None
    _probing: threading.Event | None = None
    _idle = None

    def _link_jupyter_server_extension(self, serverapp) -> None:
        from .terminals import use_workspace_terminal_manager

        try:
            super()._link_jupyter_server_extension(serverapp)
        except Exception as e:
            # Jupyter logs a failed link and loads the extension anyway, with its configuration
            # half applied (state_dir left as "", so the state went to the working directory).
            self._config_error = e
            raise
        finally:
            # Even when Perry cannot load: its manager then refuses workspace terminals' names.
            use_workspace_terminal_manager(serverapp)

    def initialize(self) -> None:
        """Load the extension; if that fails, Perry's routes still answer, saying why (JSON 503)."""
        try:
            if self._config_error is not None:
                raise self._config_error
            super().initialize()
        except Exception as e:
            message = self._unavailable_message(e)
            self.log.error("Perry: the extension could not load: %s", message, exc_info=True)
            from .handlers.unavailable import unavailable_routes

            webapp = self.serverapp.web_app
            webapp.add_handlers(".*$", [(url_path_join(webapp.settings["base_url"], pattern), handler, kwargs)
                                        for pattern, handler, kwargs in unavailable_routes(message)])

    def _unavailable_message(self, error: Exception) -> str:
        cause = error.message if isinstance(error, PerryError) else (str(error) or type(error).__name__)
        if isinstance(error, OSError) and getattr(error, "filename", None):
            fix = (f"make {self.state_dir} a directory this server's user can write (or point "
                   "PerryApp.state_dir or PERRY_CONFIG_DIR at one), then restart the server")
        else:
            fix = "the server log has the details; fix the cause, then restart the server"
        return f"Perry could not start: {cause}; {fix}"

    def initialize_settings(self) -> None:
        settings = self.core_config()
        perry = Perry(self.state_dir, settings, docker_host=self.docker_host, engines=self.engines,
                      placement=self.placement)
        self.perry = perry
        self.settings.update(perry=perry, perry_executor=ThreadPoolExecutor(self.executor_workers,
                                                                            thread_name_prefix="perry-docker"))
        from .notebook.kernel_env import install as hand_kernels_the_server

        hand_kernels_the_server(self.serverapp, self.log)  # PERRY_URL/PERRY_TOKEN for %perry and the widgets
        for warning in perry.warnings:
            self.log.warning("Perry: %s", warning)
        perry.tasks.resume()
        try:
            perry.transfers.recover()  # before reconcile: a clone a crash cut short is removed, not finished
            changes = perry.workspaces.reconcile()
            self.log.info("Perry: state %s reconciled with Docker (%d change(s))", perry.store.path, len(changes))
            # Off the start-up path: finishing waits for the workspaces' sshd and clones.
            threading.Thread(target=perry.workspaces.finish_interrupted, name="perry-finish-creates",
                             daemon=True).start()
        except PerryError as e:
            # The engine may come up later; every request tries again.
            self.log.warning("Perry: could not reconcile with Docker: %s", e.message)
        if not perry.engines.single:
            self._probing = threading.Event()
            threading.Thread(target=self._probe_engines, args=(perry, self._probing), name="perry-engine-probe",
                             daemon=True).start()

    def _probe_engines(self, perry: Perry, stopping: threading.Event) -> None:
        """Notice a down engine's return (each at its back-off) and reconcile it, without waiting for a call."""
        while not stopping.wait(2.0):
            try:
                back = perry.probe_engines()
                if back:
                    self.log.info("Perry: engine(s) %s back and reconciled", ", ".join(back))
            except Exception:  # a round that fails must not end the probe
                self.log.warning("Perry: probing the engines failed", exc_info=True)

    def initialize_handlers(self) -> None:
        from .handlers import routes
        from .terminals import WorkspaceTerminals

        # jupyter_server_terminals loads before us (extensions load in name order): its manager exists.
        web_settings = self.serverapp.web_app.settings
        terminals = WorkspaceTerminals(
            web_settings.get("terminal_manager"),
            self.perry.workspaces.naming.container,
            docker=lambda workspace: self.perry.workspaces.engine_of(workspace).cli(),
            shell=lambda: self.perry.settings.terminal_shell,
            reap=lambda workspace, command: self.perry.workspaces.run(workspace, command, user="root"),
            run_blocking=lambda fn, *args: IOLoop.current().run_in_executor(
                web_settings["perry_executor"], fn, *args),
        )
        if terminals.refusal is not None and terminals.refusal.code == "terminals_unavailable":
            self.log.warning("Perry: no workspace terminals: %s", terminals.refusal.message)
        web_settings["perry_terminals"] = terminals
        self.handlers.extend(routes())
        self._start_idle_check(terminals)

    def _start_idle_check(self, terminals) -> None:
        """The idle check's thread; it closes a workspace's terminals on the server's loop before stopping it."""
        import asyncio

        from .core.idle import IdleWatcher

        loop = (getattr(self.serverapp, "io_loop", None) or IOLoop.current()).asyncio_loop

        def close_terminals(name: str) -> None:
            closing = terminals.close_all(name, f"workspace {name} was idle and is stopping")
            asyncio.run_coroutine_threadsafe(closing, loop).result(timeout=60)

        self._idle = IdleWatcher(self.perry.workspaces, last_terminal_use=terminals.last_use,
                                 before_stop=close_terminals)
        self._idle.start()

    async def stop_extension(self) -> None:
        if self.perry is None:
            return
        if self._probing is not None:
            self._probing.set()
        self.perry.tasks.close()
        self.perry.sessions.stop_all()
        self.perry.workspaces.views.close()
        if self._idle is not None:
            self._idle.close()


main = launch_new_instance = PerryApp.launch_instance
