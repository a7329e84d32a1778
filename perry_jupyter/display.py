"""Short texts for people, shared by the CLI's tables and the notebooks' HTML."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def age(when: Any) -> str:
    """How long ago an ISO time was: ``3d``, ``5h``, ``2m``, ``9s``; ``-`` when unknown."""
    if not isinstance(when, str) or not when:
        return "-"
    try:
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = max(0, int((datetime.now(timezone.utc) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def tokens_text(tokens: Any) -> str:
    if not isinstance(tokens, dict):
        return "-"
    return f"{tokens.get('input', 0):,} in / {tokens.get('output', 0):,} out"


def cost_text(cost: Any) -> str:
    return f"${cost:.4f}" if isinstance(cost, (int, float)) else "-"
