"""Files Perry copies into a workspace: the worker, SSH keys and git config.

The engine's archive API takes a tar stream, so each copy is one in-memory tar with
the owners and modes set right: sshd ignores an authorized_keys file that other
users can write.
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import perry_worker

WORKER_DIR = "/opt/perry"
WORKER_LAUNCHER = "#!/bin/sh\nexec env PYTHONPATH=/opt/perry python3 -m perry_worker \"$@\"\n"
WORKSPACE_UID = 1000


def _add(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int, uid: int = 0, dir: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.uid = info.gid = uid
    info.mtime = int(time.time())
    if dir:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data or b"")
        tar.addfile(info, io.BytesIO(data or b""))


def worker_tar() -> bytes:
    """The perry_worker package plus its launcher, laid out from the container's root."""
    buf = io.BytesIO()
    src = Path(perry_worker.__file__).parent
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "opt/perry", None, 0o755, dir=True)
        _add(tar, "opt/perry/perry_worker", None, 0o755, dir=True)
        for f in sorted(src.rglob("*.py")):
            rel = f.relative_to(src).as_posix()
            _add(tar, f"opt/perry/perry_worker/{rel}", f.read_bytes(), 0o644)
        _add(tar, "usr/local/bin/perry-worker", WORKER_LAUNCHER.encode(), 0o755)
    return buf.getvalue()


def user_files_tar(*, authorized_keys: list[str], git_config: bytes | None,
                   agent_files: list[tuple[str, bytes]] = ()) -> tuple[bytes, list[str]]:
    """The host user's public keys, git config and agent credentials as a tar to unpack in the home,
    and what it holds (names only).

    ``agent_files`` are (path relative to the home, content); they may hold secrets, so
    they land with mode 600 in folders of mode 700.
    """
    copied = []
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        made_dirs: set[str] = set()
        for rel, data in agent_files:
            parts = rel.split("/")
            for i in range(1, len(parts)):
                folder = "/".join(parts[:i])
                if folder not in made_dirs:
                    _add(tar, folder, None, 0o700 if i == len(parts) - 1 else 0o755, uid=WORKSPACE_UID, dir=True)
                    made_dirs.add(folder)
            _add(tar, rel, data, 0o600, uid=WORKSPACE_UID)
            copied.append(f"agent file ~/{rel}")
        if authorized_keys:
            _add(tar, ".ssh", None, 0o700, uid=WORKSPACE_UID, dir=True)
            text = "\n".join(k for k in authorized_keys if k) + "\n"
            _add(tar, ".ssh/authorized_keys", text.encode(), 0o600, uid=WORKSPACE_UID)
            copied.append("ssh keys")
        if git_config is not None:
            _add(tar, ".gitconfig", git_config, 0o644, uid=WORKSPACE_UID)
            copied.append("git config")
    return buf.getvalue(), copied


def reroot(tar: bytes, top: str) -> bytes:
    """A tar of folder ``top`` (as the engine's get_archive gives it: every entry under ``top/``)
    with ``top/`` taken off, so the folder's contents are the tar's root (a build context)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(tar)) as source, tarfile.open(fileobj=out, mode="w") as target:
        for member in source.getmembers():
            if member.name == top:
                continue
            if not member.name.startswith(top + "/"):
                continue
            member.name = member.name[len(top) + 1:]
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return out.getvalue()


def combined(*parts: tuple[str, bytes]) -> bytes:
    """One tar to unpack at the container's root from (folder, tar to unpack in that folder)
    pairs: several copies made in one call of the engine's archive API."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as target:
        for folder, tar in parts:
            base = folder.strip("/")
            with tarfile.open(fileobj=io.BytesIO(tar)) as source:
                for member in source.getmembers():
                    data = source.extractfile(member) if member.isfile() else None
                    member.name = f"{base}/{member.name}" if base else member.name
                    target.addfile(member, data)
    return out.getvalue()
