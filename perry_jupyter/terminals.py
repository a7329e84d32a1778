"""Workspace terminals: terminado terminals in Jupyter's own terminal manager.

A workspace terminal is an ordinary Jupyter terminal whose command is
`docker exec -it` into the workspace, so JupyterLab opens it in its own terminal
widget, lists it under Running Terminals and culls it. Names are
``perry_<workspace>_<n>`` (hyphens become underscores: terminal names must match
``\\w+``, and workspace names never hold underscores, so the mapping is reversible).
"""

from __future__ import annotations

import itertools
import logging
import re
import sys
from typing import Any, Callable

from .core.errors import Conflict, InvalidInput, PerryError
from .core.names import HOME_DIR, NAME_PATTERN, shown

log = logging.getLogger(__name__)

TERMINAL_NAME = re.compile(r"perry_([a-z0-9_]+)_(\d+)")
PID_DIR = "/tmp/.perry-terminals"  # in the workspace: terminal name -> its shell's pid


def validate_terminal_name(name: object) -> str:
    """Jupyter's terminal names are ``\\w+``; anything else names no terminal at all."""
    if not isinstance(name, str) or not re.fullmatch(r"\w{1,200}", name):
        raise InvalidInput(f"invalid terminal name {shown(name)}: use letters, digits and underscores")
    return name


def terminal_name(workspace: str, n: int) -> str:
    return f"perry_{workspace.replace('-', '_')}_{n}"


def workspace_of(term_name: str | None) -> str | None:
    """The workspace a terminal name belongs to, or None for any other terminal."""
    m = TERMINAL_NAME.fullmatch(term_name or "")
    if not m:
        return None
    workspace = m.group(1).replace("_", "-")
    return workspace if NAME_PATTERN.fullmatch(workspace) else None


class WorkspaceTerminals:
    """Creates, lists and closes the terminals of workspaces in a terminado manager."""

    def __init__(self, term_manager, container_name: Callable[[str], str], *,
                 docker_host: str | None = None, shell: Callable[[], str] = lambda: "bash",
                 docker_cli: str = "docker", reap: Callable[[str, str], Any] | None = None,
                 run_blocking: Callable[..., Any] | None = None):
        self.tm = term_manager
        # reap(workspace, script) runs a root shell script in the workspace (a blocking Docker call,
        # so through run_blocking); it ends the shells of closed terminals.
        self.reap = reap
        self.run_blocking = run_blocking
        self.container_name = container_name
        self.docker_host = docker_host
        self.shell = shell
        self.docker_cli = docker_cli
        self._install_restore_guard()

    # -------------------------------------------------------------- commands

    def _docker(self) -> list[str]:
        return [self.docker_cli, *(["-H", self.docker_host] if self.docker_host else [])]

    def exec_command(self, workspace: str, name: str) -> list[str]:
        shell = self.shell()
        return [
            *self._docker(), "exec", "-it", "-u", "workspace", "-w", HOME_DIR,
            "-e", "TERM=xterm-256color", "-e", "LANG=C.UTF-8", "-e", "LC_ALL=C.UTF-8", "-e", "USER=workspace",
            self.container_name(workspace),
            # The configured shell when the image has it, bash otherwise. Its pid is noted, because
            # ending `docker exec` on this side does not end the shell inside the container.
            "sh", "-c", f'mkdir -p {PID_DIR} && echo $$ > {PID_DIR}/"$1" && '
                        'if command -v "$0" >/dev/null 2>&1; then exec "$0" -l; else exec bash -l; fi',
            shell, name,
        ]

    def restore_command(self, workspace: str, name: str) -> list[str]:
        """For a terminal re-created by name (a restored JupyterLab layout): checks first."""
        return [sys.executable, "-m", "perry_jupyter.attach", workspace, self.container_name(workspace),
                "--", *self.exec_command(workspace, name)]

    # ------------------------------------------------------------ terminals

    def create(self, workspace: str) -> dict[str, Any]:
        """A new terminal in a workspace the caller has checked is running."""
        if self.tm is None:
            raise PerryError("terminals are disabled on this server (ServerApp.terminals_enabled)",
                             code="terminals_disabled", status=503)
        for n in itertools.count(1):
            name = terminal_name(workspace, n)
            if name not in self.tm.terminals:
                break
        self.tm.create(name=name, shell_command=self.exec_command(workspace, name))
        return self.model(name)

    def names(self, workspace: str) -> list[str]:
        if self.tm is None:
            return []
        return sorted((n for n in self.tm.terminals if workspace_of(n) == workspace),
                      key=lambda n: int(n.rsplit("_", 1)[1]))

    def model(self, name: str) -> dict[str, Any]:
        term = self.tm.terminals[name]
        last = getattr(term, "last_activity", None)
        workspace = workspace_of(name)
        return {
            "name": name,
            "workspace": workspace,
            "lastActivity": last.isoformat() if last else None,
            "clients": len(term.clients),
            "websocket": f"perry/terminal/{workspace}?terminal={name}",
            "jupyterWebsocket": f"terminals/websocket/{name}",
        }

    def list(self, workspace: str) -> list[dict[str, Any]]:
        return [self.model(n) for n in self.names(workspace)]

    def get(self, workspace: str, name: str) -> dict[str, Any]:
        from .core.errors import NotFound

        if workspace_of(name) != workspace or name not in (self.tm.terminals if self.tm else {}):
            raise NotFound(f"workspace {shown(workspace)} has no terminal {shown(name)}")
        return self.model(name)

    async def close(self, workspace: str, name: str, reason: str | None = None) -> None:
        self.get(workspace, name)
        term = self.tm.terminals[name]
        if reason:
            # Tell the people looking at it why it goes away.
            for client in list(term.clients):
                try:
                    client.on_pty_read(f"\r\n[perry] {reason}\r\n")
                except Exception:
                    pass
        await self.tm.terminate(name, force=True)  # the guard below ends the shell inside too

    async def _end_shell(self, workspace: str, name: str) -> None:
        """Ending `docker exec` here leaves its shell running in the container: end that too."""
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

    # ----------------------------------------------------- layout restoring

    def _install_restore_guard(self) -> None:
        """Never let a workspace terminal's name come back as a host shell.

        JupyterLab restores a terminal tab whose terminal is gone (say, after a
        server restart) by POSTing /api/terminals with the old name and no
        command, which would start the server's own shell under that name.
        """
        if self.tm is None or getattr(self.tm, "_perry_guarded", False):
            return
        original_create = self.tm.create
        original_get_terminal = self.tm.get_terminal

        def create(**kwargs: Any) -> dict[str, Any]:
            workspace = workspace_of(kwargs.get("name"))
            if workspace is not None and "shell_command" not in kwargs:
                log.info("re-creating workspace terminal %s inside %s", kwargs["name"], workspace)
                kwargs["shell_command"] = self.restore_command(workspace, kwargs["name"])
                kwargs.pop("cwd", None)
            return original_create(**kwargs)

        def get_terminal(term_name: str):
            # terminado's sockets create missing terminals by name with the default shell.
            workspace = workspace_of(term_name)
            if workspace is not None and term_name not in self.tm.terminals:
                raise Conflict(f"terminal {term_name} of workspace {workspace!r} is closed")
            return original_get_terminal(term_name)

        original_terminate = self.tm.terminate

        async def terminate(name: str, force: bool = False) -> None:
            # Every way a workspace terminal ends here (Perry's API, Jupyter's API, the culler).
            await original_terminate(name, force=force)
            workspace = workspace_of(name)
            if workspace is not None:
                await self._end_shell(workspace, name)

        self.tm.create = create
        self.tm.get_terminal = get_terminal
        self.tm.terminate = terminate
        self.tm._perry_guarded = True
