"""A workspace's resource limits: CPUs, memory and processes.

One validator per field turns what a user gives (``2``, ``"4g"``, ``512``; None for no limit)
into the value Perry keeps: cpus a float, memory bytes, pids a count. The container gets them
at its creation (`create_kwargs`) and, live, through Docker's container update (`update_body`);
the record keeps them, so a re-created container gets them again.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from .errors import InvalidInput

FIELDS = ("cpus", "memory", "pids")
UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?", re.IGNORECASE)
# Docker refuses less than 6 MiB; a shell and sshd need more than that anyway.
MIN_MEMORY = 6 << 20
# Fewer processes than this and not even the workspace's sshd and worker start.
MIN_PIDS = 16
MAX_CPUS = 1024


def parse_cpus(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidInput(f"cpus {value!r} is not a number of CPUs (such as 2 or 0.5)") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.01 <= value <= MAX_CPUS:
        raise InvalidInput(f"cpus must be a number of CPUs between 0.01 and {MAX_CPUS} (such as 2 or 0.5), "
                           f"not {value!r}")
    return float(value)


def parse_memory(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidInput(f"memory must be bytes or a size such as 512m or 4g, not {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = MEMORY.fullmatch(value.strip())
        if match is None:
            raise InvalidInput(f"memory {value!r} is not a size such as 512m or 4g")
        size = int(float(match.group(1)) * UNITS[match.group(2).lower()])
    if size < MIN_MEMORY:
        raise InvalidInput(f"memory must be at least 6m (Docker's minimum), not {value!r}")
    return size


def parse_pids(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_PIDS:
        raise InvalidInput(f"pids must be a whole number of processes, at least {MIN_PIDS}, not {value!r}")
    return value


PARSERS: dict[str, Callable[[Any], Any]] = {"cpus": parse_cpus, "memory": parse_memory, "pids": parse_pids}


def parse(given: Mapping[str, Any]) -> dict[str, Any]:
    """The limits in ``given`` (only the fields it has), each checked; InvalidInput names the wrong one."""
    return {field: PARSERS[field](given[field]) for field in FIELDS if field in given}


def create_kwargs(limits: Mapping[str, Any]) -> dict[str, Any]:
    """The limits as `Engine.create_container` (the SDK's containers.create) takes them.

    Swap is held to the memory limit: a workspace over its memory is refused, not swapped."""
    out: dict[str, Any] = {}
    if limits.get("cpus"):
        out["nano_cpus"] = int(limits["cpus"] * 1e9)
    if limits.get("memory"):
        out["mem_limit"] = out["memswap_limit"] = limits["memory"]
    if limits.get("pids"):
        out["pids_limit"] = limits["pids"]
    return out


def update_body(changes: Mapping[str, Any], machine: Mapping[str, Any]) -> dict[str, Any]:
    """The body of Docker's container update for ``changes`` (only the fields they name).

    Docker cannot lift a CPU or memory limit from a running container (0 means "unchanged"), so
    no limit becomes the machine's whole (``machine``: the engine's {cpus, memory}), which is the same."""
    body: dict[str, Any] = {}
    if "cpus" in changes:
        cpus = changes["cpus"] or machine.get("cpus") or MAX_CPUS
        body["NanoCpus"] = int(cpus * 1e9)
    if "memory" in changes:
        memory = changes["memory"] or machine.get("memory")
        if memory:
            body["Memory"] = body["MemorySwap"] = int(memory)
    if "pids" in changes:
        body["PidsLimit"] = changes["pids"] or -1
    return body


def public(limits: Mapping[str, Any] | None) -> dict[str, Any]:
    """A record's limits as answers show them (None: no limit)."""
    limits = limits or {}
    return {field: limits.get(field) for field in FIELDS}
