"""`%perry`: the perry CLI as an IPython line magic, its results as HTML and Python objects.

``%load_ext perry_jupyter`` registers it. The magic runs the CLI's own click command tree
(``perry_jupyter.cli.cli``), so arguments, help and usage errors are the CLI's and the two
never drift apart. It passes ``obj={"client": ..., "render": False, "progress": ...}``:
every command then returns its data instead of printing it, and this module wraps that
data in small ``dict``/``list`` subclasses whose ``_repr_html_`` draws the table. So

    %perry list                 # an HTML table of the workspaces
    ws = %perry info alpha      # ws is the workspace dict; `ws` alone shows it as a table

Usage mistakes raise IPython's UsageError with the command's help; server errors raise
PerryError, which IPython shows as the server's one-line message (no traceback), and
which code can catch (it is a PerryClientError, with ``status`` and ``code``).

Inside a JupyterLab that runs the Perry extension, kernels are handed PERRY_URL and
PERRY_TOKEN (perry_jupyter.kernel_env), so nothing needs configuring; elsewhere the CLI's
resolution applies (``perry config worker``, PERRY_URL / PERRY_TOKEN).
"""

from __future__ import annotations

import html
import shlex
import sys
from typing import Any, Callable

import click
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from ..client import PerryClient, PerryClientError
from ..display import age, cost_text, tokens_text

# Commands that make no sense in a kernel: they would block it or need a terminal.
NOT_IN_NOTEBOOKS = {
    "serve": "`perry serve` would block this kernel; run it in a terminal",
    "agent": "`perry agent run` would block this kernel; run it in a terminal",
    "shell": "a notebook has no terminal to hand over: open one from the Perry panel or "
             "perry_jupyter.widgets.WorkspaceManager(), or run commands with `%perry exec NAME -- CMD`",
}

STATUS_COLORS = {"running": "#1a7f37", "succeeded": "#1a7f37", "stopped": "#9a6700", "cancelled": "#9a6700",
                 "creating": "#0969da", "queued": "#0969da", "error": "#cf222e", "failed": "#cf222e",
                 "deleted": "#57606a"}


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
    first = next((a for a in args if not a.startswith("-")), None)
    if first in NOT_IN_NOTEBOOKS:
        raise UsageError(NOT_IN_NOTEBOOKS[first])
    own_client = client is None
    if own_client:
        try:
            client = PerryClient.from_config()
        except ValueError as e:  # a broken client.json or PERRY_URL
            raise PerryError(None, "config", str(e)) from None
    progress = progress if progress is not None else _Progress()
    obj = {"client": client, "render": False, "progress": progress}
    try:
        with cli.make_context("%perry", args, obj=obj) as ctx:
            value = cli.invoke(ctx)
            command = ctx.invoked_subcommand
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
    return wrap(command, value, server_url=client.url)


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
        return f'<div style="color:#57606a">{html.escape(self.text)}</div>' if self.text else ""

    def __repr__(self) -> str:
        return self.text


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


# -- results: the data, with an HTML face ----------------------------------------------

class PerryResult:
    """Mixin of the result types: ``server_url`` (not part of the data) for SSH hosts."""

    server_url: str = ""

    def _repr_html_(self) -> str:
        return render_html(self)


class Workspace(PerryResult, dict):
    verb = ""


class WorkspaceList(PerryResult, list):
    pass


class SessionList(PerryResult, list):
    pass


class Conversation(PerryResult, dict):
    pass


class Task(PerryResult, dict):
    pass


class TaskList(PerryResult, list):
    pass


class Usage(PerryResult, dict):
    pass


class Reply(PerryResult, dict):
    pass


class ExecResult(PerryResult, dict):
    pass


class Checks(PerryResult, dict):
    pass


class Record(PerryResult, dict):
    pass


class Logs(PerryResult, str):
    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


VERBS = {"create": "Created", "start": "Started", "stop": "Stopped", "delete": "Deleted"}


def wrap(command: str | None, value: Any, server_url: str = "") -> Any:
    """The command's data in the result type that renders it."""
    kind: type | None = None
    if command in ("list",):
        kind = WorkspaceList
    elif command in ("create", "start", "stop", "info", "delete"):
        kind = Workspace
    elif command == "sessions":
        kind = SessionList if isinstance(value, list) else Conversation
    elif command in ("dispatch", "task", "cancel"):
        kind = Task
    elif command == "tasks":
        kind = TaskList
    elif command == "usage":
        kind = Usage
    elif command == "chat":
        kind = Reply
    elif command == "exec":
        kind = ExecResult
    elif command == "doctor":
        kind = Checks
    elif command == "logs":
        kind = Logs
    elif command in ("sync", "build"):
        kind = Record
    if kind is None or value is None:
        return value
    if issubclass(kind, dict) and not isinstance(value, dict):
        return value
    if issubclass(kind, list) and not isinstance(value, list):
        return value
    result = kind(value)
    result.server_url = server_url
    if isinstance(result, Workspace):
        result.verb = VERBS.get(command or "", "")
    return result


# -- HTML ------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def status_badge(status: Any) -> str:
    status = str(status or "?")
    color = STATUS_COLORS.get(status, "#57606a")
    return (f'<span class="perry-status perry-status-{_e(status)}" '
            f'style="color:{color};font-weight:600">{_e(status)}</span>')


def ssh_command(ws: dict, server_url: str) -> str | None:
    from ..cli.commands import _ssh_command

    return _ssh_command(ws, server_url or "http://127.0.0.1")


def table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table; the cells are HTML already."""
    head = "".join(f'<th style="text-align:left">{_e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f'<td style="text-align:left">{c}</td>' for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="perry-table {cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def key_values(rows: list[tuple[str, str]], cls: str = "") -> str:
    body = "".join(f'<tr><th style="text-align:left">{_e(k)}</th><td style="text-align:left">{v}</td></tr>'
                   for k, v in rows)
    return f'<table class="perry-table {cls}"><tbody>{body}</tbody></table>'


def note(text: str) -> str:
    return f'<div class="perry-note" style="color:#57606a">{_e(text)}</div>'


def workspaces_html(workspaces: list, server_url: str = "") -> str:
    if not workspaces:
        return note("No workspaces yet; create one with %perry create NAME.")
    rows = []
    for ws in sorted(workspaces, key=lambda w: str(w.get("name"))):
        ssh = ssh_command(ws, server_url)
        rows.append([f"<b>{_e(ws.get('name'))}</b>", status_badge(ws.get("status")),
                     f"<code>{_e(ssh)}</code>" if ssh else "-", _e(age(ws.get("created"))),
                     _e(ws.get("image") or "-")])
    return table(["name", "status", "ssh", "age", "image"], rows, "perry-workspaces")


def workspace_html(ws: dict, server_url: str = "", verb: str = "") -> str:
    if ws.get("status") == "deleted" and set(ws) <= {"name", "status"}:
        return f'<div class="perry-workspace">Deleted workspace <b>{_e(ws.get("name"))}</b></div>'
    volumes = ws.get("volumes") or {}
    container = ws.get("containerName") or "-"
    if ws.get("containerId"):
        container += f" ({str(ws['containerId'])[:12]})"
    ssh = ssh_command(ws, server_url)
    created = ws.get("created")
    rows = [
        ("name", f"<b>{_e(ws.get('name'))}</b>"),
        ("status", status_badge(ws.get("status"))),
        ("ssh", f"<code>{_e(ssh)}</code>" if ssh else "-"),
        ("created", _e(f"{created} ({age(created)} ago)") if created else "-"),
        ("image", _e(ws.get("image") or "-")),
        ("container", _e(container)),
        ("home volume", _e(volumes.get("home") or "-")),
        ("docker volume", _e(volumes.get("docker") or "-")),
        ("docker-in-docker", _e(ws.get("dind") or "-")),
        ("clone", _e(ws.get("clone") or "-")),
    ]
    if ws.get("error"):
        rows.append(("error", f'<span style="color:#cf222e">{_e(ws["error"])}</span>'))
    head = f"<div>{_e(verb)} workspace <b>{_e(ws.get('name'))}</b></div>" if verb else ""
    return f'<div class="perry-workspace">{head}{key_values(rows)}</div>'


def sessions_html(sessions: list) -> str:
    if not sessions:
        return note("No agent sessions in this workspace yet.")
    rows = [[f"<code>{_e(s.get('sessionId'))}</code>", _e(s.get("agent")), _e(s.get("title") or "-"),
             _e(s.get("messageCount", "-")), _e(f"{age(s.get('lastActivity'))} ago"), _e(tokens_text(s.get("tokens")))]
            for s in sessions]
    return table(["id", "agent", "title", "messages", "last activity", "tokens"], rows, "perry-sessions")


def part_html(part: dict) -> str:
    kind = part.get("type")
    if kind == "text":
        return f'<div style="white-space:pre-wrap">{_e(part.get("text") or "")}</div>'
    if kind == "reasoning":
        return f'<div style="white-space:pre-wrap;color:#57606a;font-style:italic">{_e(part.get("text") or "")}</div>'
    if kind == "tool":
        import json

        body = json.dumps(part.get("input"), indent=2, ensure_ascii=False) if part.get("input") is not None else ""
        output = part.get("output")
        if output not in (None, ""):
            body += "\n── output ──\n" + (output if isinstance(output, str) else json.dumps(output, indent=2))
        return (f'<details class="perry-tool"><summary>tool: {_e(part.get("tool"))} '
                f'({_e(part.get("status") or "?")})</summary><pre>{_e(body.strip())}</pre></details>')
    if kind == "file":
        return f'<div style="color:#57606a">file: {_e(part.get("filename") or part.get("url") or part.get("mime"))}</div>'
    return f'<div style="color:#57606a">{_e(kind)}</div>'


def message_html(message: dict) -> str:
    role = str(message.get("role", "?"))
    color = "#1a7f37" if role == "user" else "#0969da"
    parts = "".join(part_html(p) for p in message.get("parts", []) if isinstance(p, dict))
    return (f'<div class="perry-message perry-{_e(role)}" style="border-left:3px solid {color};'
            f'padding-left:8px;margin:6px 0"><div style="color:{color};font-weight:600">{_e(role)} '
            f'<span style="color:#57606a;font-weight:normal">{_e(message.get("time") or "")}</span></div>'
            f'{parts}</div>')


def conversation_html(data: dict) -> str:
    session = data.get("session") or {}
    head = (f"<div><b>{_e(session.get('title') or session.get('sessionId'))}</b> "
            f"({_e(session.get('agent'))}, {_e(session.get('messageCount', 0))} messages, "
            f"{_e(tokens_text(session.get('tokens')))}, cost {_e(cost_text(session.get('cost')))})</div>")
    earlier = note(f"… {data['offset']} earlier messages") if data.get("offset") else ""
    return (f'<div class="perry-conversation">{head}{earlier}'
            + "".join(message_html(m) for m in data.get("messages", [])) + "</div>")


def task_html(task: dict) -> str:
    rows = [("task", f"<code>{_e(task.get('id'))}</code>"), ("workspace", _e(task.get("workspace"))),
            ("agent", _e(task.get("agent"))), ("status", status_badge(task.get("status"))),
            ("prompt", _e(task.get("prompt")))]
    if task.get("sessionId"):
        rows.append(("session", f"<code>{_e(task['sessionId'])}</code>"))
    if task.get("exitCode") is not None:
        rows.append(("exit code", _e(task["exitCode"])))
    if task.get("summary"):
        rows.append(("summary", f'<div style="white-space:pre-wrap">{_e(task["summary"])}</div>'))
    if task.get("error"):
        rows.append(("error", f'<span style="color:#cf222e">{_e(task["error"])}</span>'))
    if task.get("outputTail"):
        rows.append(("output", f"<pre>{_e(chr(10).join(map(str, task['outputTail'])))}</pre>"))
    return f'<div class="perry-task">{key_values(rows)}</div>'


def tasks_html(tasks: list) -> str:
    if not tasks:
        return note("No tasks in this workspace yet; hand one over with %perry dispatch NAME \"...\".")
    rows = [[f"<code>{_e(t.get('id'))}</code>", _e(t.get("agent")), status_badge(t.get("status")),
             _e(age(t.get("created"))), _e(str(t.get("prompt"))[:80])] for t in tasks]
    return table(["id", "agent", "status", "age", "prompt"], rows, "perry-tasks")


def usage_html(data: dict) -> str:
    total = data.get("total") or {}
    if "sessions" in data:
        rows = [[f"<code>{_e(r.get('sessionId'))}</code>", _e(r.get("agent")), _e(tokens_text(r.get("tokens"))),
                 _e(cost_text(r.get("cost")))] for r in data.get("sessions", [])]
        rows.append(["<b>total</b>", "", _e(tokens_text(total.get("tokens"))), _e(cost_text(total.get("cost")))])
        return table(["session", "agent", "tokens", "cost"], rows, "perry-usage")
    rows = [[_e(name), _e(row.get("error") or tokens_text(row.get("tokens"))), _e(cost_text(row.get("cost")))]
            for name, row in sorted((data.get("workspaces") or {}).items())]
    rows.append(["<b>total</b>", _e(tokens_text(total.get("tokens"))), _e(cost_text(total.get("cost")))])
    return table(["workspace", "tokens", "cost"], rows, "perry-usage")


def reply_html(data: dict) -> str:
    reply = data.get("reply")
    if isinstance(reply, dict):
        return message_html(reply)
    return f'<div style="white-space:pre-wrap">{_e(data.get("text") or "")}</div>'


def exec_html(result: dict) -> str:
    code = result.get("exitCode")
    out = f"<pre>{_e(result.get('stdout'))}</pre>" if result.get("stdout") else ""
    err = f'<pre style="color:#cf222e">{_e(result.get("stderr"))}</pre>' if result.get("stderr") else ""
    status = status_badge("succeeded" if code == 0 else "failed")
    return f'<div class="perry-exec">{out}{err}<div>exit code {_e(code)} {status}</div></div>'


def checks_html(data: dict) -> str:
    rows = []
    for check in data.get("checks") or []:
        ok = bool(check.get("ok"))
        mark = '<span style="color:#1a7f37">✓</span>' if ok else '<span style="color:#cf222e">✗</span>'
        fix = f'<div style="color:#9a6700">fix: {_e(check["fix"])}</div>' if not ok and check.get("fix") else ""
        rows.append([mark, _e(check.get("name")), _e(check.get("message")) + fix])
    head = f"<div>Perry {_e(data.get('version', '?'))} at {_e(data.get('url', ''))}</div>"
    return f'<div class="perry-checks">{head}{table(["", "check", ""], rows)}</div>'


def record_html(data: dict) -> str:
    return key_values([(str(k), _e(v)) for k, v in data.items()])


def render_html(value: Any) -> str:
    if isinstance(value, WorkspaceList):
        return workspaces_html(value, value.server_url)
    if isinstance(value, Workspace):
        return workspace_html(value, value.server_url, value.verb)
    if isinstance(value, SessionList):
        return sessions_html(value)
    if isinstance(value, Conversation):
        return conversation_html(value)
    if isinstance(value, Task):
        return task_html(value)
    if isinstance(value, TaskList):
        return tasks_html(value)
    if isinstance(value, Usage):
        return usage_html(value)
    if isinstance(value, Reply):
        return reply_html(value)
    if isinstance(value, ExecResult):
        return exec_html(value)
    if isinstance(value, Checks):
        return checks_html(value)
    if isinstance(value, Logs):
        return f"<pre>{_e(value)}</pre>"
    if isinstance(value, dict):
        return record_html(value)
    return f"<pre>{_e(value)}</pre>"


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
