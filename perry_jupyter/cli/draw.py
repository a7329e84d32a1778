"""The terminal face: draws the presenter's views with rich, shows progress, asks questions.

rich is imported inside the functions that draw, so a command that fails before drawing
(an unreachable server) never loads it.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import click

from perry_jupyter import present
from perry_jupyter.cli.quick import STYLE
from perry_jupyter.present import Cell, Conversation, Diff, Fields, Output, Stack, Table

ROLE_STYLE = {"user": "green"}


def console(stderr: bool = False):
    # Built per call: rich fixes the color system at construction, and tests swap
    # sys.stdout between runs. rich itself honours NO_COLOR and non-ttys.
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def text(line: Iterable[Any]):
    from rich.text import Text

    return Text.assemble(*((c.text, STYLE.get(c.style, "")) if isinstance(c, Cell) else str(c) for c in line))


def draw(view: Any) -> int:
    """Print ``view``; the exit status it asks for."""
    if isinstance(view, Table):
        _table(view)
    elif isinstance(view, Fields):
        _fields(view)
    elif isinstance(view, Conversation):
        _conversation(view)
    elif isinstance(view, Stack):
        return max([draw(v) for v in view.views] or [view.exit_code])
    elif isinstance(view, Diff):
        _diff(view)
    elif isinstance(view, Output):
        if view.stdout:
            click.echo(view.stdout, nl=False)
        if view.stderr:
            click.echo(view.stderr, nl=False, err=True)
    return view.exit_code


def _table(view: Table) -> None:
    if not view.rows:
        if view.empty:
            click.echo(view.empty, err=True)
        return
    from rich.table import Table as RichTable

    table = RichTable(box=None, header_style="bold", pad_edge=False)
    for column in view.columns:
        wraps = column in view.wrap
        table.add_column(column.upper(), no_wrap=not wraps, overflow="fold" if wraps else "ellipsis")
    for row in view.rows:
        table.add_row(*(text([c]) for c in row))
    console().print(table)


def _diff(view: Diff) -> None:
    # click.style, not rich: click drops the colours when stdout is not a terminal, so
    # `perry diff NAME > change.patch` writes a patch git can apply.
    colours = {"good": {"fg": "green"}, "bad": {"fg": "red"}, "busy": {"fg": "cyan"}, "strong": {"bold": True}}
    for line in view.text.splitlines(True):
        style = colours.get(present.diff_line_style(line))
        body, end = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        click.echo((click.style(body, **style) if style else body) + end, nl=False)
    for note in view.notes:
        console(stderr=True).print(text(note))


def _fields(view: Fields) -> None:
    out = console()
    if view.title:
        out.print(text(view.title))
    if view.rows and not view.terse:
        from rich.table import Table as RichTable

        table = RichTable(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, value in view.rows:
            table.add_row(key, text([value]))
        out.print(table)
    for line in view.notes:
        out.print(text(line))


def _part(part: present.Part) -> Any:
    from rich.panel import Panel
    from rich.text import Text

    if part.kind == "text":
        return Text(part.text)
    if part.kind == "reasoning":
        return Text(part.text, style="dim italic")
    if part.kind == "error":
        return Text(part.text, style="bold red")
    if part.kind == "tool":
        return Panel(Text(part.text), title=Text(part.title), title_align="left", border_style="cyan", expand=False)
    return Text(part.text, style="dim")


def _conversation(view: Conversation) -> None:
    from rich.rule import Rule

    out = console()
    if view.title:
        out.print(text(view.title))
    if view.earlier:
        out.print(text([Cell(f"… {view.earlier} earlier messages (--limit shows more)", "muted")]))
    for message in view.messages:
        if view.title:  # a reply alone needs no rule above it
            out.print(Rule(f"{message.role} · {message.time}", align="left", style=ROLE_STYLE.get(message.role, "blue")))
        for part in message.parts:
            out.print(_part(part))


class Terminal:
    """The face the `perry` command tree draws on when run as the CLI."""

    can_ask = True
    has_terminal = True

    def show(self, data: Any, view: Callable[[], Any], as_json: bool = False) -> Any:
        if as_json:
            click.echo(json.dumps(data, indent=2, sort_keys=False))
        else:
            code = draw(view())
            if code:
                raise click.exceptions.Exit(code)
        return data

    @contextmanager
    def working(self, what: str) -> Iterator[None]:
        with console(stderr=True).status(what):
            yield

    def ask(self, warning: str, question: str) -> None:
        click.echo(warning, err=True)
        click.confirm(question, abort=True, err=True)

    def follow_build(self, events: Iterable[dict], what: str = "starting the build") -> dict:
        """Draw the stream of a long operation (an image build, a move, a clone) as a progress bar
        with its messages; the final event."""
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console(stderr=True)) as progress:
            task = progress.add_task(what, total=None)
            for event in events:
                stage = str(event.get("stage") or "")
                if stage == "done":
                    total = progress.tasks[0].total
                    progress.update(task, description="done",
                                    **({"completed": total} if total else {"total": 1, "completed": 1}))
                    return event
                message = present.one_line(event.get("message"))
                update: dict[str, Any] = {"description": stage + (f": {message[:60]}" if message else "")}
                if isinstance(event.get("steps"), int) and event["steps"] > 0:
                    update["total"] = event["steps"]
                if isinstance(event.get("step"), int):
                    update["completed"] = event["step"]
                progress.update(task, **update)
                if message:
                    progress.console.print(text([Cell(f"{stage:>9} ", "muted"), message]))
        return {}
