"""Workspace terminals: terminado terminals in Jupyter's own terminal manager.

A workspace terminal is an ordinary Jupyter terminal whose command is
`docker exec -it` into the workspace, on the workspace's engine (`Engine.cli`), so JupyterLab opens it in its own terminal
widget, lists it under Running Terminals and culls it. Names are
``perry_<workspace>_<n>`` (hyphens become underscores: terminal names must match
``\\w+``, and workspace names never hold underscores, so the mapping is reversible);
a terminal that resumes an agent session is ``perry_<workspace>_Resume_<agent>_<n>``
(workspace names are lower case, so the capital marks where the workspace ends).

Jupyter makes its terminal manager from ``TerminalsExtensionApp.terminal_manager_class``
when the extensions load. Perry sets it to `WorkspaceTerminalManager` when the extensions are
linked, before that (`use_workspace_terminal_manager`), unless the user chose a class; Perry
then hands the manager the `WorkspaceTerminals` that know the workspaces.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import sys
from typing import Any, Callable

from jupyter_server_terminals.terminalmanager import TerminalManager
from tornado import web

from .core.engine import container_running_command, terminal_command
from .core.errors import Conflict, InvalidInput, NotFound, PerryError
from .core.names import HOME_DIR, NAME_PATTERN, shown
from .terminal_pty import LoopPtyManager

log = logging.getLogger(__name__)

TERMINAL_NAME = re.compile(r"perry_([a-z0-9_]+)_(?:Resume_([a-z]+)_)?(\d+)")
PID_DIR = "/tmp/.perry-terminals"  # in the workspace: terminal name -> its shell's pid
TERMINAL_ENV = {"TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "USER": "workspace"}
MANAGER_SETTING = "TerminalsExtensionApp.terminal_manager_class"
WAKE_WAIT = 300.0  # seconds a terminal waits for its idle-stopped workspace to start


def use_workspace_terminal_manager(serverapp) -> bool:
    """Make jupyter_server_terminals build Perry's manager, unless the user configured a class.

    A jupyter_server_config.d file cannot do this: Jupyter reads only `jpserver_extensions`
    from those. Extensions are all linked before any loads, and jupyter_server_terminals
    makes its manager when it loads, so setting the trait on its linked app is in time.
    Returns whether Perry's class was set.
    """
    if "terminal_manager_class" in (serverapp.config.get("TerminalsExtensionApp") or {}):
        return False  # the user's choice; WorkspaceTerminals says what that means for workspaces
    apps = serverapp.extension_manager.extension_apps.get("jupyter_server_terminals") or ()
    for app in apps:
        app.terminal_manager_class = WorkspaceTerminalManager
    return bool(apps)


def validate_terminal_name(name: object) -> str:
    """Jupyter's terminal names are ``\\w+``; anything else names no terminal at all."""
    if not isinstance(name, str) or not re.fullmatch(r"\w{1,200}", name):
        raise InvalidInput(f"invalid terminal name {shown(name)}: use letters, digits and underscores")
    return name


def terminal_name(workspace: str, n: int, agent: str | None = None) -> str:
    resume = f"Resume_{agent}_" if agent else ""
    return f"perry_{workspace.replace('-', '_')}_{resume}{n}"


def workspace_of(term_name: str | None) -> str | None:
    """The workspace a terminal name belongs to, or None for any other terminal."""
    m = TERMINAL_NAME.fullmatch(term_name or "")
    if not m:
        return None
    workspace = m.group(1).replace("_", "-")
    return workspace if NAME_PATTERN.fullmatch(workspace) else None


class WorkspaceTerminalManager(LoopPtyManager, TerminalManager):
    """Jupyter's terminal manager, never letting a workspace terminal's name come back as a host shell.

    Its overrides hold for every way a terminal is made or ended: Perry's API, Jupyter's
    ``/api/terminals`` and terminal sockets, JupyterLab restoring a layout, the culler.
    Its ptys are read and written on the event loop (`LoopPtyManager`), for Jupyter's
    terminal sockets as for Perry's.
    """

    # Handed over by Perry's extension, which loads after Jupyter made this manager.
    perry: WorkspaceTerminals | None = None

    def create(self, **kwargs: Any) -> dict[str, Any]:
        workspace = workspace_of(kwargs.get("name"))
        if workspace is not None and "shell_command" not in kwargs:
            # JupyterLab restores a terminal tab whose terminal is gone (say, after a server restart)
            # by POSTing /api/terminals with the old name and no command: the server's own shell.
            if self.perry is None:
                raise web.HTTPError(503, f"terminal {kwargs['name']} belongs to workspace {workspace!r}, "
                                         "and Perry did not load on this server")
            log.info("re-creating workspace terminal %s inside %s", kwargs["name"], workspace)
            kwargs["shell_command"] = self.perry.restore_command(workspace, kwargs["name"])
            kwargs.pop("cwd", None)
        return super().create(**kwargs)

    def get_terminal(self, term_name: str):  # type: ignore[override]
        # terminado's sockets create missing terminals by name with the default shell.
        workspace = workspace_of(term_name)
        if workspace is not None and term_name not in self.terminals:
            raise Conflict(f"terminal {term_name} of workspace {workspace!r} is closed")
        return super().get_terminal(term_name)

    async def terminate(self, name: str, force: bool = False) -> None:
        await super().terminate(name, force=force)
        workspace = workspace_of(name)
        if workspace is not None and self.perry is not None:
            await self.perry.end_shell(workspace, name)


class WorkspaceTerminals:
    """Creates, lists and closes the terminals of workspaces in Jupyter's terminal manager."""

    def __init__(self, manager: TerminalManager | None, container_name: Callable[[str], str], *,
                 docker: Callable[[str], list[str]],
                 shell: Callable[[], str] = lambda: "bash",
                 reap: Callable[[str, list[str]], Any] | None = None,
                 run_blocking: Callable[..., Any] | None = None):
        """``docker(workspace)``: the Docker CLI command reaching the workspace's engine (`Engine.cli`)."""
        self.manager = manager
        # reap(workspace, command) runs a command as root in the workspace (a blocking Docker call,
        # so through run_blocking); it ends the shells of closed terminals.
        self.reap = reap
        self.run_blocking = run_blocking
        self.container_name = container_name
        self.docker = docker
        self.shell = shell
        # The session each resuming terminal was opened on (this server's lifetime only).
        self.resumed: dict[str, dict[str, Any]] = {}
        # Why this server makes no workspace terminals, if it makes none.
        self.refusal: PerryError | None = None
        if manager is None:
            self.refusal = PerryError("terminals are disabled on this server (ServerApp.terminals_enabled)",
                                      code="terminals_disabled", status=503)
        elif isinstance(manager, WorkspaceTerminalManager):
            manager.perry = self
        else:
            # Perry cannot keep a restored layout's workspace terminals out of the host through another
            # class, so it makes none rather than some that may come back as a shell on the server.
            cls = type(manager)
            self.refusal = PerryError(
                f"workspace terminals need Perry's terminal manager, and {MANAGER_SETTING} is "
                f"{cls.__module__}.{cls.__qualname__}: set it to {__name__}.WorkspaceTerminalManager "
                "or a subclass of it (or leave it unset: Perry then sets it), then restart the server",
                code="terminals_unavailable", status=503)

    def require_available(self) -> None:
        if self.refusal is not None:
            raise self.refusal

    # -------------------------------------------------------------- commands

    def exec_command(self, workspace: str, name: str) -> list[str]:
        # The configured shell when the image has it, bash otherwise. Its pid is noted, because
        # ending `docker exec` on this side does not end the shell inside the container. The
        # folder is made by the first terminal only: `mkdir` is a process more on the way to the prompt.
        script = (f'{{ [ -d {PID_DIR} ] || mkdir -p {PID_DIR}; }} && echo $$ > {PID_DIR}/"$1" && '
                  'if command -v "$0" >/dev/null 2>&1; then exec "$0" -l; else exec bash -l; fi')
        return terminal_command(self.container_name(workspace), ["sh", "-c", script, self.shell(), name],
                                docker=self.docker(workspace), user="workspace", workdir=HOME_DIR,
                                env=TERMINAL_ENV)

    def resume_command(self, workspace: str, name: str, target: dict[str, Any]) -> list[str]:
        """The agent's interactive CLI on a session, in the session's directory, then a login shell.

        Everything from the session travels as arguments, never as shell text. The agent runs
        under a login shell, so it sees the environment a login gives (PATH, the workspace's
        variables); when it exits, the user's shell stays, so the terminal does not vanish.
        """
        script = (f'{{ [ -d {PID_DIR} ] || mkdir -p {PID_DIR}; }} && echo $$ > {PID_DIR}/"$1"; shell=$0; dir=$2; shift 2; '
                  'cd -- "$dir" 2>/dev/null || printf "[perry] %s is not there any more: staying in %s\\r\\n" '
                  '"$dir" "$PWD"; '
                  'if command -v "$1" >/dev/null 2>&1 || bash -lc \'command -v "$1"\' _ "$1" >/dev/null 2>&1; then '
                  'bash -lc \'"$@"\' perry-resume "$@"; '
                  'printf "\\r\\n[perry] %s exited (status %s); this is a shell in %s\\r\\n" "$1" "$?" "$PWD"; '
                  'else printf "[perry] %s is not installed in this workspace\\r\\n" "$1"; fi; '
                  'if command -v "$shell" >/dev/null 2>&1; then exec "$shell" -l; else exec bash -l; fi')
        return terminal_command(self.container_name(workspace),
                                ["sh", "-c", script, self.shell(), name, target["directory"], *target["command"]],
                                docker=self.docker(workspace), user="workspace", workdir=HOME_DIR,
                                env=TERMINAL_ENV)

    def restore_command(self, workspace: str, name: str, wait: float = 0.0) -> list[str]:
        """For a terminal re-created by name (a restored JupyterLab layout): checks first.
        With ``wait``, one whose workspace is starting (woken): it says so and waits up to that long."""
        probe = container_running_command(self.container_name(workspace), docker=self.docker(workspace))
        waiting = ["--wait", str(wait)] if wait else []
        return [sys.executable, "-m", "perry_jupyter.attach", workspace, json.dumps(probe), *waiting,
                "--", *self.exec_command(workspace, name)]

    # ------------------------------------------------------------ terminals

    def create(self, workspace: str, resume: dict[str, Any] | None = None, waking: bool = False) -> dict[str, Any]:
        """A new terminal in a workspace the caller has checked is running.

        ``resume``: a session to resume there (`AgentSessions.resume_target`'s answer);
        ``waking``: the workspace is being started for it, and the terminal waits for that.
        """
        self.require_available()
        agent = resume["agent"] if resume else None
        for n in itertools.count(1):
            name = terminal_name(workspace, n, agent)
            if name not in self.manager.terminals:
                break
        if waking:
            command = self.restore_command(workspace, name, wait=WAKE_WAIT)
        else:
            command = self.resume_command(workspace, name, resume) if resume else self.exec_command(workspace, name)
        self.manager.create(name=name, shell_command=command)
        if resume:
            self.resumed[name] = {k: resume[k] for k in ("sessionId", "agent", "directory", "command")}
        return self.model(name)

    def names(self, workspace: str) -> list[str]:
        if self.refusal is not None:
            return []
        return sorted((n for n in self.manager.terminals if workspace_of(n) == workspace),
                      key=lambda n: (n.count("_Resume_"), int(n.rsplit("_", 1)[1])))

    def model(self, name: str) -> dict[str, Any]:
        term = self.manager.terminals[name]
        last = getattr(term, "last_activity", None)
        workspace = workspace_of(name)
        return {
            "name": name,
            "workspace": workspace,
            "lastActivity": last.isoformat() if last else None,
            "clients": len(term.clients),
            "websocket": f"perry/terminal/{workspace}?terminal={name}",
            "jupyterWebsocket": f"terminals/websocket/{name}",
            "resumes": self.resumed.get(name),
        }

    def list(self, workspace: str) -> list[dict[str, Any]]:
        return [self.model(n) for n in self.names(workspace)]

    def last_use(self, workspace: str) -> float | None:
        """When a terminal of ``workspace`` last had output or input (epoch seconds), or None.
        Jupyter's terminal manager notes it on every pty read and client message, so it costs nothing."""
        if self.refusal is not None:
            return None
        # Called from the idle check's thread: a copy, taken at once, of what the loop may change.
        terminals = list(self.manager.terminals.items())
        times = [getattr(t, "last_activity", None) for n, t in terminals if workspace_of(n) == workspace]
        return max((t.timestamp() for t in times if t is not None), default=None)

    def get(self, workspace: str, name: str) -> dict[str, Any]:
        if name not in self.names(workspace):
            raise NotFound(f"workspace {shown(workspace)} has no terminal {shown(name)}")
        return self.model(name)

    async def close(self, workspace: str, name: str, reason: str | None = None) -> None:
        self.get(workspace, name)
        term = self.manager.terminals[name]
        if reason:
            # Tell the people looking at it why it goes away.
            for client in list(term.clients):
                try:
                    client.on_pty_read(f"\r\n[perry] {reason}\r\n")
                except Exception:
                    pass
        await self.manager.terminate(name, force=True)  # the manager ends the shell inside too

    async def end_shell(self, workspace: str, name: str) -> None:
        """Ending `docker exec` here leaves its shell running in the container: end that too."""
        self.resumed.pop(name, None)
        if self.reap is None or self.run_blocking is None:
            return
        script = (f'p=$(cat {PID_DIR}/"$0" 2>/dev/null) && [ -n "$p" ] && pkill -HUP -s "$p"; '
                  f'rm -f {PID_DIR}/"$0"; true')
        try:
            await self.run_blocking(self.reap, workspace, ["sh", "-c", script, name])
        except Exception as e:  # stopped meanwhile (its shells are gone anyway), or shutting down
            log.info("could not end the shell of terminal %s: %s", name, getattr(e, "message", e))

    async def close_all(self, workspace: str, reason: str) -> int:
        names = self.names(workspace)
        for name in names:
            try:
                await self.close(workspace, name, reason)
            except PerryError:
                pass  # closed meanwhile
        return len(names)
