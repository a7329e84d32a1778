"""Searching the agent sessions of every running workspace at once.

Each workspace searches its own stores (`perry-worker search`, one exec); the workspaces
are asked in parallel, and one that fails is named in ``errors`` without failing the rest.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from perry_worker import agents as agent_registry

from .errors import InvalidInput, PerryError
from .names import validate_name
from .worker import run_worker
from .workspaces import WorkspaceManager

MAX_QUERY = 200
MAX_LIMIT = 500
PARALLEL = 8  # workspaces searched at once: each is one exec and one process in its container


def validate_query(query: Any) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("q must be the text to search for, not empty")
    if len(query) > MAX_QUERY or "\0" in query:
        raise InvalidInput(f"q must be at most {MAX_QUERY} characters, without NUL")
    return query


def search_sessions(workspaces: WorkspaceManager, query: Any, *, workspace: str | None = None,
                    agent: str | None = None, limit: int = 50) -> dict[str, Any]:
    """``{results: [{workspace, agent, sessionId, messageId, role, time, snippet}], truncated, errors}``,
    newest first: the messages of the running workspaces' agent sessions holding ``query``."""
    query = validate_query(query)
    if agent is not None and agent not in agent_registry.NAMES:
        raise InvalidInput("agent must be one of: " + ", ".join(agent_registry.NAMES))
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    args = ["search", f"--text={query}", "--limit", str(limit), *(["--agent", agent] if agent else [])]
    results, errors, truncated = [], [], False
    if workspace is not None:
        validate_name(workspace)
        answers = [(workspace, run_worker(workspaces, workspace, *args), None)]  # its errors are the answer
    else:
        names = [ws["name"] for ws in workspaces.list() if ws["status"] == "running"]

        def one(name: str) -> tuple[str, dict[str, Any] | None, str | None]:
            try:
                return name, run_worker(workspaces, name, *args), None
            except PerryError as e:  # stopped meanwhile, an old image: the others still answer
                return name, None, e.message

        answers = []
        if names:
            with ThreadPoolExecutor(max_workers=min(PARALLEL, len(names)),
                                    thread_name_prefix="perry-search") as pool:
                answers = list(pool.map(one, names))
    for name, answer, error in answers:
        if error is not None:
            errors.append({"workspace": name, "message": error})
            continue
        truncated = truncated or bool(answer.get("truncated"))
        results.extend({"workspace": name, **hit} for hit in answer.get("results", []))
    results.sort(key=lambda hit: hit.get("time") or "", reverse=True)
    return {"query": query, "results": results[:limit], "truncated": truncated or len(results) > limit,
            "errors": errors}
