"""Calling perry_worker inside a workspace: one `docker exec`, one JSON answer."""

from __future__ import annotations

import json
from typing import Any

from perry_worker import source_digest

from .errors import Conflict, NotFound, PerryError
from .names import HOME_DIR


def run_worker(workspaces, name: str, *args: str) -> Any:
    """Run `perry-worker ARGS --json` as the workspace user; its JSON answer, or a PerryError.

    A worker older or newer than this server's is replaced (and the call made again), so a
    workspace made by another Perry version keeps working without `perry sync`.
    """
    ws = workspaces.get(name)
    if ws["status"] != "running":
        raise Conflict(f"workspace {name!r} is {ws['status']}, not running: `perry start {name}` first")
    result = _call(workspaces, name, args)
    if _error_code(result) == "stale_worker":
        workspaces.put_worker(name)
        result = _call(workspaces, name, args)
    return _answer(name, result)


def _call(workspaces, name: str, args: tuple[str, ...]) -> dict[str, Any]:
    return workspaces._exec(name, ["perry-worker", *args, "--json"], user="workspace", workdir=HOME_DIR,
                            env={"HOME": HOME_DIR, "PERRY_WORKER_EXPECT": source_digest()})


def _error_code(result: dict[str, Any]) -> str | None:
    try:
        answer = json.loads(result["stdout"])
    except ValueError:
        return None
    error = answer.get("error") if isinstance(answer, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _answer(name: str, result: dict[str, Any]) -> Any:
    try:
        answer = json.loads(result["stdout"]) if result["stdout"].strip() else None
    except json.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict) and len(answer) == 1:
        err = answer["error"]
        if err.get("code") == "not_found":
            raise NotFound(f"workspace {name!r}: {err.get('message')}")
        if err.get("code") in ("invalid", "bad_request"):
            from .errors import InvalidInput

            raise InvalidInput(err.get("message") or "invalid input")
        if err.get("code") == "agent_error":
            raise PerryError(f"the agent in {name!r} did not answer: {err.get('message')}",
                             code="agent_error", status=502)
        raise PerryError(f"perry-worker in {name!r}: {err.get('message')}", code="worker_error", status=502)
    if result["exitCode"] != 0 or answer is None:
        detail = (result["stderr"] or result["stdout"]).strip().splitlines()[-1:] or ["no output"]
        hint = " (`perry sync` installs the current worker)" if result["exitCode"] in (2, 127) else ""
        raise PerryError(f"perry-worker failed in {name!r} (exit {result['exitCode']}): {detail[0]}{hint}",
                         code="worker_error", status=502)
    return answer
