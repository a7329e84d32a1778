"""The `perry` command line: a thin face over the REST API (perry_jupyter.client).

Nothing of jupyter_server, tornado or the Docker SDK is imported on this path (only
`perry serve` / `perry agent run` import the server, inside the command), so `perry list`
answers at once. rich is imported inside the commands that draw with it.

The command functions raise click exceptions and never call sys.exit, so the same tree
can be driven by the `%perry` magics with ``cli.main(args, standalone_mode=False,
obj={"client": client})``. Every command returns its data (the workspace, the list, the
task...); with ``obj["render"] = False`` it prints nothing and the caller renders what it
returns (the magics: HTML tables), and ``obj["progress"]`` (a callable taking a line, or
None when the work is done) replaces the terminal spinners.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import urlsplit

import click

from perry_jupyter.cli import clientconfig
from perry_jupyter._version import __version__
from perry_jupyter.client import PerryClient, PerryClientError, ServerUnreachable
from perry_jupyter.display import age, cost_text, tokens_text

ALIASES = {"ls": "list", "rm": "delete"}
STATUS_STYLE = {"running": "green", "stopped": "yellow", "creating": "cyan", "error": "bold red"}
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


class CliError(click.ClickException):
    """One line on stderr, ``error: <message>``, exit code 1."""

    exit_code = 1

    def show(self, file=None) -> None:
        message = " ".join(self.format_message().split())  # one line, whatever the server sent
        if file is None:
            click.echo(f"error: {message}", err=True)
        else:
            click.echo(f"error: {message}", file=file)


class PerryGroup(click.Group):
    """The top-level group: aliases (ls, rm) and client errors turned into CliError."""

    def get_command(self, ctx: click.Context, cmd_name: str):
        return super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))

    def resolve_command(self, ctx: click.Context, args: list[str]):
        _, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd else None), cmd, rest

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PerryClientError as e:
            raise CliError(e.message) from None


# -- helpers -------------------------------------------------------------------------

def _client() -> PerryClient:
    """The client in ``ctx.obj["client"]`` (magics, tests), else the configured one."""
    ctx = click.get_current_context()
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and obj.get("client") is not None:
        return obj["client"]
    try:
        client = PerryClient.from_config()
    except ValueError as e:  # a broken client.json or PERRY_URL
        raise CliError(str(e)) from None
    ctx.call_on_close(client.close)
    return client


def _caller() -> dict:
    obj = click.get_current_context().find_root().obj
    return obj if isinstance(obj, dict) else {}


def _prints() -> bool:
    """False when the caller renders the returned data itself (the `%perry` magics)."""
    return _caller().get("render", True) is not False


def _console(stderr: bool = False):
    # Built per call: rich fixes the color system at construction, and the magics and
    # tests swap sys.stdout between runs. rich itself honours NO_COLOR and non-ttys.
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


@contextmanager
def _spinner(text: str) -> Iterator[None]:
    if _prints():
        with _console(stderr=True).status(text):
            yield
        return
    progress = _caller().get("progress")
    if callable(progress):
        progress(text)
    try:
        yield
    finally:
        if callable(progress):
            progress(None)


def _for_people(value: Any, as_json: bool) -> bool:
    """Whether the command should print ``value`` for people; with --json it is printed as JSON
    here, and a caller other than the CLI (the magics) only gets the value back."""
    if not _prints():
        return False
    if as_json:
        _print_json(value)
        return False
    return True


def _parse_env(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", ctx, param)
        if not sep:  # KEY alone passes this machine's value, keeping secrets off the command line
            if key not in os.environ:
                raise click.BadParameter(f"{item!r} is not KEY=VALUE and ${key} is not set here", ctx, param)
            value = os.environ[key]
        env[key] = value
    return env


def _clone_arg(value: str | None) -> str | None:
    """URLs and scp-like git addresses go as they are; local paths become absolute."""
    if not value:
        return None
    if "://" in value:
        return value
    expanded = os.path.expanduser(value)
    if os.path.exists(expanded) or value.startswith((".", "/", "~")):
        return os.path.abspath(expanded)
    return value


def _ssh_host(ws: dict, server_url: str) -> str:
    host = ws.get("sshHost")
    if not host or host in ("0.0.0.0", "::", "[::]"):
        host = urlsplit(server_url).hostname or "127.0.0.1"
    return host


def _ssh_port(ws: dict) -> int | None:
    port = (ws.get("ports") or {}).get("ssh")
    return port if isinstance(port, int) and port > 0 else None


def _ssh_command(ws: dict, server_url: str) -> str | None:
    port = _ssh_port(ws)
    if port is None:
        return None
    return f"ssh -p {port} workspace@{_ssh_host(ws, server_url)}"


def _status_text(status: Any):
    from rich.text import Text

    status = str(status or "?")
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _report_workspace(ws: dict, server_url: str, verb: str) -> None:
    from rich.text import Text

    line = Text.assemble(f"{verb} workspace {ws.get('name')}: ", _status_text(ws.get("status")))
    ssh = _ssh_command(ws, server_url)
    if ssh and ws.get("status") == "running":
        line.append(f"  ({ssh})")
    if ws.get("error"):
        line.append(f"\n  error: {ws['error']}", style="red")
    _console().print(line)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def _create(client: PerryClient, name: str, clone: str | None, env: dict[str, str]) -> dict:
    with _spinner(f"Creating workspace {name} (the first start can take a minute)..."):
        return client.create_workspace(name, clone=_clone_arg(clone), env=env or None)


def _run_server(args: tuple[str, ...]) -> None:
    from perry_jupyter.serve import main as serve_main  # the only heavy import, on purpose here

    code = serve_main(list(args))
    if isinstance(code, int) and code:
        raise click.exceptions.Exit(code)


# -- the command tree ----------------------------------------------------------------

@click.group(cls=PerryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="perry",
                      message="%(prog)s %(version)s")
def cli() -> None:
    """Perry: isolated Docker development workspaces, served by Jupyter.

    The CLI talks to a Perry server (`perry serve`, or any Jupyter server with the
    extension): set it with `perry config worker HOST[:PORT] --token T` or the
    PERRY_URL / PERRY_TOKEN environment variables.
    """


@cli.command(context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def serve(args: tuple[str, ...]) -> None:
    """Run the Perry server headless (port 7391); extra args go to Jupyter Server."""
    _run_server(args)


@cli.group()
def agent() -> None:
    """The Perry server as an agent (alias of `perry serve`)."""


@agent.command("run", context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def agent_run(args: tuple[str, ...]) -> None:
    """Run the Perry server headless (same as `perry serve`)."""
    _run_server(args)


@cli.command()
@click.option("--bootstrap/--no-bootstrap", default=None,
              help="Build the base with debootstrap (no registry needed), or not; default: the server decides.")
@click.option("--no-cache", is_flag=True, help="Rebuild every layer.")
@click.option("--agents", help="Coding agents' CLIs to install, comma-separated: opencode,claude,codex "
                               "(remembered by the server; default: what it has configured).")
def build(bootstrap: bool | None, no_cache: bool, agents: str | None) -> dict:
    """Build the workspace image."""
    chosen = [a.strip() for a in agents.split(",") if a.strip()] if agents is not None else None
    if not _prints():
        final: dict = {}
        with _spinner("Building the workspace image..."):
            progress = _caller().get("progress")
            for event in _client().build_image(bootstrap=bootstrap, no_cache=no_cache, agents=chosen):
                if event.get("stage") == "done":
                    final = event
                    break
                if callable(progress) and event.get("message"):
                    progress(f"{event.get('stage')}: {' '.join(str(event['message']).split())[:120]}")
        return final.get("image") or {}
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn)
    from rich.text import Text

    client = _client()
    final: dict | None = None
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_console(stderr=True)) as progress:
        task = progress.add_task("starting the build", total=None)
        for event in client.build_image(bootstrap=bootstrap, no_cache=no_cache, agents=chosen):
            stage = str(event.get("stage") or "")
            if stage == "done":
                final = event
                total = progress.tasks[0].total
                progress.update(task, description="done", **({"completed": total} if total else {"total": 1, "completed": 1}))
                break
            message = " ".join(str(event.get("message") or "").split())
            update: dict[str, Any] = {"description": stage + (f": {message[:60]}" if message else "")}
            if isinstance(event.get("steps"), int) and event["steps"] > 0:
                update["total"] = event["steps"]
            if isinstance(event.get("step"), int):
                update["completed"] = event["step"]
            progress.update(task, **update)
            if message:
                progress.console.print(Text.assemble((f"{stage:>9} ", "dim"), message))
    image = (final or {}).get("image") or {}
    details = ", ".join(x for x in (
        f"id {str(image['id'])[:19]}" if image.get("id") else "",
        f"created {image['created']}" if image.get("created") else "",
        "up to date" if image.get("upToDate") else "") if x)
    click.echo(f"Image {image.get('tag') or '(unknown tag)'} is built" + (f" ({details})" if details else ""))
    return image


def _creation_options(when: str):
    """--clone and --env, shared by `create` and `start` (which uses them only to create)."""
    def add(command):
        command = click.option("--env", "-e", "env", multiple=True, callback=_parse_env, metavar="KEY=VALUE",
                               help=f"An environment variable for the workspace{when} (repeatable; "
                                    "KEY alone takes this shell's value).")(command)
        return click.option("--clone", metavar="URL_OR_PATH",
                            help=f"A git repository to clone into the workspace{when}.")(command)
    return add


@cli.command()
@click.argument("name")
@_creation_options("")
def create(name: str, clone: str | None, env: dict[str, str]) -> dict:
    """Create a workspace and wait until it is ready."""
    client = _client()
    ws = _create(client, name, clone, env)
    if _prints():
        _report_workspace(ws, client.url, "Created")
    return ws


@cli.command()
@click.argument("name")
@_creation_options(", if it has to be created")
def start(name: str, clone: str | None, env: dict[str, str]) -> dict:
    """Start a workspace (creating it if it does not exist)."""
    client = _client()
    try:
        with _spinner(f"Starting workspace {name}..."):
            ws = client.start_workspace(name)
        verb = "Started"
    except PerryClientError as e:
        if e.status != 404 or e.code != "not_found":
            raise
        ws, verb = _create(client, name, clone, env), "Created"
    if _prints():
        _report_workspace(ws, client.url, verb)
    return ws


@cli.command()
@click.argument("name")
def stop(name: str) -> dict:
    """Stop a workspace (its volumes stay)."""
    client = _client()
    with _spinner(f"Stopping workspace {name}..."):
        ws = client.stop_workspace(name)
    if _prints():
        _report_workspace(ws, client.url, "Stopped")
    return ws


@cli.command("list", short_help="List workspaces (alias: ls).")
@click.option("--json", "as_json", is_flag=True, help="Print the workspaces as JSON.")
def list_(as_json: bool) -> list:
    """List workspaces (alias: ls)."""
    client = _client()
    workspaces = client.list_workspaces()
    if not _for_people(workspaces, as_json):
        return workspaces
    if not workspaces:
        click.echo("No workspaces yet; create one with `perry create NAME`.", err=True)
        return workspaces
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "STATUS", "SSH", "AGE", "IMAGE"):
        table.add_column(column, no_wrap=column != "IMAGE")
    for ws in sorted(workspaces, key=lambda w: str(w.get("name"))):
        port = _ssh_port(ws)
        table.add_row(str(ws.get("name")), _status_text(ws.get("status")),
                      f"{_ssh_host(ws, client.url)}:{port}" if port else "-",
                      age(ws.get("created")), str(ws.get("image") or "-"))
    _console().print(table)
    return workspaces


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the workspace as JSON.")
def info(name: str, as_json: bool) -> dict:
    """Show one workspace: status, SSH command line, container and volumes."""
    client = _client()
    ws = client.get_workspace(name)
    if not _for_people(ws, as_json):
        return ws
    from rich.table import Table

    volumes = ws.get("volumes") or {}
    created = ws.get("created")
    container = ws.get("containerName") or "-"
    if ws.get("containerId"):
        container += f" ({str(ws['containerId'])[:12]})"
    rows: list[tuple[str, Any]] = [
        ("name", ws.get("name")),
        ("status", _status_text(ws.get("status"))),
        ("ssh", _ssh_command(ws, client.url) or "-"),
        ("created", f"{created} ({age(created)} ago)" if created else "-"),
        ("image", ws.get("image") or "-"),
        ("agents", " ".join(ws["agents"]) if ws.get("agents") is not None else "-"),
        ("container", container),
        ("home volume", volumes.get("home") or "-"),
        ("docker volume", volumes.get("docker") or "-"),
        ("docker-in-docker", ws.get("dind") or "-"),
        ("clone", ws.get("clone") or "-"),
    ]
    if ws.get("error"):
        rows.append(("error", ws["error"]))
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in rows:
        table.add_row(key, value if not isinstance(value, (str, int, bool)) else str(value))
    _console().print(table)
    return ws


class _ExecCommand(click.Command):
    """`perry exec NAME -- CMD...`; without `--`, everything after NAME is the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # With `--`, options may come anywhere before it; without, options must precede NAME
        # so that `perry exec ws ls -la` does not read `-la` as Perry's option.
        ctx.allow_interspersed_args = "--" in args
        return super().parse_args(ctx, args)


@cli.command("exec", cls=_ExecCommand)
@click.option("--user", "-u", help="Run as this user (default: the server's, `workspace`).")
@click.option("--workdir", "-w", help="Working directory inside the workspace.")
@click.option("--env", "-e", "env", multiple=True, callback=_parse_env, metavar="KEY=VALUE",
              help="An environment variable for the command (repeatable).")
@click.argument("name")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx: click.Context, user: str | None, workdir: str | None, env: dict[str, str],
          name: str, command: tuple[str, ...]) -> dict:
    """Run a command in a workspace: perry exec NAME -- CMD [ARGS...]."""
    result = _client().exec(name, list(command), user=user, workdir=workdir, env=env or None)
    if not _prints():
        return result
    if result.get("stdout"):
        click.echo(result["stdout"], nl=False)
    if result.get("stderr"):
        click.echo(result["stderr"], nl=False, err=True)
    code = result.get("exitCode")
    if isinstance(code, int) and code != 0:
        ctx.exit(code if 0 < code < 256 else 1)
    return result


@cli.command()
@click.argument("name")
@click.option("--ssh", "use_ssh", is_flag=True,
              help="Log in with the system ssh client on the workspace's SSH port instead.")
@click.pass_context
def shell(ctx: click.Context, name: str, use_ssh: bool) -> None:
    """Open a shell in a workspace (a script on stdin runs there instead: `echo ls | perry shell NAME`)."""
    from perry_jupyter.cli import shell as shell_

    client = _client()
    if use_ssh:
        ws = client.get_workspace(name)
        if ws.get("status") != "running":
            raise CliError(f"workspace {name!r} is {ws.get('status')}, not running; start it with `perry start {name}`")
        port = _ssh_port(ws)
        if port is None:
            raise CliError(f"workspace {name!r} has no published SSH port")
        argv = shell_.ssh_argv(_ssh_host(ws, client.url), port)
        # The CLI becomes ssh; inside a kernel (the magics pass their client) ssh runs as a child.
        embedded = isinstance(ctx.find_root().obj, dict) and ctx.find_root().obj.get("client") is not None
        if not embedded:
            client.close()
        code = shell_.run_ssh(argv, replace_process=not embedded)
    elif sys.stdin is not None and sys.stdin.isatty():
        code = shell_.run_interactive(client, name)
    else:
        stdin = sys.stdin.buffer if sys.stdin is not None and hasattr(sys.stdin, "buffer") else sys.stdin
        script = stdin.read() if stdin is not None else ""
        result = shell_.run_script(client, name, script)
        if result.get("stdout"):
            click.echo(result["stdout"], nl=False)
        if result.get("stderr"):
            click.echo(result["stderr"], nl=False, err=True)
        code = result.get("exitCode")
        code = code if isinstance(code, int) and 0 <= code < 256 else 1
    if code:
        ctx.exit(code)


@cli.command()
@click.argument("name")
def sync(name: str) -> dict:
    """Copy this machine's user files (SSH keys, git config, the worker) into a workspace."""
    client = _client()
    with _spinner(f"Syncing workspace {name}..."):
        result = client.sync_workspace(name)
    copied = result.get("copied") or []
    if _prints():
        click.echo(f"Synced workspace {name}: " + (", ".join(map(str, copied)) if copied else "nothing to copy"))
    return result


@cli.command()
@click.argument("name")
@click.option("--tail", "-n", default=200, show_default=True, type=click.IntRange(min=1),
              help="How many lines from the end.")
def logs(name: str, tail: int) -> str:
    """Print a workspace container's logs."""
    text = _client().logs(name, tail=tail)
    if text and _prints():
        click.echo(text, nl=not text.endswith("\n"))
    return text


@cli.command(short_help="Delete a workspace, its container and volumes (alias: rm).")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, yes: bool) -> dict:
    """Delete a workspace: its container and both of its volumes (alias: rm)."""
    client = _client()
    if not yes and not _prints():  # no terminal to ask in: the caller confirms with --yes
        raise click.UsageError(f"deleting {name} removes its container and both volumes (everything under "
                               "/home/workspace); add --yes to confirm")
    if not yes:
        ws = client.get_workspace(name)  # also a clear not_found before asking anything
        volumes = ws.get("volumes") or {}
        click.echo(
            f"Deleting workspace {name} removes its container {ws.get('containerName') or name}, "
            f"its home volume {volumes.get('home') or '(home)'} (everything under /home/workspace) and "
            f"its Docker volume {volumes.get('docker') or '(docker)'} (images and containers made inside). "
            "This cannot be undone.", err=True)
        click.confirm(f"Delete workspace {name}?", abort=True, err=True)
    with _spinner(f"Deleting workspace {name}..."):
        client.delete_workspace(name)
    if _prints():
        click.echo(f"Deleted workspace {name}")
    return {"name": name, "status": "deleted"}


@cli.command()
@click.pass_context
def doctor(ctx: click.Context) -> dict:
    """Check the server, the Docker engine, the image and the host setup."""
    from rich.text import Text

    client = _client()
    console = _console()
    ok_mark, bad_mark = Text("✓", style="green"), Text("✗", style="bold red")
    try:
        data = client.info()
    except ServerUnreachable as e:
        if not _prints():
            raise
        console.print(Text.assemble(bad_mark, " server: ", str(e)))
        ctx.exit(1)
    checks = data.get("checks")
    if not isinstance(checks, list) or not checks:  # an older server: derive them
        engine, image = data.get("engine") or {}, data.get("image") or {}
        checks = [
            {"name": "engine", "ok": bool(engine.get("reachable")),
             "message": engine.get("error") or f"Docker engine at {engine.get('address', '?')}"},
            {"name": "image", "ok": bool(image.get("present")),
             "message": f"workspace image {image.get('tag', '?')}", "fix": "run `perry build`"},
        ]
    if not _prints():
        return {**data, "url": client.url, "checks": checks}
    console.print(Text.assemble(ok_mark, f" server: Perry {data.get('version', '?')} at {client.url}"))
    failed = 0
    for check in checks:
        ok = bool(check.get("ok"))
        failed += not ok
        console.print(Text.assemble(ok_mark if ok else bad_mark, f" {check.get('name', '?')}: ",
                                    str(check.get("message") or "")))
        if not ok and check.get("fix"):
            console.print(Text.assemble("    fix: ", (str(check["fix"]), "yellow")))
    if failed:
        ctx.exit(1)
    return {**data, "url": client.url, "checks": checks}


# -- agents: sessions, usage, conversations, tasks ------------------------------------

TASK_STYLE = {"queued": "cyan", "running": "cyan", "succeeded": "green", "failed": "bold red", "cancelled": "yellow"}


class SessionsGroup(click.Group):
    """`perry sessions NAME` lists; `perry sessions show NAME ID` reads one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=SessionsGroup, invoke_without_command=False)
def sessions() -> None:
    """Agent sessions in a workspace: `perry sessions NAME`, `perry sessions show NAME ID`."""


@sessions.command("list")
@click.argument("name")
@click.option("--agent", type=click.Choice(["opencode", "claude", "codex"]), help="Only this agent's sessions.")
@click.option("--json", "as_json", is_flag=True, help="Print the sessions as JSON.")
def sessions_list(name: str, agent: str | None, as_json: bool) -> list:
    """List the agent sessions of a workspace, newest first."""
    found = _client().list_sessions(name, agent=agent)
    if not _for_people(found, as_json):
        return found
    if not found:
        click.echo(f"No agent sessions in {name} yet.", err=True)
        return found
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "AGENT", "TITLE", "MESSAGES", "LAST ACTIVITY", "TOKENS"):
        table.add_column(column, no_wrap=column != "TITLE")
    for s in found:
        table.add_row(str(s.get("sessionId")), str(s.get("agent")), str(s.get("title") or "-"),
                      str(s.get("messageCount", "-")), f"{age(s.get('lastActivity'))} ago", tokens_text(s.get("tokens")))
    _console().print(table)
    return found


def _render_part(part: dict) -> Any:
    from rich.markup import escape
    from rich.panel import Panel

    kind = part.get("type")
    if kind == "text":
        return part.get("text") or ""
    if kind == "reasoning":
        return f"[dim italic]{escape(part.get('text') or '')}[/]"
    if kind == "tool":
        body = json.dumps(part.get("input"), indent=2, ensure_ascii=False) if part.get("input") is not None else ""
        output = part.get("output")
        if output not in (None, ""):
            body += "\n── output ──\n" + (output if isinstance(output, str) else json.dumps(output, indent=2))
        return Panel(escape(body.strip()), title=f"tool: {escape(str(part.get('tool')))} ({part.get('status') or '?'})",
                     title_align="left", border_style="cyan", expand=False)
    if kind == "file":
        return f"[dim]file: {escape(str(part.get('filename') or part.get('url') or part.get('mime')))}[/]"
    return f"[dim]{escape(str(kind))}[/]"


@sessions.command("show")
@click.argument("name")
@click.argument("session_id")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 1000), help="Messages to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the session and its messages as JSON.")
def sessions_show(name: str, session_id: str, limit: int, as_json: bool) -> dict:
    """Read a session's conversation: turns, tool calls, token use."""
    client = _client()
    session = client.get_session(name, session_id)
    total = session.get("messageCount") or 0
    page = client.session_messages(name, session_id, limit=limit, offset=max(0, total - limit))
    shown = {"session": session, **page}
    if not _for_people(shown, as_json):
        return shown
    from rich.rule import Rule

    console = _console()
    console.print(f"[bold]{session.get('title') or session_id}[/]  ({session.get('agent')}, "
                  f"{total} messages, {tokens_text(session.get('tokens'))}, cost {cost_text(session.get('cost'))})")
    if page.get("offset"):
        console.print(f"[dim]… {page['offset']} earlier messages (--limit shows more)[/]")
    for message in page.get("messages", []):
        role = message.get("role", "?")
        console.print(Rule(f"{role} · {message.get('time') or ''}", align="left",
                           style="green" if role == "user" else "blue"))
        for part in message.get("parts", []):
            console.print(_render_part(part))
    return {"session": session, **page}


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the usage as JSON.")
def usage(name: str | None, as_json: bool) -> dict:
    """Tokens and cost: per session of a workspace, or per workspace overall."""
    result = _client().usage(name)
    if not _for_people(result, as_json):
        return result
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    if name:
        for column in ("SESSION", "AGENT", "TOKENS", "COST"):
            table.add_column(column)
        for row in result.get("sessions", []):
            table.add_row(str(row.get("sessionId")), str(row.get("agent")), tokens_text(row.get("tokens")),
                          cost_text(row.get("cost")))
    else:
        for column in ("WORKSPACE", "TOKENS", "COST"):
            table.add_column(column)
        for ws_name, row in sorted(result.get("workspaces", {}).items()):
            table.add_row(ws_name, row.get("error") or tokens_text(row.get("tokens")), cost_text(row.get("cost")))
    total = result.get("total") or {}
    table.add_row("[bold]total[/]", *([""] if name else []), tokens_text(total.get("tokens")), cost_text(total.get("cost")))
    _console().print(table)
    return result


@cli.command()
@click.argument("name")
@click.argument("session_id")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print the reply as JSON.")
def chat(name: str, session_id: str, text: str, as_json: bool) -> dict:
    """Continue an agent session with one more message and print the reply."""
    with _spinner(f"Waiting for the agent in {name}..."):
        reply = _client().send_message(name, session_id, text)
    if not _for_people(reply, as_json):
        return reply
    for part in (reply.get("reply") or {}).get("parts", []):
        _console().print(_render_part(part))
    return reply


def _report_task(task: dict) -> None:
    from rich.text import Text

    status = str(task.get("status"))
    line = Text.assemble(f"task {task.get('id')} in {task.get('workspace')} ({task.get('agent')}): ",
                         Text(status, style=TASK_STYLE.get(status, "")))
    if task.get("sessionId"):
        line.append(f"  session {task['sessionId']}")
    if task.get("exitCode") not in (None, 0):
        line.append(f"  exit {task['exitCode']}")
    console = _console()
    console.print(line)
    if task.get("summary"):
        console.print(f"  {task['summary']}", highlight=False, markup=False)
    if task.get("error"):
        console.print(f"  error: {task['error']}", style="red", markup=False)


@cli.command()
@click.argument("name")
@click.argument("prompt")
@click.option("--agent", default="opencode", show_default=True, type=click.Choice(["opencode", "claude", "codex"]))
@click.option("--session", "session_id", help="Continue this agent session.")
@click.option("--model", help="The agent's model, e.g. provider/model.")
@click.option("--wait", is_flag=True, help="Wait until the task ends; exit non-zero unless it succeeded.")
@click.option("--callback", help="URL to POST when the task ends (the wake-hook shape).")
@click.option("--callback-token", help="Sent as `Authorization: Bearer` with the callback.")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_context
def dispatch(ctx: click.Context, name: str, prompt: str, agent: str, session_id: str | None, model: str | None,
             wait: bool, callback: str | None, callback_token: str | None, as_json: bool) -> dict:
    """Hand a task to an agent in a workspace; it runs there and calls back when done."""
    if callback_token and not callback:
        raise click.UsageError("--callback-token needs --callback")
    client = _client()
    hook = {"url": callback, **({"token": callback_token} if callback_token else {})} if callback else None
    task = client.dispatch(name, prompt, agent=agent, session_id=session_id, model=model, callback=hook)
    if wait:
        import time

        with _spinner(f"Task {task['id']} is running in {name}..."):
            while task.get("status") in ("queued", "running"):
                time.sleep(1)
                task = client.get_task(name, task["id"])
    if not _prints():
        return task
    if as_json:
        _print_json(task)
    else:
        _report_task(task)
    if wait and task.get("status") != "succeeded":
        ctx.exit(1)
    return task


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the tasks as JSON.")
def tasks(name: str, as_json: bool) -> list:
    """List the tasks dispatched to a workspace, newest first."""
    found = _client().list_tasks(name)
    if not _for_people(found, as_json):
        return found
    if not found:
        click.echo(f"No tasks in {name} yet; hand one over with `perry dispatch {name} \"...\"`.", err=True)
        return found
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "AGENT", "STATUS", "AGE", "PROMPT"):
        table.add_column(column, no_wrap=column != "PROMPT", overflow="ellipsis")
    for t in found:
        status = str(t.get("status"))
        table.add_row(str(t.get("id")), str(t.get("agent")), f"[{TASK_STYLE.get(status, '')}]{status}[/]",
                      age(t.get("created")), str(t.get("prompt"))[:80])
    _console().print(table)
    return found


@cli.command()
@click.argument("name")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
def task(name: str, task_id: str, as_json: bool) -> dict:
    """Show one task: status, session, exit code, the last lines of its output."""
    found = _client().get_task(name, task_id)
    if not _for_people(found, as_json):
        return found
    _report_task(found)
    for line in found.get("outputTail") or []:
        _console().print(f"  │ {line}", markup=False, highlight=False)
    return found


@cli.command()
@click.argument("name")
@click.argument("task_id")
def cancel(name: str, task_id: str) -> dict:
    """Cancel a running task: its agent process ends."""
    found = _client().cancel_task(name, task_id)
    if _prints():
        _report_task(found)
    return found


@cli.group()
def config() -> None:
    """Which Perry server this CLI talks to."""


@config.command("worker")
@click.argument("target", metavar="HOST[:PORT]|URL")
@click.option("--token", help="The server's token (else the local `perry serve` token file, for this machine only).")
def config_worker(target: str, token: str | None) -> None:
    """Point the CLI at a Perry server (default port 7391)."""
    try:
        url = clientconfig.normalize_url(target)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="HOST[:PORT]") from None
    if token is None:
        # Re-pointing at the same server keeps its token; a new server does not inherit it.
        try:
            previous = clientconfig.read_client_file()
        except ValueError:
            previous = {}
        if str(previous.get("url", "")).rstrip("/") == url.rstrip("/"):
            token = previous.get("token") if isinstance(previous.get("token"), str) else None
    try:
        path = clientconfig.write_client_file(url, token)
    except OSError as e:
        raise CliError(f"cannot write the client file: {e}") from None
    click.echo(f"The CLI now talks to {url} (token {'set' if token else 'not set'}); saved in {path}")
    if os.environ.get("PERRY_URL"):
        click.echo("note: PERRY_URL is set in this shell and wins over the client file", err=True)


@config.command("show")
def config_show() -> None:
    """Show the server URL the CLI uses and where the token comes from (never the token)."""
    try:
        cfg = clientconfig.resolve()
    except ValueError as e:
        raise CliError(str(e)) from None
    click.echo(f"url:        {cfg.url}  ({cfg.url_source})")
    click.echo(f"token:      {'set' if cfg.token else 'not set'}"
               + (f"  ({cfg.token_source})" if cfg.token_source else ""))
    click.echo(f"config dir: {clientconfig.config_dir()}")


def main() -> None:
    """The `perry` console script."""
    cli.main(prog_name="perry")


if __name__ == "__main__":
    main()
