"""The state file: what Perry promised, kept safe across processes and crashes.

Every change is a read-modify-write under an inter-process file lock, and the
new content replaces the old file by an atomic rename, so the server, the CLI
and a notebook kernel can share one state directory and a crash at any moment
leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

from .errors import PerryError

SCHEMA_VERSION = 1


def _empty() -> dict[str, Any]:
    return {"version": SCHEMA_VERSION, "workspaces": {}}


def atomic_write_json(path: Path, data: Any, mode: int = 0o644) -> None:
    """Write JSON to ``path`` so readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class StateStore:
    """``state.json`` in the state directory."""

    def __init__(self, state_dir: str | os.PathLike, lock_timeout: float = 30.0):
        self.dir = Path(state_dir)
        self.path = self.dir / "state.json"
        self._file_lock = FileLock(str(self.dir / "state.json.lock"), timeout=lock_timeout)
        # filelock guards against other processes; this guards threads of ours.
        self._thread_lock = threading.RLock()

    def read(self) -> dict[str, Any]:
        """The current state (a copy; changing it changes nothing)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return _empty()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise PerryError(
                f"state file {self.path} is not valid JSON ({e}); "
                "Perry will not overwrite it: repair it or move it aside",
                code="state_corrupt",
            ) from None
        if not isinstance(data, dict):
            raise PerryError(f"state file {self.path} does not hold a JSON object", code="state_corrupt")
        data.setdefault("version", SCHEMA_VERSION)
        data.setdefault("workspaces", {})
        return data

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """Yield the state for changing; it is saved when the block ends without error."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._thread_lock:
            try:
                self._file_lock.acquire()
            except Timeout:
                raise PerryError(
                    f"could not lock {self._file_lock.lock_file} within "
                    f"{self._file_lock.timeout:.0f}s: another Perry process holds it",
                    code="state_locked",
                    status=503,
                ) from None
            try:
                data = self.read()
                before = copy.deepcopy(data)
                yield data
                if data != before:
                    # 600: workspace env values (tokens, keys) live here.
                    atomic_write_json(self.path, data, mode=0o600)
            finally:
                self._file_lock.release()

    # Small conveniences used all over the workspace manager.

    def workspaces(self) -> dict[str, dict[str, Any]]:
        return self.read()["workspaces"]

    def get_workspace(self, name: str) -> dict[str, Any] | None:
        return self.workspaces().get(name)

    def put_workspace(self, name: str, record: dict[str, Any]) -> None:
        with self.transaction() as data:
            data["workspaces"][name] = record

    def patch_workspace(self, name: str, **changes: Any) -> dict[str, Any] | None:
        with self.transaction() as data:
            record = data["workspaces"].get(name)
            if record is None:
                return None
            record.update(changes)
            return copy.deepcopy(record)

    def remove_workspace(self, name: str) -> None:
        with self.transaction() as data:
            data["workspaces"].pop(name, None)
