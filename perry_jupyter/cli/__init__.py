"""The terminal face: the `perry` command tree, its drawing with rich, `perry shell` and
where the CLI finds its server. Nothing here imports Jupyter Server or the Docker SDK."""

from .commands import cli, main

__all__ = ["cli", "main"]
