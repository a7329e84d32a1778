"""The state file: what Perry promised, kept safe across processes and crashes.

Every change is a read-modify-write under an inter-process file lock, and the
new content replaces the old file by an atomic rename, so the server, the CLI
and a notebook kernel can share one state directory and a crash at any moment
leaves either the old or the new file, never half of one.

Every write also refreshes ``<file>.good``, the last good copy: a file damaged
behind Perry's back (a full disk, an editor, a copy cut short) is moved aside at
start-up and the good copy takes its place (``recover``), so nothing is lost and
the server still starts.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout

from .errors import PerryError

SCHEMA_VERSION = 1
# A file whose status changed more recently than this is read again at every look: a write within the
# file system's timestamp granularity of the last one could leave the same size and times.
SETTLED_NS = 1_000_000_000


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


class LockedJsonFile:
    """A JSON object in a file, changed only under an inter-process lock, with its last good copy."""

    def __init__(self, path: str | os.PathLike, default: Callable[[], dict[str, Any]] = dict,
                 what: str = "file", mode: int = 0o600, lock_timeout: float = 30.0):
        self.path = Path(path)
        self.good_path = self.path.with_name(self.path.name + ".good")
        self.what = what
        self._default = default
        self._mode = mode
        self._file_lock = FileLock(str(self.path.with_name(self.path.name + ".lock")), timeout=lock_timeout)
        # filelock guards against other processes; this guards threads of ours.
        self._thread_lock = threading.RLock()
        # (the file's status, its text) of the last read of a settled file (see known_text).
        self._kept: tuple[tuple[int, ...] | None, str | None] | None = None

    def _parse(self, text: str) -> tuple[dict[str, Any] | None, str | None]:
        """(the object, None) or (None, what is wrong with the text)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            return None, f"not valid JSON: {e}"
        if not isinstance(data, dict):
            return None, "not a JSON object"
        return data, None

    def read(self) -> dict[str, Any]:
        """The current content (a copy; changing it changes nothing)."""
        return self.parsed(self.text())

    def text(self) -> str | None:
        """The file's text as it is now (None: there is no file yet)."""
        known, text = self.known_text()
        if known:
            return text
        status = self._status()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        # The status is taken before the read: a write in between makes the next look read again.
        if status is None or time.time_ns() - status[-1] > SETTLED_NS:
            self._kept = (status, text)
        return text

    def known_text(self) -> tuple[bool, str | None]:
        """(True, the file's text) when its status shows no change since text() last read it (one
        ``stat``, no read: cheap enough for an event loop); (False, None) when it must be read."""
        kept = self._kept
        if kept is None or kept[0] != self._status():
            return False, None
        return True, kept[1]

    def _status(self) -> tuple[int, ...] | None:
        """What changes with any write to the file, another process's or an editor's in place."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def parsed(self, text: str | None) -> dict[str, Any]:
        """The content ``text`` (of text()) holds."""
        if text is None:
            return self._default()
        data, problem = self._parse(text)
        if data is None:
            raise PerryError(
                f"{self.what} {self.path} is {problem}; Perry will not overwrite it: "
                "restart the server to restore the last good copy, or repair or move it aside",
                code="state_corrupt",
            )
        return data

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
                yield
            finally:
                self._file_lock.release()

    def write(self, data: dict[str, Any]) -> None:
        """Replace the content (call it under ``locked``), keeping a good copy."""
        atomic_write_json(self.path, data, mode=self._mode)
        atomic_write_json(self.good_path, data, mode=self._mode)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """Yield the content for changing; it is saved when the block ends without error."""
        with self.locked():
            data = self.read()
            before = copy.deepcopy(data)
            yield data
            if data != before:
                self.write(data)

    def recover(self) -> str | None:
        """Move a damaged file aside and restore the last good copy; a warning saying so, or None."""
        with self.locked():
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return None
            data, problem = self._parse(text)
            if data is not None:
                if not self.good_path.exists():  # a file from before good copies were kept
                    atomic_write_json(self.good_path, data, mode=self._mode)
                return None
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            os.replace(self.path, aside)
            try:
                good, _ = self._parse(self.good_path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                good = None
            if good is not None:
                atomic_write_json(self.path, good, mode=self._mode)
                restored = f"restored the last good copy {self.good_path}"
            else:
                restored = "found no usable good copy, so it starts empty"
            return (f"{self.what} {self.path} was damaged ({problem}): moved it aside to {aside.name} "
                    f"and {restored}")


class StateStore:
    """``state.json`` in the state directory."""

    def __init__(self, state_dir: str | os.PathLike, lock_timeout: float = 30.0):
        self.dir = Path(state_dir)
        self.file = LockedJsonFile(self.dir / "state.json", default=_empty, what="state file",
                                   lock_timeout=lock_timeout)
        self.path = self.file.path

    def read(self) -> dict[str, Any]:
        """The current state (a copy; changing it changes nothing)."""
        data = self.file.read()
        data.setdefault("version", SCHEMA_VERSION)
        data.setdefault("workspaces", {})
        return data

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """Yield the state for changing; it is saved when the block ends without error."""
        with self.file.transaction() as data:
            data.setdefault("version", SCHEMA_VERSION)
            data.setdefault("workspaces", {})
            yield data

    def recover(self) -> str | None:
        """At start-up: a damaged state file is moved aside and its last good copy restored."""
        return self.file.recover()

    # Small conveniences used all over the workspace manager.

    def workspaces(self) -> dict[str, dict[str, Any]]:
        return self.read()["workspaces"]

    def workspaces_of(self, text: str | None) -> dict[str, dict[str, Any]]:
        """The workspaces of the state file's ``text`` (its ``file.text()``): for a reader that keeps
        what it made of a text until the file changes."""
        return self.file.parsed(text).get("workspaces") or {}

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
