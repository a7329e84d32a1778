"""A project's devcontainer.json, read as far as Perry applies it.

The file is JSON with comments and trailing commas; `json5` (a superset of that, already in
every JupyterLab install through jupyterlab_server) parses it, so comment markers inside
strings (`"http://..."`) stay what they are. What Perry does not apply is named in one
warning, never skipped silently.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

import json5

from .errors import PerryError

# Where the specification looks, in its order, relative to the project's root.
CANDIDATES = (".devcontainer/devcontainer.json", ".devcontainer.json")
APPLIED = {"name", "containerEnv", "remoteEnv", "postCreateCommand", "postStartCommand", "forwardPorts",
           "image", "build"}
# Keys that only describe the editor, or that say what Perry does anyway: not worth a warning.
QUIET = {"$schema", "customizations", "remoteUser", "containerUser", "workspaceFolder", "updateRemoteUserUID"}
_CONTAINER_ENV_REF = re.compile(r"\$\{containerEnv:([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class InvalidDevcontainer(PerryError):
    """The project's file is wrong, not the request: nothing is created."""

    code = "invalid_devcontainer"
    status = 422


@dataclass
class Devcontainer:
    """What Perry applies of one devcontainer.json (``path`` relative to the project)."""

    path: str
    name: str | None = None
    container_env: dict[str, str] = field(default_factory=dict)
    remote_env: dict[str, str] = field(default_factory=dict)
    post_create: Any = None  # a command: a string (shell), a list (argv) or {label: command}
    post_start: Any = None
    forward_ports: list[int] = field(default_factory=list)
    image: str | None = None
    dockerfile: str | None = None  # relative to the project, like context
    context: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def env(self) -> dict[str, str]:
        """The container's environment it asks for: containerEnv, then remoteEnv (see `parse`)."""
        return {**self.container_env, **self.remote_env}


def parse(text: str, path: str) -> Devcontainer:
    """A devcontainer.json's text as a Devcontainer; InvalidDevcontainer saying what is wrong."""
    where = f"{path}"
    try:
        data = json5.loads(text)
    except ValueError as e:
        raise InvalidDevcontainer(f"{where} is not valid JSON with comments: {e}") from None
    if not isinstance(data, dict):
        raise InvalidDevcontainer(f"{where} must hold a JSON object")
    config = Devcontainer(path=path)
    if data.get("name") is not None:
        config.name = _string(data["name"], where, "name")
    config.container_env = _env(data.get("containerEnv"), where, "containerEnv")
    # Perry has no separate "remote" process tree: every exec, terminal and agent starts from the
    # container's environment, so remoteEnv joins it, its ${containerEnv:NAME} references resolved.
    remote = _env(data.get("remoteEnv"), where, "remoteEnv")
    config.remote_env = {k: _CONTAINER_ENV_REF.sub(lambda m: config.container_env.get(m.group(1), m.group(2) or ""), v)
                         for k, v in remote.items()}
    config.post_create = _command(data.get("postCreateCommand"), where, "postCreateCommand")
    config.post_start = _command(data.get("postStartCommand"), where, "postStartCommand")
    config.forward_ports, other_hosts = _ports(data.get("forwardPorts"), where)
    if other_hosts:
        config.warnings.append("forwardPorts of other hosts (" + ", ".join(other_hosts) + ")")
    if data.get("image") is not None:
        config.image = _string(data["image"], where, "image")
    build = data.get("build")
    if build is not None:
        if not isinstance(build, dict) or not isinstance(build.get("dockerfile"), str):
            raise InvalidDevcontainer(f"{where}: build must be an object with a dockerfile")
        base = posixpath.dirname(path)
        config.dockerfile = _inside(posixpath.join(base, build["dockerfile"]), where, "build.dockerfile")
        config.context = _inside(posixpath.join(base, build.get("context") or "."), where, "build.context")
        config.build_args = _env(build.get("args"), where, "build.args")
        ignored = sorted(set(build) - {"dockerfile", "context", "args"})
        if ignored:
            config.warnings.append(f"build.{', build.'.join(ignored)} not applied")
    if config.image and config.dockerfile:
        config.warnings.append("both image and build.dockerfile are set: the Dockerfile is used")
        config.image = None
    unsupported = sorted(set(data) - APPLIED - QUIET)
    if unsupported:
        config.warnings.insert(0, ", ".join(unsupported))
    if config.warnings:
        config.warnings = [f"{path}: Perry does not apply " + "; ".join(config.warnings)
                           + " (it applies name, containerEnv, remoteEnv, postCreateCommand, postStartCommand, "
                           "forwardPorts, image and build.dockerfile)"]
    return config


def command_argvs(command: Any) -> list[tuple[str | None, list[str]]]:
    """A lifecycle command as ``[(label, argv)]``: a string runs in ``sh -c``, a list as it is, an
    object's entries one after the other, each labelled with its key."""
    if command is None:
        return []
    if isinstance(command, str):
        return [(None, ["sh", "-c", command])]
    if isinstance(command, list):
        return [(None, list(command))]
    return [(label, argv) for key, value in command.items() for label, argv in
            [(key, ["sh", "-c", value] if isinstance(value, str) else list(value))]]


def shown(argv: list[str]) -> str:
    return argv[2] if argv[:2] == ["sh", "-c"] and len(argv) == 3 else shlex.join(argv)


def _string(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidDevcontainer(f"{where}: {key} must be a non-empty string")
    return value


def _env(value: Any, where: str, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidDevcontainer(f"{where}: {key} must be an object of NAME: value strings")
    out = {}
    for name, item in value.items():
        if not _ENV_NAME.fullmatch(name):
            raise InvalidDevcontainer(f"{where}: {key} name {name!r} is not a valid variable name")
        if not isinstance(item, (str, int, float, bool)):
            raise InvalidDevcontainer(f"{where}: {key}.{name} must be a string")
        out[name] = str(item)
    return out


def _command(value: Any, where: str, key: str) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(a, str) for a in value):
        return value
    if isinstance(value, dict) and value and all(
            (isinstance(v, str) and v.strip()) or (isinstance(v, list) and v and all(isinstance(a, str) for a in v))
            for v in value.values()):
        return value
    raise InvalidDevcontainer(f"{where}: {key} must be a command: a string, a list of strings, or an object of them")


def _ports(value: Any, where: str) -> tuple[list[int], list[str]]:
    """(this container's ports, the "host:port" entries: other hosts', a compose service's)."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        raise InvalidDevcontainer(f"{where}: forwardPorts must be a list of port numbers")
    out: list[int] = []
    other_hosts: list[str] = []
    for item in value:
        if isinstance(item, str) and re.fullmatch(r"[^:\s]+:\d{1,5}", item) and not item.startswith("localhost:"):
            other_hosts.append(item)
            continue
        if isinstance(item, str) and item.startswith("localhost:"):
            item = item.split(":", 1)[1]
        port = item if isinstance(item, int) and not isinstance(item, bool) else None
        if isinstance(item, str) and item.isdigit():
            port = int(item)
        if port is None or not 1 <= port <= 65535:
            raise InvalidDevcontainer(f"{where}: forwardPorts entry {item!r} is not a port number (1-65535)")
        if port not in out:
            out.append(port)
    return out, other_hosts


def _inside(path: str, where: str, key: str) -> str:
    normal = posixpath.normpath(path)
    if normal.startswith("../") or normal == ".." or posixpath.isabs(normal):
        raise InvalidDevcontainer(f"{where}: {key} {path!r} is outside the project")
    return normal
