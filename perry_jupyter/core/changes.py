"""What changed in a workspace's project: its git state and diff, read by perry_worker as the workspace user."""

from __future__ import annotations

import logging
import posixpath
from typing import Any

from .errors import InvalidInput, PerryError
from .events import EventBus
from .names import HOME_DIR, shown, validate_name, validate_text
from .worker import run_worker
from .workspaces import WorkspaceManager

log = logging.getLogger(__name__)

MAX_DIFF_BYTES = 4 * 1024 * 1024
DEFAULT_DIFF_BYTES = 512 * 1024
REF_LIMIT = 256


def project_dir(ws: dict[str, Any], directory: Any = None) -> str:
    """The directory to read: ``directory`` (absolute, or relative to the home) or the workspace's project."""
    if directory in (None, ""):
        return ws.get("projectDir") or HOME_DIR
    validate_text(directory, "dir")
    path = posixpath.normpath(posixpath.join(HOME_DIR, directory))
    if path != HOME_DIR and not path.startswith(HOME_DIR + "/"):
        raise InvalidInput(f"dir {shown(directory)} is outside the workspace's home {HOME_DIR}")
    return path


def _argument(value: Any, field: str) -> str:
    validate_text(value, field)
    if len(value) > 4096 or not value.isprintable():
        raise InvalidInput(f"{field} {shown(value)} must be printable text of at most 4096 characters")
    return value


class Changes:
    def __init__(self, workspaces: WorkspaceManager, events: EventBus):
        self.workspaces = workspaces
        self.events = events

    def state(self, name: str, directory: Any = None, commits: int = 10) -> dict[str, Any]:
        validate_name(name)
        if not isinstance(commits, int) or not 0 <= commits <= 100:
            raise InvalidInput("commits must be 0-100")
        path = project_dir(self.workspaces.get(name), directory)
        return run_worker(self.workspaces, name, "changes", f"--dir={path}", "--commits", str(commits))

    def diff(self, name: str, file: Any = None, base: Any = None, directory: Any = None,
             max_bytes: int = DEFAULT_DIFF_BYTES) -> dict[str, Any]:
        validate_name(name)
        if not isinstance(max_bytes, int) or not 1 <= max_bytes <= MAX_DIFF_BYTES:
            raise InvalidInput(f"maxBytes must be 1-{MAX_DIFF_BYTES}")
        path = project_dir(self.workspaces.get(name), directory)
        args = ["changes", "diff", f"--dir={path}", "--max-bytes", str(max_bytes)]
        if file not in (None, ""):
            args.append(f"--file={_argument(file, 'file')}")  # one argument: a name like "--x" is no option
        if base not in (None, ""):
            base = _argument(base, "base")
            if len(base) > REF_LIMIT or base.startswith("-"):
                raise InvalidInput(f"base {shown(base)} is not a git revision")
            args.append(f"--base={base}")
        return run_worker(self.workspaces, name, *args)

    def task_ended(self, task: dict[str, Any]) -> None:
        """Tell listeners the project may have changed; what failed here never reaches the task."""
        name = task["workspace"]
        data: dict[str, Any] = {"taskId": task["id"], "directory": task.get("directory")}
        try:
            summary = self.state(name, task.get("directory") or None, commits=1)
            data.update(state=summary["state"], branch=summary["branch"], totals=summary["totals"],
                        head=summary["head"])
        except PerryError as e:  # the workspace stopped, say: listeners still learn to look again
            data["error"] = e.message
        except Exception:
            log.exception("reading the changes of %s after task %s", name, task["id"])
        self.events.publish("changes.updated", name, data=data)
