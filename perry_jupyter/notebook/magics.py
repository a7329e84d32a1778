"""`%perry`: the perry CLI as an IPython line magic, its results as HTML and Python objects.

``%load_ext perry_jupyter`` registers it. The magic runs the CLI's own click command tree
(``perry_jupyter.cli.cli``), so arguments, help and usage errors are the CLI's and the two
never drift apart. It passes ``obj={"client": ..., "face": Notebook(...)}``: each command
hands its data and the presenter's view of it to this face, which returns the data in a
small ``dict``/``list``/``str`` subclass whose ``_repr_html_`` draws the view. So

    %perry list                 # an HTML table of the workspaces
    ws = %perry info alpha      # ws is the workspace dict; `ws` alone shows it as a table
    %perry status alpha         # the project's changed files with +/- lines, the last commits
    %perry diff alpha app.py    # that file's diff, coloured

Usage mistakes raise IPython's UsageError with the command's help; server errors raise
PerryError, which IPython shows as the server's one-line message (no traceback), and
which code can catch (it is a PerryClientError, with ``status`` and ``code``).

Inside a JupyterLab that runs the Perry extension, kernels are handed PERRY_URL and
PERRY_TOKEN (perry_jupyter.kernel_env), so nothing needs configuring; elsewhere the CLI's
resolution applies (``perry config worker``, PERRY_URL / PERRY_TOKEN).
"""

from __future__ import annotations

import shlex
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import click
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from ..client import PerryClient, PerryClientError
from ..present import one_line
from .draw import escape, html as draw_html


class PerryError(PerryClientError):
    """A Perry server's error, raised by ``%perry``: IPython shows its message alone."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[1;31mPerryError\x1b[0m: {self.message}"]


# -- running the CLI tree -----------------------------------------------------------

def run(line: str, client: PerryClient | None = None,
        progress: Callable[[str | None], None] | None = None) -> Any:
    """Run one ``%perry`` line; returns the wrapped result (or None for help and the like)."""
    from ..cli import cli

    try:
        args = shlex.split(line)
    except ValueError as e:  # an unclosed quote
        raise UsageError(f"{e} in: %perry {line}") from None
    own_client = client is None
    if own_client:
        try:
            client = PerryClient.from_config()
        except ValueError as e:  # a broken client.json or PERRY_URL
            raise PerryError(None, "config", str(e)) from None
    progress = progress if progress is not None else _Progress()
    obj = {"client": client, "face": Notebook(progress)}
    try:
        with cli.make_context("%perry", args, obj=obj) as ctx:
            value = cli.invoke(ctx)
    except click.exceptions.Exit as e:  # --help and --version printed their text
        if e.exit_code:
            raise PerryError(None, "exit", f"exit status {e.exit_code}") from None
        return None
    except click.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `%perry`: the help, not an error
            print(e.format_message())
            return None
        raise UsageError(_usage_message(e)) from None
    except click.ClickException as e:
        cause = e.__context__ if isinstance(e.__context__, PerryClientError) else None
        raise PerryError(cause.status if cause else None, cause.code if cause else "error",
                         " ".join(e.format_message().split())) from None
    except click.Abort:
        raise PerryError(None, "aborted", "aborted") from None
    except PerryClientError as e:
        raise PerryError(e.status, e.code, e.message) from None
    finally:
        if callable(getattr(progress, "done", None)):
            progress.done()
        if own_client:
            client.close()
    return value


def _usage_message(e: click.UsageError) -> str:
    message = e.format_message()
    ctx = e.ctx
    if ctx is None:
        return message
    return f"{message}\n\n{ctx.get_help()}"


class _Progress:
    """The CLI's spinner lines, as one output line updated in place and cleared at the end."""

    def __init__(self) -> None:
        self._handle = None

    def __call__(self, text: str | None) -> None:
        if text is None:
            self.done()
            return
        if not _in_kernel():
            print(text, file=sys.stderr)
            return
        from IPython.display import display

        line = _Line(text)
        if self._handle is None:
            self._handle = display(line, display_id=True)
        else:
            self._handle.update(line)

    def done(self) -> None:
        if self._handle is not None:
            self._handle.update(_Line(""))
            self._handle = None


class _Line:
    def __init__(self, text: str):
        self.text = text

    def _repr_html_(self) -> str:
        return f'<div style="color:#57606a">{escape(self.text)}</div>' if self.text else ""

    def __repr__(self) -> str:
        return self.text


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


# -- the face: the data, with an HTML view of it ------------------------------------------

class Notebook:
    """The face the command tree shows on inside a kernel: data back, progress as a line."""

    can_ask = False  # no terminal to ask in: the caller confirms with --yes
    has_terminal = False  # so no `perry shell`, and no `perry serve` blocking the kernel

    def __init__(self, progress: Callable[[str | None], None]):
        self.progress = progress

    def show(self, data: Any, view: Callable[[], Any], as_json: bool = False) -> Any:
        return shown(data, view())

    @contextmanager
    def working(self, what: str) -> Iterator[None]:
        self.progress(what)
        try:
            yield
        finally:
            self.progress(None)

    def follow_build(self, events: Iterable[dict], what: str = "Building the workspace image...") -> dict:
        with self.working(what):
            for event in events:
                if event.get("stage") == "done":
                    return event
                if event.get("message"):
                    self.progress(f"{event.get('stage')}: {one_line(event['message'])[:120]}")
        return {}


class Shown:
    """A command's data (``dict``, ``list`` or ``str``) that draws ``view`` as its HTML."""

    view: Any = None

    def _repr_html_(self) -> str:
        return draw_html(self.view)


class ShownDict(Shown, dict):
    pass


class ShownList(Shown, list):
    pass


class ShownText(Shown, str):
    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


def shown(data: Any, view: Any) -> Any:
    """``data`` as the type of it that draws ``view``."""
    for base, kind in ((dict, ShownDict), (list, ShownList), (str, ShownText)):
        if isinstance(data, base):
            result = kind(data)
            result.view = view
            return result
    return data


# -- the magic -------------------------------------------------------------------------

@magics_class
class PerryMagics(Magics):
    """``%perry``; set ``client`` to talk to a given server instead of the configured one."""

    client: PerryClient | None = None

    @line_magic
    def perry(self, line: str = "") -> Any:
        return run(line, client=self.client)


def _help_text() -> str:
    from ..cli import cli

    with click.Context(cli, info_name="%perry") as ctx:
        return ctx.get_help()


def load_ipython_extension(ipython) -> None:
    """``%load_ext perry_jupyter`` (through perry_jupyter/__init__.py) or ``perry_jupyter.magics``."""
    try:
        PerryMagics.perry.__doc__ = _help_text()
    except Exception:  # the help is a nicety for `%perry?`
        pass
    ipython.register_magics(PerryMagics)


def unload_ipython_extension(ipython) -> None:
    pass
