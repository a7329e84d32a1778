"""The terminal face: the `perry` command tree, its drawing with rich, `perry shell` and
where the CLI finds its server. Nothing here imports Jupyter Server or the Docker SDK.

`main` answers `perry list` by the standard library alone (cli.quick) when it can, and
imports the command tree (click, requests, rich) only for everything else.
"""

from __future__ import annotations

import sys

__all__ = ["cli", "main"]


def main() -> None:
    """The `perry` console script."""
    from perry_jupyter.cli import quick

    try:
        if quick.run(sys.argv[1:]):
            return
    except BrokenPipeError:  # `perry list | head -1`, as click treats it
        sys.exit(1)
    from .commands import main as full

    full()


def __getattr__(name: str) -> object:
    if name == "cli":  # the command tree, imported when first asked for
        from .commands import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
