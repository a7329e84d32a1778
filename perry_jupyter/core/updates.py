"""What `PATCH /workspaces/{name}` may change, in groups of fields applied together.

Each group is a check (its given fields -> the value to apply, or InvalidInput) and an applier
(``apply(manager, name, value)``, a blocking call); the limits are one group because Docker
changes them in one container update. `WorkspaceManager.update` checks every group of a change
first and applies them only when all are good, so bad input changes nothing. A new setting is
one more entry in ``GROUPS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import limits as resource_limits
from .errors import InvalidInput

MAX_IDLE_TIMEOUT = 30 * 24 * 3600


@dataclass(frozen=True)
class Group:
    fields: tuple[str, ...]
    check: Callable[[dict[str, Any]], Any]
    apply: Callable[[Any, str, Any], None]


# ------------------------------------------------------------- idleTimeout


def validate_idle_timeout(value: Any) -> int | None:
    """Seconds without use before the workspace stops; 0 never; None the server's default."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_IDLE_TIMEOUT:
        raise InvalidInput(f"idleTimeout must be a whole number of seconds from 0 (never stop) to "
                           f"{MAX_IDLE_TIMEOUT}, or null (the server's default)")
    return value


def _apply_idle_timeout(manager: Any, name: str, value: int | None) -> None:
    manager.store.patch_workspace(name, idleTimeout=value)
    # The new timeout counts from now, not from a last use it would already have passed.
    manager.activity.touch(name)


def _apply_limits(manager: Any, name: str, value: dict[str, Any]) -> None:
    manager.apply_limits(name, value)


GROUPS: dict[str, Group] = {
    "idle": Group(("idleTimeout",), lambda given: validate_idle_timeout(given["idleTimeout"]), _apply_idle_timeout),
    "limits": Group(resource_limits.FIELDS, resource_limits.parse, _apply_limits),
}
FIELDS: tuple[str, ...] = tuple(field for group in GROUPS.values() for field in group.fields)
