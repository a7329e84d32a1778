"""A cloned project's devcontainer.json, applied to its workspace.

The clone happens inside the workspace (credentials only in that exec), so the file is read
there, after the clone, for git URLs and local paths alike. What must be known when the
container is made (containerEnv, remoteEnv, image, build.dockerfile) is then applied by making
the container again on the same volumes: the clone lives in the home volume, so nothing is lost
and a project without those keys costs nothing more. postCreateCommand runs once, after that;
postStartCommand on every start. Their output goes to the progress and to the container's log
(`perry logs`); a failing one leaves the workspace `error` with the output's tail.
"""

from __future__ import annotations

import posixpath
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from . import archive, devcontainer
from .errors import PerryError
from .image import build_derived, derives_from_workspace, not_derived
from .names import HOME_DIR

if TYPE_CHECKING:
    from .workspaces import WorkspaceManager

Progress = Callable[[str], None]
TAIL_LINES = 15

# Runs a lifecycle command as the workspace user in the project, each line of its output to the
# exec's stdout (the progress) and, labelled, to PID 1's stdout: the container's log.
_RUN_AS_USER = r'''
dir=$1 label=$2; shift 2
cd "$dir" || exit 1
printf 'perry: %s: %s\n' "$label" "$PERRY_SETUP_SHOWN" >/proc/1/fd/1
runuser -u workspace -- env HOME=/home/workspace USER=workspace LOGNAME=workspace "$@" </dev/null 2>&1 |
while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "$line"
    printf '%s: %s\n' "$label" "$line" >/proc/1/fd/1 2>/dev/null
done
status=${PIPESTATUS[0]}
printf 'perry: %s exited with %s\n' "$label" "$status" >/proc/1/fd/1
exit "$status"
'''

_READ_CONFIG = ('for f in ' + " ".join(devcontainer.CANDIDATES) + '; do '
                'if [ -f "$f" ]; then echo "$f"; exec cat "$f"; fi; done; exit 3')


class SetupFailed(PerryError):
    """A lifecycle command failed: the workspace stays, `error`, for the user to look into."""

    code = "setup_failed"
    status = 422


def read_config(manager: "WorkspaceManager", name: str, project_dir: str) -> devcontainer.Devcontainer | None:
    result = manager.run(name, ["sh", "-c", _READ_CONFIG], user="workspace", workdir=project_dir)
    if result["exitCode"] == 3:
        return None
    if result["exitCode"] != 0:
        raise PerryError(f"reading the project's devcontainer.json failed: {result['stderr'].strip()}",
                         code="devcontainer_unreadable")
    path, _, text = result["stdout"].partition("\n")
    return devcontainer.parse(text, path)


def after_clone(manager: "WorkspaceManager", name: str, record: dict[str, Any], project_dir: str,
                progress: Progress) -> None:
    """Apply the project's devcontainer.json, if it has one, up to its postCreateCommand (which
    `lifecycle` runs); ``record`` and the saved one get ``devcontainer``, ``displayName`` and
    maybe ``image``."""
    config = read_config(manager, name, project_dir)
    if config is None:
        return
    progress(f"applying {config.path}")
    changes: dict[str, Any] = {"devcontainer": {**config.to_record(), "postCreateDone": False}}
    if config.name:
        changes["displayName"] = config.name
    image = _image(manager, name, config, project_dir, progress)
    if image is not None:
        changes.update(image=image, customImage=image)
    record.update(changes)
    manager.store.patch_workspace(name, **changes)  # kept whatever follows: a failed command is tried again
    if image is not None or config.env:
        progress("making the container again with the devcontainer's "
                 + " and ".join(w for w, used in (("environment", config.env), ("image " + str(image), image)) if used))
        manager.recreate_container(name, record, progress)
    for warning in config.warnings:  # after the container is made again: its log is what `perry logs` shows
        progress(f"warning: {warning}")
        log_line(manager, name, f"perry: warning: {warning}")


def log_line(manager: "WorkspaceManager", name: str, text: str) -> None:
    """One line into the container's log (PID 1's stdout), where `perry logs` reads."""
    manager.run(name, ["sh", "-c", 'printf "%s\\n" "$1" >/proc/1/fd/1', "perry-log", text], user="root")


def _image(manager: "WorkspaceManager", name: str, config: devcontainer.Devcontainer, project_dir: str,
           progress: Progress) -> str | None:
    workspace_image = manager.settings.image
    engine = manager.engine_of(name)
    if config.image:
        with engine.errors("looking up the devcontainer's image"):
            image = engine.image(config.image)
        if image is None:
            raise PerryError(f"{config.path} names image {config.image}, which the engine does not have: build it "
                             f"FROM {workspace_image} with `perry build --dockerfile PATH --tag {config.image}`",
                             code="image_missing", status=409)
        if not derives_from_workspace(image):
            raise not_derived(config.image, workspace_image)
        return config.image
    if not config.dockerfile:
        return None
    context = posixpath.normpath(posixpath.join(project_dir, config.context or "."))
    with engine.errors("reading the devcontainer's build context"):
        tar = engine.get_archive(manager.naming.container(name), context)
    if tar is None:
        raise devcontainer.InvalidDevcontainer(f"{config.path}: build.context {config.context!r} does not exist "
                                               "in the project")
    dockerfile = posixpath.relpath(config.dockerfile, config.context or ".")
    tag = image_tag(manager, name)

    def said(event: dict) -> None:
        if event.get("message"):
            progress(f"{event.get('stage', 'build')}: {event['message']}")

    with engine.errors("building the devcontainer's image"):
        build_derived(engine, tag=tag, workspace_image=workspace_image, progress=said,
                      context_tar=archive.reroot(tar, posixpath.basename(context) or "/"),
                      dockerfile=dockerfile, buildargs=config.build_args)
    return tag


def image_tag(manager: "WorkspaceManager", name: str) -> str:
    """The image a workspace's devcontainer build.dockerfile makes: its own, gone with it."""
    return f"{manager.naming.container(name).lower()}-devcontainer:latest"


def remove_image(manager: "WorkspaceManager", name: str, image: str | None) -> None:
    if image != image_tag(manager, name):
        return
    try:
        manager.engine_of(name).remove_image(image)
    except PerryError:
        pass  # still used (a container someone made from it): left, as docker would


def lifecycle(manager: "WorkspaceManager", name: str, record: dict[str, Any], project_dir: str,
              progress: Progress, started: bool = True) -> None:
    """postCreateCommand (until it once succeeded), then postStartCommand when the container
    ``started`` (a `perry start` of a running workspace starts nothing)."""
    config = record.get("devcontainer")
    if not config:
        return
    if not config.get("postCreateDone"):
        _run(manager, name, "postCreateCommand", config.get("post_create"), project_dir, progress)
        config["postCreateDone"] = True
        manager.store.patch_workspace(name, devcontainer=config)
        started = True  # the setup is only now complete: its start command has not run yet
    if started:
        _run(manager, name, "postStartCommand", config.get("post_start"), project_dir, progress)


def _run(manager: "WorkspaceManager", name: str, key: str, command: Any, project_dir: str,
         progress: Progress) -> None:
    for label, argv in devcontainer.command_argvs(command):
        shown = f"{key}{f' ({label})' if label else ''}"
        progress(f"{shown}: {devcontainer.shown(argv)}")
        tail: deque[str] = deque(maxlen=TAIL_LINES)

        def line(text: str) -> bool:
            tail.append(text)
            progress(f"{shown}: {text}")
            return False

        result = manager.run(name, ["bash", "-c", _RUN_AS_USER, "perry-setup", project_dir, shown, *argv],
                             user="root", env={"PERRY_SETUP_SHOWN": devcontainer.shown(argv)}, on_line=line)
        if result["exitCode"] != 0:
            output = "\n".join(tail) or result["stderr"].strip() or "(no output)"
            raise SetupFailed(f"{shown} failed (exit {result['exitCode']}); the end of its output:\n{output}")


def workspace_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What a workspace's description says of its devcontainer.json."""
    config = record.get("devcontainer") or {}
    return {
        "displayName": record.get("displayName"),
        "devcontainer": config.get("path"),
        "warnings": list(config.get("warnings") or []),
        "declaredPorts": list(config.get("forward_ports") or []),
    }


def container_env(record: dict[str, Any]) -> dict[str, str]:
    config = record.get("devcontainer") or {}
    return {**(config.get("container_env") or {}), **(config.get("remote_env") or {})}
