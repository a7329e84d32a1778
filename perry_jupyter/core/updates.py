"""What `PATCH /workspaces/{name}` may change: one small field each, checked before any is applied.

Each field is a validator (the value as given -> the value to apply, or InvalidInput) and an
applier (``apply(manager, name, value)``, a blocking call). `WorkspaceManager.update` checks
every field of a change first and applies them only when all are good, so bad input changes
nothing. A new field is one more entry in ``FIELDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import InvalidInput

MAX_IDLE_TIMEOUT = 30 * 24 * 3600


@dataclass(frozen=True)
class Field:
    validate: Callable[[Any], Any]
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


FIELDS: dict[str, Field] = {
    "idleTimeout": Field(validate_idle_timeout, _apply_idle_timeout),
}
