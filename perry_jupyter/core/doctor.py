"""Health checks shared by `GET /perry/api/info` and `perry doctor`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .workspaces import port_free


def run_checks(engine_info: dict, image_info: dict | None, settings, state_dir: Path,
               warnings: list[str] = ()) -> list[dict[str, Any]]:
    checks = []

    def check(name: str, ok: bool, message: str, fix: str | None = None) -> None:
        checks.append({"name": name, "ok": ok, "message": message, **({"fix": fix} if fix and not ok else {})})

    if engine_info.get("reachable"):
        check("engine", True, f"Docker engine {engine_info.get('version')} at {engine_info['address']}")
    else:
        check("engine", False, engine_info.get("error") or "Docker engine not reachable",
              "install and start a Docker engine (as root: `apt-get install docker.io && dockerd &`), "
              "or set PerryApp.docker_host")
    if image_info is None:
        check("image", False, f"cannot check the image {settings.image} without the engine", "start the engine first")
    elif not image_info.get("present"):
        check("image", False, f"workspace image {settings.image} is not built", "run `perry build`")
    elif not image_info.get("upToDate"):
        check("image", True, f"workspace image {settings.image} is built but older than its inputs "
              "(`perry build` refreshes it)")
    else:
        check("image", True, f"workspace image {settings.image} is built and up to date")

    lo, hi = settings.ssh_port_range
    free = sum(1 for p in range(lo, min(hi, lo + 50) + 1) if port_free(settings.bind_address, p))
    check("ports", free > 0, f"SSH ports {lo}-{hi} on {settings.bind_address}: "
          f"{free} of the first {min(hi, lo + 50) - lo + 1} free",
          "choose another range with --PerryApp.ssh_port_range")

    keys = [p for p in settings.public_key_files() if Path(p).expanduser().is_file()]
    check("ssh-keys", bool(keys), f"{len(keys)} public key(s) to install for SSH login"
          if keys else "no public SSH key found (~/.ssh/*.pub): SSH login into workspaces will not work",
          "create one with `ssh-keygen -t ed25519` then `perry sync NAME`")

    check("debootstrap", shutil.which("debootstrap") is not None,
          "debootstrap available to build the image without a registry"
          if shutil.which("debootstrap") else "debootstrap missing: `perry build` needs a registry for its base",
          "apt-get install debootstrap")
    writable = state_dir.exists() or state_dir.parent.exists()
    check("state", writable, f"state directory {state_dir}", "set PERRY_CONFIG_DIR to a writable directory")
    for warning in warnings:
        check("state-recovered", False, warning,
              "nothing to redo: workspaces running in Docker were adopted again; look at the file moved "
              "aside, delete it when done (this notice stays until the server restarts)")
    return checks
