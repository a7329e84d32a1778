"""The terminal face: the `perry` command tree, its drawing with rich, `perry shell` and
where the CLI finds its server. Nothing here imports Jupyter Server or the Docker SDK.

`main` answers `perry list` by the standard library alone (cli.quick) when it can, starts
`perry serve` / `perry agent run` (whose arguments all go to Jupyter Server) without the
command tree, and imports the tree (click, requests, rich) only for everything else.
"""

from __future__ import annotations

import sys

__all__ = ["cli", "main"]


def main() -> None:
    """The `perry` console script."""
    from perry_jupyter.cli import quick

    server_args = _server_args(sys.argv[1:])
    if server_args is not None:
        from perry_jupyter.serve import main as serve

        serve(server_args)
        return
    try:
        if quick.run(sys.argv[1:]):
            return
    except BrokenPipeError:  # `perry list | head -1`, as click treats it
        sys.exit(1)
    from .commands import main as full

    full()


def _server_args(argv: list[str]) -> list[str] | None:
    """Jupyter Server's arguments when ``argv`` runs the server (as the tree's `serve` would pass them)."""
    for command in (["serve"], ["agent", "run"]):
        if argv[:len(command)] == command:
            return argv[len(command):]
    return None


def __getattr__(name: str) -> object:
    if name == "cli":  # the command tree, imported when first asked for
        from .commands import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
