"""Workspace names and the Docker object names derived from them."""

from __future__ import annotations

import re

from .errors import InvalidInput

NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

# Labels let Perry find its own containers again without the state file.
LABEL_MANAGED = "perry.managed"
LABEL_WORKSPACE = "perry.workspace"
LABEL_CREATED = "perry.created"
LABEL_DIND = "perry.dind"

HOME_DIR = "/home/workspace"
DOCKER_DIR = "/var/lib/docker"


def shown(value: object, limit: int = 100) -> str:
    """``repr(value)`` for an error message, cut short: messages quote user input, never echo it whole."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def validate_text(value: object, field: str) -> str:
    """A prompt or message for an agent: a non-empty string that can be a command-line argument."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-empty string")
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters")
    return value


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid workspace name, else raise ``InvalidInput``."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("workspace name is required")
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"invalid workspace name {shown(name)}: use 1-63 lowercase letters, digits "
            "and hyphens, starting and ending with a letter or digit"
        )
    return name


class Naming:
    """Derives container, volume and hostname from a workspace name."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def container(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def home_volume(self, name: str) -> str:
        return f"{self.prefix}{name}-home"

    def docker_volume(self, name: str) -> str:
        return f"{self.prefix}{name}-docker"
