"""Runtime settings changed through `PATCH /perry/api/config`, kept in settings.json.

Traitlets give the server's configuration at start; these few user-level
settings can change while it runs and override the traitlets values. Changes are
merged into the file under the same lock as the state file's, so two servers (or
two requests) changing settings at once lose no update.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from perry_worker import agents as agent_registry

from .errors import InvalidInput, PerryError
from .state import LockedJsonFile
from .config import DIND_MODES, WorkspaceSettings
from .workspaces import validate_env


def _paths(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput("sshPublicKeys must be a list of file paths")
    return value


def _optional_path(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidInput("gitConfig must be a file path or null")
    return value


def _dind(value: Any) -> str:
    if value not in DIND_MODES:
        raise InvalidInput(f"dindMode must be one of {', '.join(DIND_MODES)}")
    return value


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 3600:
        raise InvalidInput("readyTimeout must be a number of seconds between 1 and 3600")
    return float(value)


def _shell(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[\w./+-]+", value):
        raise InvalidInput("terminalShell must be a shell name or path, such as zsh or /bin/bash")
    return value


def _agents(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value) or agent_registry.unknown(value):
        raise InvalidInput("imageAgents must be a list of: " + ", ".join(agent_registry.NAMES))
    return agent_registry.canonical(value)


# JSON key -> (WorkspaceSettings attribute, validator)
PATCHABLE: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "sshPublicKeys": ("ssh_public_keys", _paths),
    "gitConfig": ("git_config", _optional_path),
    "env": ("extra_env", validate_env),
    "dindMode": ("dind_mode", _dind),
    "readyTimeout": ("ready_timeout", _timeout),
    "terminalShell": ("terminal_shell", _shell),
    "imageAgents": ("image_agents", _agents),
}


class SettingsStore:
    def __init__(self, state_dir: str | Path):
        self.file = LockedJsonFile(Path(state_dir) / "settings.json", what="settings file")
        self.path = self.file.path

    def load(self) -> dict[str, Any]:
        try:
            data = self.file.read()
        except PerryError:
            return {}  # damaged: the traitlets values stand (`recover` at start-up restores it)
        return {k: v for k, v in data.items() if k in PATCHABLE}

    def recover(self) -> str | None:
        return self.file.recover()

    def apply(self, settings: WorkspaceSettings, validated: dict[str, Any] | None = None) -> None:
        """Apply values already validated, or else the saved ones (validated here: the file is the user's)."""
        if validated is None:
            validated = {key: PATCHABLE[key][1](value) for key, value in self.load().items()}
        for key, value in validated.items():
            setattr(settings, PATCHABLE[key][0], value)

    def patch(self, settings: WorkspaceSettings, changes: Any) -> dict[str, Any]:
        """Validate every change first, then save and apply them all (or nothing)."""
        if not isinstance(changes, dict) or not changes:
            raise InvalidInput("send a JSON object with one or more of: " + ", ".join(PATCHABLE))
        unknown = sorted(set(changes) - set(PATCHABLE))
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(unknown)} at run time; changeable: "
                               + ", ".join(PATCHABLE))
        validated = {k: PATCHABLE[k][1](v) for k, v in changes.items()}
        with self.file.locked():
            data = self.file.read()
            data.update(validated)
            self.file.write(data)
            # Applied under the lock too, so this process's settings follow the order of the writes.
            self.apply(settings, validated)
        return {k: v for k, v in data.items() if k in PATCHABLE}
