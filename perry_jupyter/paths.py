"""Where Perry keeps its files on this machine: one answer for the server and the CLI.

``perry serve`` records where it listens in ``<config dir>/server-<pid>.json`` (mode 600,
with its token), as Jupyter records its own runtime files, and removes it when it stops;
the CLI on the same machine reads it, so it finds a local server on any port.

Standard library only: the CLI imports this on its fast path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TOKEN_FILE = "token"
SERVER_FILE_PREFIX = "server-"


def config_dir() -> Path:
    """``$PERRY_CONFIG_DIR`` (``~`` expanded) or ``~/.config/perry``."""
    env = os.environ.get("PERRY_CONFIG_DIR")
    return Path(env).expanduser() if env else Path.home() / ".config" / "perry"


def token_file(directory: Path | None = None) -> Path:
    return (directory or config_dir()) / TOKEN_FILE


def server_file(pid: int, directory: Path | None = None) -> Path:
    return (directory or config_dir()) / f"{SERVER_FILE_PREFIX}{pid}.json"


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs, and (where /proc tells) is a Perry process rather than a reused pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process, but alive
    except (OverflowError, ValueError):
        return False
    try:
        return b"perry" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the pid


def remove_stale_server_files(directory: Path | None = None) -> None:
    """Remove the records of servers that are gone (killed, so they could not clean up)."""
    directory = directory or config_dir()
    for path in directory.glob(f"{SERVER_FILE_PREFIX}*.json"):
        pid = path.name[len(SERVER_FILE_PREFIX):-len(".json")]
        if pid.isdigit() and not pid_alive(int(pid)):
            try:
                path.unlink()
            except OSError:
                pass


def running_servers(directory: Path | None = None) -> list[dict]:
    """The ``perry serve`` processes recorded in the config dir that still run, newest first.

    Each is the recorded JSON (``url``, ``port``, ``pid``, ``token``, ``started``) plus
    ``file``, its path. A record left by a killed server (its pid gone) is skipped.
    """
    directory = directory or config_dir()
    try:
        candidates = [p for p in directory.iterdir()
                      if p.name.startswith(SERVER_FILE_PREFIX) and p.name.endswith(".json")]
    except OSError:
        return []
    servers = []
    for path in candidates:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or not isinstance(record.get("url"), str):
            continue
        pid = record.get("pid")
        if not isinstance(pid, int) or not pid_alive(pid):
            continue
        servers.append({**record, "file": str(path)})
    servers.sort(key=lambda r: str(r.get("started", "")), reverse=True)
    return servers
