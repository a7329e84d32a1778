"""The core's configuration: one object, built from `PerryApp`'s traits.

The defaults and the checks of the values live on the traits only (``perry_jupyter/app.py``);
this class has none, so a setting cannot have two defaults. Tests and benchmarks build it
the way the server does: ``PerryApp(**traits).core_config()``. The choices the traits and
the run-time settings (``settings.py``) share are here.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Callable, Mapping

DIND_MODES = ("auto", "privileged", "capabilities", "off")
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")


@dataclass
class WorkspaceSettings:
    prefix: str
    image: str
    network: str
    ssh_port_range: tuple[int, int]
    bind_address: str
    dind_mode: str
    restart_policy: str
    ready_timeout: float
    clone_timeout: float
    stop_timeout: int
    engine_down_task_timeout: float
    # Paths or glob patterns, expanded at each copy, so a key made later counts.
    ssh_public_keys: list[str]
    git_config: str | None
    terminal_shell: str
    # Agent credentials and config, relative to the home, copied at create and sync.
    agent_files: tuple[str, ...]
    host_home: str
    image_agents: tuple[str, ...]
    # Seconds without use before a workspace stops (0: never), unless it has its own.
    idle_timeout: int
    # Whether a workspace the idle check stopped starts again when used.
    auto_start: bool
    # A dict, or a callable taking the workspace name, for per-workspace values.
    extra_env: Mapping[str, str] | Callable[[str], Mapping[str, str]]
    # The limits of a create that names none; None: no limit.
    default_cpus: float | None
    default_memory: str | None
    default_pids: int | None

    def default_limits(self) -> dict[str, object]:
        return {"cpus": self.default_cpus, "memory": self.default_memory, "pids": self.default_pids}

    def public_key_files(self) -> list[str]:
        found: list[str] = []
        for pattern in self.ssh_public_keys:
            expanded = os.path.expanduser(pattern)
            matches = sorted(glob.glob(expanded)) if glob.has_magic(expanded) else [expanded]
            found += [m for m in matches if m not in found]
        return found

    def env_for(self, name: str) -> dict[str, str]:
        env = self.extra_env(name) if callable(self.extra_env) else self.extra_env
        return dict(env or {})
