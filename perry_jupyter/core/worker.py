"""Calling perry_worker inside a workspace: one `docker exec`, one JSON answer."""

from __future__ import annotations

import json
from typing import Any, Callable

from perry_worker import source_digest

from .errors import Conflict, NotFound, PerryError
from .names import HOME_DIR


def run_worker(workspaces, name: str, *args: str, on_event: Callable[[dict], None] | None = None,
               user: str = "workspace") -> Any:
    """Run `perry-worker ARGS --json` as ``user`` (the workspace user unless said); its JSON answer, or a PerryError.

    A worker older or newer than this server's is replaced (and the call made again), so a
    workspace made by another Perry version keeps working without `perry sync`. Lines
    ``{"event": {...}}`` the worker prints before its answer go to ``on_event`` as they come.
    """
    ws = workspaces.get(name)
    workspaces.require_reachable(ws)  # a 503 naming the engine, not "not running"
    if ws["status"] != "running":
        raise Conflict(f"workspace {name!r} is {ws['status']}, not running: `perry start {name}` first")
    result = _call(workspaces, name, args, on_event, user)
    if _error_code(result) == "stale_worker":
        workspaces.put_worker(name)
        result = _call(workspaces, name, args, on_event, user)
    return _answer(name, result)


def _call(workspaces, name: str, args: tuple[str, ...],
          on_event: Callable[[dict], None] | None = None, user: str = "workspace") -> dict[str, Any]:
    def line(text: str) -> bool:
        try:
            obj = json.loads(text)
        except ValueError:
            return True
        if isinstance(obj, dict) and set(obj) == {"event"} and isinstance(obj["event"], dict):
            on_event(obj["event"])
            return False
        return True

    return workspaces.run(name, ["perry-worker", *args, "--json"], user=user, workdir=HOME_DIR,
                          env={"HOME": HOME_DIR, "PERRY_WORKER_EXPECT": source_digest()},
                          on_line=line if on_event is not None else None)


def _error_code(result: dict[str, Any]) -> str | None:
    return error_code(result["stdout"])


def error_code(stdout: str) -> str | None:
    """The code of a worker's JSON error answer, or None."""
    try:
        answer = json.loads(stdout)
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
        if err.get("code") == "agent_failed":  # the agent's own reason, one line
            raise PerryError(err.get("message") or "the agent failed", code="agent_failed", status=502)
        raise PerryError(f"perry-worker in {name!r}: {err.get('message')}", code="worker_error", status=502)
    if result["exitCode"] != 0 or answer is None:
        detail = (result["stderr"] or result["stdout"]).strip().splitlines()[-1:] or ["no output"]
        hint = " (`perry sync` installs the current worker)" if result["exitCode"] in (2, 127) else ""
        raise PerryError(f"perry-worker failed in {name!r} (exit {result['exitCode']}): {detail[0]}{hint}",
                         code="worker_error", status=502)
    return answer
