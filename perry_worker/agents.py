"""The coding agents Perry knows: each declared once, here.

The worker (inside workspaces), the server's core, the CLI, the notebook widgets and the
OpenAPI document all read this list; the panel gets it from ``GET /perry/api/info``.
Adding an agent is one entry here plus its session reader, its command lines in
``tasks.py`` and ``chat.py``, and how it states a failure in ``failures.py``.

Standard library only: this runs inside workspaces, where only python3 is sure to exist.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, NamedTuple, Tuple


class Agent(NamedTuple):
    name: str  # Perry's name for it: API values, CLI options, image labels
    label: str  # how people call it
    cli: str  # the executable in the workspace
    package: str  # the npm package the workspace image installs it from
    reader: str  # "module:Class" in perry_worker: the reader of its sessions
    resume: str  # the interactive command that continues session {id}
    # Credential and config files, relative to the home: copied into workspaces at create and sync.
    files: Tuple[str, ...]

    def resume_command(self, session_id: str) -> str:
        return self.resume.format(id=session_id)

    def resume_argv(self, session_id: str) -> list:
        """The resume command as argv: the id is one argument whatever it holds, never shell text."""
        return [word.format(id=session_id) for word in self.resume.split()]

    def session_reader(self, home: str, env: Dict[str, str]) -> Any:
        module, cls = self.reader.split(":")
        return getattr(importlib.import_module("." + module, __package__), cls)(home, env)

    def public(self) -> Dict[str, Any]:
        """What ``GET /perry/api/info`` tells about it."""
        return {"name": self.name, "label": self.label, "cli": self.cli, "package": self.package,
                "resumeCommand": self.resume, "default": self.name == DEFAULT}


AGENTS: Dict[str, Agent] = {a.name: a for a in (
    Agent("opencode", "OpenCode", "opencode", "opencode-ai", "opencode:OpenCodeReader",
          "opencode --session {id}",
          (".local/share/opencode/auth.json", ".config/opencode/opencode.json")),
    Agent("claude", "Claude Code", "claude", "@anthropic-ai/claude-code", "claude:ClaudeReader",
          "claude --resume {id}",
          (".claude/.credentials.json", ".claude/settings.json")),
    Agent("codex", "Codex", "codex", "@openai/codex", "codex:CodexReader",
          "codex resume {id}",
          (".codex/auth.json", ".codex/config.toml")),
)}
NAMES: Tuple[str, ...] = tuple(AGENTS)  # in Perry's canonical order
DEFAULT = "opencode"  # the agent a task runs when none is named
IMAGE_DEFAULT: Tuple[str, ...] = ("opencode",)  # the agents' CLIs a workspace image carries by default
AGENT_FILES: Tuple[str, ...] = tuple(f for a in AGENTS.values() for f in a.files)


def canonical(names: Any) -> Tuple[str, ...]:
    """``names`` (known ones) in the canonical order, without repeats."""
    return tuple(n for n in NAMES if n in names)


def unknown(names: Any) -> list:
    return sorted(set(names) - set(NAMES))
