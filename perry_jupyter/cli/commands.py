"""The `perry` command line: a thin face over the REST API (perry_jupyter.client).

Nothing of jupyter_server, tornado or the Docker SDK is imported on this path (only
`perry serve` / `perry agent run` import the server, inside the command), so `perry list`
answers at once. rich is imported inside the commands that draw with it.

Every command returns data (the workspace, the list, the task...) and names the
presenter's view of it (perry_jupyter.present); a *face* shows the two. The terminal's
(perry_jupyter.cli.draw) draws the view with rich, or prints the data with ``--json``;
the `%perry` magics run this same tree with ``obj={"client": ..., "face": ...}``, and
their face hands the data back with an HTML view of it. A face also shows the progress
of long work and asks for confirmations (or cannot: ``can_ask``). The commands raise
click exceptions and never call sys.exit.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable

import click

from perry_worker import agents as agent_registry

from perry_jupyter import present
from perry_jupyter._version import __version__
from perry_jupyter.cli import clientconfig
from perry_jupyter.client import PerryClient, PerryClientError, ServerUnreachable

ALIASES = {"ls": "list", "rm": "delete"}
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


def _face():
    """What the commands draw on: ``ctx.obj["face"]`` (the magics' notebook), else the terminal."""
    obj = click.get_current_context().find_root().obj
    face = obj.get("face") if isinstance(obj, dict) else None
    if face is None:
        from perry_jupyter.cli.draw import Terminal

        face = Terminal()
    return face


class PerryCommand(click.Command):
    """A command whose callback returns data, which the face shows with the presenter's
    ``view(data, params)`` of it (``params``: the command's, plus ``prog``, the name the
    tree was called by: ``perry`` or ``%perry``)."""

    def __init__(self, *args: Any, view: Callable[[Any, dict], Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.view = view

    def invoke(self, ctx: click.Context) -> Any:
        data = super().invoke(ctx)
        if self.view is None or data is None:
            return data
        params = {**ctx.params, "prog": ctx.find_root().info_name or "perry"}
        return _face().show(data, lambda: self.view(data, params), as_json=bool(ctx.meta.get(JSON_FLAG)))


def command(group: click.Group, view: Callable[[Any, dict], Any] | None = None, name: str | None = None,
            **settings: Any):
    """``group.command`` for a command whose data ``view`` shows."""
    return group.command(name, cls=PerryCommand, view=view, **settings)


JSON_FLAG = "perry.json"


def json_option(what: str):
    """``--json``: the face prints the command's data as JSON instead of drawing it."""
    return click.option("--json", is_flag=True, expose_value=False, help=f"Print {what} as JSON.",
                        callback=lambda ctx, _param, value: ctx.meta.__setitem__(JSON_FLAG, value))


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


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def _parse_duration(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Seconds from `90`, `90s`, `30m` or `2h`; `0` or `off` is never."""
    if value is None:
        return None
    text = value.strip().lower()
    if text == "off":
        return 0
    number, unit = (text[:-1], text[-1]) if text[-1:] in DURATION_UNITS else (text, "s")
    if not number.isdigit():
        raise click.BadParameter(f"{value!r} is not a duration such as 90s, 30m or 2h (or off)", ctx, param)
    return int(number) * DURATION_UNITS[unit]


def _idle_timeout_option(command):
    return click.option("--idle-timeout", callback=_parse_duration, metavar="DURATION",
                        help="Stop the workspace after this long unused (90s, 30m, 2h; off: never; "
                             "default: the server's PerryApp.idle_timeout).")(command)


def _waking(client: PerryClient, name: str):
    """A spinner while a use wakes a workspace the idle check stopped (the server starts it first)."""
    try:
        ws = client.get_workspace(name)
    except PerryClientError:
        return contextlib.nullcontext()  # the call itself says what is wrong
    if ws.get("status") == "stopped" and ws.get("stopReason") == "idle":
        return _face().working(f"Starting workspace {name} (stopped while idle)...")
    return contextlib.nullcontext()


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


def _create(client: PerryClient, name: str, clone: str | None, env: dict[str, str],
            engine: str | None = None, image: str | None = None, idle_timeout: int | None = None,
            **limits: Any) -> dict:
    with _face().working(f"Creating workspace {name} (the first start can take a minute)..."):
        return client.create_workspace(name, clone=_clone_arg(clone), env=env or None, engine=engine,
                                       image=image, idle_timeout=idle_timeout, **limits)


def _needs_a_terminal(why: str) -> None:
    """Refuse, saying ``why``, on a face with no terminal to hand over (a notebook's kernel)."""
    if not _face().has_terminal:
        raise click.UsageError(why)


def _run_server(args: tuple[str, ...], command: str) -> None:
    _needs_a_terminal(f"`perry {command}` would block this kernel; run it in a terminal")
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
    _run_server(args, "serve")


@cli.group()
def agent() -> None:
    """The Perry server as an agent: `run` it here, or `install` it as a systemd service."""


@agent.command("run", context_settings=PASS_THROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def agent_run(args: tuple[str, ...]) -> None:
    """Run the Perry server headless (same as `perry serve`)."""
    _run_server(args, "agent run")


@command(cli, view=lambda image, p: present.image_built(image))
@click.option("--bootstrap/--no-bootstrap", default=None,
              help="Build the base with debootstrap (no registry needed), or not; default: the server decides.")
@click.option("--no-cache", is_flag=True, help="Rebuild every layer.")
@click.option("--agents", help="Coding agents' CLIs to install, comma-separated, of: " + ",".join(agent_registry.NAMES) + " "
                               "(remembered by the server; default: what it has configured).")
@click.option("--engine", metavar="NAME", help="The engine to build on (default: the default one).")
@click.option("--copy-from", metavar="NAME", help="Copy the image from this engine to --engine instead "
                                                  "of building it (no registry needed).")
@click.option("--dockerfile", type=click.Path(dir_okay=False), metavar="PATH",
              help="Build your own image from this Dockerfile (its folder is the context; it must start "
                   "FROM Perry's workspace image), for `perry create --image`. Needs --tag.")
@click.option("--tag", metavar="TAG", help="The name of the image --dockerfile builds.")
def build(bootstrap: bool | None, no_cache: bool, agents: str | None, engine: str | None,
          copy_from: str | None, dockerfile: str | None, tag: str | None) -> dict:
    """Build the workspace image, or with --dockerfile and --tag your own image FROM it."""
    if (dockerfile is None) != (tag is None):
        raise click.UsageError("--dockerfile and --tag go together")
    chosen = [a.strip() for a in agents.split(",") if a.strip()] if agents is not None else None
    final = _face().follow_build(_client().build_image(
        bootstrap=bootstrap, no_cache=no_cache, agents=chosen, engine=engine, copy_from=copy_from,
        dockerfile=os.path.abspath(dockerfile) if dockerfile else None, tag=tag))
    return final.get("image") or {}


def _creation_options(when: str):
    """--clone and --env, shared by `create` and `start` (which uses them only to create)."""
    def add(command):
        command = click.option("--env", "-e", "env", multiple=True, callback=_parse_env, metavar="KEY=VALUE",
                               help=f"An environment variable for the workspace{when} (repeatable; "
                                    "KEY alone takes this shell's value).")(command)
        return click.option("--clone", metavar="URL_OR_PATH",
                            help=f"A git repository to clone into the workspace{when}.")(command)
    return add


def _reported(verb: str) -> Callable[[Any, dict], Any]:
    return lambda ws, p: present.workspace(ws, verb=verb)


def _limit_options(lift: str):
    """--cpus, --memory and --pids, shared by `create` and `limit`."""
    def add(command):
        command = click.option("--pids", metavar="N", help=f"Processes it may run{lift}.")(command)
        command = click.option("--memory", metavar="SIZE", help=f"Memory it may use, such as 4g or 512m{lift}.")(command)
        return click.option("--cpus", metavar="N", help=f"CPUs it may use, such as 2 or 0.5{lift}.")(command)
    return add


@command(cli, view=_reported("Created"))
@click.argument("name")
@_creation_options("")
@click.option("--engine", metavar="NAME", help="The Docker engine to create it on (`perry engines` lists "
                                               "them; default: the placement rule's choice).")
@click.option("--image", metavar="TAG", help="An image built FROM Perry's workspace image "
                                             "(`perry build --dockerfile PATH --tag TAG`); default: Perry's.")
@_limit_options(" (default: the server's)")
@_idle_timeout_option
def create(name: str, clone: str | None, env: dict[str, str], engine: str | None, image: str | None,
           cpus: str | None, memory: str | None, pids: str | None, idle_timeout: int | None) -> dict:
    """Create a workspace and wait until it is ready."""
    return _create(_client(), name, clone, env, engine, image, idle_timeout, cpus=cpus, memory=memory, pids=pids)


def _limit_changes(cpus: str | None, memory: str | None, pids: str | None) -> dict[str, Any]:
    return {k: (None if v.lower() == "none" else v) for k, v in
            (("cpus", cpus), ("memory", memory), ("pids", pids)) if v is not None}


@command(cli, view=_reported("Limited"))
@click.argument("name")
@_limit_options("; `none` lifts the limit")
def limit(name: str, cpus: str | None, memory: str | None, pids: str | None) -> dict:
    """Change a workspace's CPU, memory and process limits, live where Docker can."""
    given = _limit_changes(cpus, memory, pids)
    if not given:
        raise click.UsageError("give --cpus, --memory or --pids")
    return _client().update_workspace(name, **given)


@command(cli, view=_reported("Updated"))
@click.argument("name")
@_idle_timeout_option
@_limit_options("; `none` lifts the limit")
def update(name: str, idle_timeout: int | None, cpus: str | None, memory: str | None, pids: str | None) -> dict:
    """Change a workspace's settings (those given; the rest stay as they are)."""
    changes = {"idleTimeout": idle_timeout} if idle_timeout is not None else {}
    changes.update(_limit_changes(cpus, memory, pids))
    if not changes:
        raise click.UsageError("give a setting to change, such as --idle-timeout 30m or --memory 4g")
    return _client().update_workspace(name, **changes)


class _Started(dict):
    """A workspace `start` made (its view says Created) rather than started."""


@command(cli, view=lambda ws, p: present.workspace(ws, verb="Created" if isinstance(ws, _Started) else "Started"))
@click.argument("name")
@_creation_options(", if it has to be created")
def start(name: str, clone: str | None, env: dict[str, str]) -> dict:
    """Start a workspace (creating it if it does not exist)."""
    client = _client()
    try:
        with _face().working(f"Starting workspace {name}..."):
            return client.start_workspace(name)
    except PerryClientError as e:
        if e.status != 404 or e.code != "not_found":
            raise
    return _Started(_create(client, name, clone, env))


@command(cli, view=_reported("Stopped"))
@click.argument("name")
def stop(name: str) -> dict:
    """Stop a workspace (its volumes stay)."""
    with _face().working(f"Stopping workspace {name}..."):
        return _client().stop_workspace(name)


@command(cli, view=_reported("Moved"))
@click.argument("name")
@click.option("--to", "engine", required=True, metavar="ENGINE",
              help="The engine to move it to (`perry engines` lists them).")
def move(name: str, engine: str) -> dict:
    """Move a workspace to another engine: stop it, copy its home and Docker volumes there, start it
    there, then remove it here (a move cut short leaves it where it was)."""
    final = _face().follow_build(_client().move_workspace(name, engine), f"moving {name} to {engine}")
    return final.get("workspace") or {}


@command(cli, view=_reported("Cloned"))
@click.argument("source")
@click.argument("name")
def clone(source: str, name: str) -> dict:
    """Make workspace NAME, a copy of SOURCE's home and Docker volumes with its own SSH port (SOURCE is
    paused while its volumes are copied)."""
    final = _face().follow_build(_client().clone_workspace(source, name), f"cloning {source} as {name}")
    return final.get("workspace") or {}


@command(cli, name="list", short_help="List workspaces (alias: ls).",
         view=lambda found, p: present.workspaces(found, prog=p["prog"]))
@json_option("the workspaces")
def list_() -> list:
    """List workspaces (alias: ls)."""
    return _client().list_workspaces()


class EnginesGroup(click.Group):
    """`perry engines` lists; `perry engines add|remove ...` change."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=EnginesGroup)
def engines() -> None:
    """The Docker engines workspaces run on: `perry engines`, `perry engines add NAME ADDRESS`,
    `perry engines remove NAME`."""


@command(engines, name="list", view=lambda found, p: present.engines(found))
@json_option("the engines")
def engines_list() -> list:
    """List the engines: address, reachable, version, CPUs, memory, workspaces, round trip."""
    return _client().list_engines()


@command(engines, name="add", view=lambda engine, p: present.engine_added(engine))
@click.argument("name")
@click.argument("address")
@click.option("--ssh-host", help="Where SSH reaches its workspaces (default: the engine's host).")
@click.option("--ssh-key", help="Private key file (on the server's machine) for an ssh:// engine.")
@click.option("--tls-ca", help="CA certificate file for a tcp:// engine.")
@click.option("--tls-cert", help="Client certificate file for a tcp:// engine.")
@click.option("--tls-key", help="Client key file for a tcp:// engine.")
@click.option("--bind-address", help="Host address its workspaces' ports are published on.")
def engines_add(name: str, address: str, ssh_host: str | None, ssh_key: str | None, tls_ca: str | None,
                tls_cert: str | None, tls_key: str | None, bind_address: str | None) -> dict:
    """Add an engine: unix:///path, ssh://user@host[:port], tcp://host:2376 or context:NAME."""
    return _client().add_engine(name, address, sshHost=ssh_host, sshKey=ssh_key, tlsCa=tls_ca, tlsCert=tls_cert,
                                tlsKey=tls_key, bindAddress=bind_address)


@command(engines, name="remove", view=lambda name, p: present.engine_removed(name))
@click.argument("name")
def engines_remove(name: str) -> str:
    """Forget an engine added at run time (refused while it holds workspaces)."""
    _client().remove_engine(name)
    return name


@command(cli, view=lambda ws, p: present.workspace(ws))
@click.argument("name")
@json_option("the workspace")
def info(name: str) -> dict:
    """Show one workspace: status, SSH command line, container and volumes."""
    return _client().get_workspace(name)


class _ExecCommand(PerryCommand):
    """`perry exec NAME -- CMD...`; without `--`, everything after NAME is the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # With `--`, options may come anywhere before it; without, options must precede NAME
        # so that `perry exec ws ls -la` does not read `-la` as Perry's option.
        ctx.allow_interspersed_args = "--" in args
        return super().parse_args(ctx, args)


@cli.command("exec", cls=_ExecCommand, view=lambda result, p: present.exec_result(result))
@click.option("--user", "-u", help="Run as this user (default: the server's, `workspace`).")
@click.option("--workdir", "-w", help="Working directory inside the workspace.")
@click.option("--env", "-e", "env", multiple=True, callback=_parse_env, metavar="KEY=VALUE",
              help="An environment variable for the command (repeatable).")
@click.argument("name")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(user: str | None, workdir: str | None, env: dict[str, str], name: str, command: tuple[str, ...]) -> dict:
    """Run a command in a workspace: perry exec NAME -- CMD [ARGS...]."""
    client = _client()
    with _waking(client, name):
        return client.exec(name, list(command), user=user, workdir=workdir, env=env or None)


@command(cli, view=lambda result, p: present.exec_result(result))
@click.argument("name")
@click.option("--ssh", "use_ssh", is_flag=True,
              help="Log in with the system ssh client on the workspace's SSH port instead.")
@click.pass_context
def shell(ctx: click.Context, name: str, use_ssh: bool) -> dict | None:
    """Open a shell in a workspace (a script on stdin runs there instead: `echo ls | perry shell NAME`)."""
    from perry_jupyter.cli import shell as shell_

    _needs_a_terminal("a notebook has no terminal to hand over: open one from the Perry panel or "
                      "perry_jupyter.widgets.WorkspaceManager(), or run commands with `%perry exec NAME -- CMD`")
    client = _client()
    if not use_ssh and (sys.stdin is None or not sys.stdin.isatty()):
        stdin = sys.stdin.buffer if sys.stdin is not None and hasattr(sys.stdin, "buffer") else sys.stdin
        return shell_.run_script(client, name, stdin.read() if stdin is not None else "")
    if use_ssh:
        ws = client.get_workspace(name)
        if ws.get("status") != "running":
            raise CliError(f"workspace {name!r} is {ws.get('status')}, not running; start it with `perry start {name}`")
        line = present.ssh_line(ws)
        if line is None:
            raise CliError(f"workspace {name!r} has no published SSH port")
        # The CLI becomes ssh; inside a kernel (the magics pass their client) ssh runs as a child.
        embedded = isinstance(ctx.find_root().obj, dict) and ctx.find_root().obj.get("client") is not None
        if not embedded:
            client.close()
        code = shell_.run_ssh(shell_.ssh_argv(line), replace_process=not embedded)
    else:
        code = shell_.run_interactive(client, name)
    if code:
        ctx.exit(code)
    return None


@command(cli, view=lambda result, p: present.synced(result, p["name"]))
@click.argument("name")
def sync(name: str) -> dict:
    """Copy this machine's user files (SSH keys, git config, the worker) into a workspace."""
    with _face().working(f"Syncing workspace {name}..."):
        return _client().sync_workspace(name)


@command(cli, view=lambda text, p: present.logs(text))
@click.argument("name")
@click.option("--tail", "-n", default=200, show_default=True, type=click.IntRange(min=1),
              help="How many lines from the end.")
@click.option("--since", help="Only lines from this time on: seconds since the epoch or ISO 8601 (2026-11-30T03:00:00Z).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing lines as they come, until the workspace stops.")
def logs(name: str, tail: int, since: str | None, follow: bool) -> str | None:
    """Print a workspace container's logs."""
    if not follow:
        return _client().logs(name, tail=tail, since=since)
    _follow(_client().follow_logs(name, tail=tail, since=since), f"following {name}'s log")
    return None


def _follow(lines, what: str) -> None:
    _needs_a_terminal(f"{what} would block this kernel; run it in a terminal")
    try:
        for line in lines:
            click.echo(line)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a user stops following


@command(cli, view=lambda found, p: present.ports(found, p["name"], p["prog"]))
@click.argument("name")
@json_option("the ports")
def ports(name: str) -> list:
    """List the TCP ports listening in a workspace and the processes that own them."""
    return _client().ports(name)


@cli.command()
@click.argument("name")
@click.argument("port", type=click.IntRange(1, 65535))
@click.option("--local", "-l", metavar="[HOST:]PORT",
              help="Where to listen on this machine (default: 127.0.0.1 and the same port; 0 picks a free one).")
def forward(name: str, port: int, local: str | None) -> None:
    """Forward a local TCP port to PORT in a workspace, through the server, until Ctrl-C."""
    from perry_jupyter.cli import forward as forward_

    _needs_a_terminal("a notebook cell cannot hold a listener open: run `perry forward` in a terminal")
    client = _client()
    client.get_workspace(name)  # a missing workspace is an error now, not at the first connection
    try:
        host, number = forward_.parse_local(local, port)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--local") from None
    server = forward_.listen(host, number)
    bound = server.getsockname()
    where = f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"
    click.echo(f"Forwarding {where} -> {name}:{port} (Ctrl-C ends it)", err=False)
    sys.stdout.flush()
    forward_.serve(client, name, port, server, forward_.stderr_line)


@command(cli, short_help="Delete a workspace, its container and volumes (alias: rm).",
         view=lambda result, p: present.deleted(result["name"]))
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, yes: bool) -> dict:
    """Delete a workspace: its container and both of its volumes (alias: rm)."""
    client, face = _client(), _face()
    if not yes and not face.can_ask:
        raise click.UsageError(f"deleting {name} removes its container and both volumes (everything under "
                               "/home/workspace); add --yes to confirm")
    if not yes:
        ws = client.get_workspace(name)  # also a clear not_found before asking anything
        volumes = ws.get("volumes") or {}
        face.ask(f"Deleting workspace {name} removes its container {ws.get('containerName') or name}, "
                 f"its home volume {volumes.get('home') or '(home)'} (everything under /home/workspace) and "
                 f"its Docker volume {volumes.get('docker') or '(docker)'} (images and containers made inside). "
                 "This cannot be undone.", f"Delete workspace {name}?")
    with face.working(f"Deleting workspace {name}..."):
        client.delete_workspace(name)
    return {"name": name, "status": "deleted"}


@command(cli, view=lambda data, p: present.checks(data))
def doctor() -> dict:
    """Check the server, the Docker engine, the image and the host setup."""
    client = _client()
    try:
        data = client.info()
    except ServerUnreachable as e:
        return {"url": client.url, "unreachable": str(e), "checks": []}
    checks = data.get("checks")
    if not isinstance(checks, list) or not checks:  # an older server: derive them
        engine, image = data.get("engine") or {}, data.get("image") or {}
        checks = [
            {"name": "engine", "ok": bool(engine.get("reachable")),
             "message": engine.get("error") or f"Docker engine at {engine.get('address', '?')}"},
            {"name": "image", "ok": bool(image.get("present")),
             "message": f"workspace image {image.get('tag', '?')}", "fix": "run `perry build`"},
        ]
    return {**data, "url": client.url, "checks": checks}


# -- agents: sessions, usage, conversations, tasks ------------------------------------

class SessionsGroup(click.Group):
    """`perry sessions NAME` lists; `perry sessions show NAME ID` reads one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=SessionsGroup, invoke_without_command=False)
def sessions() -> None:
    """Agent sessions in a workspace: `perry sessions NAME`, `perry sessions show NAME ID`."""


@command(sessions, name="list", view=lambda found, p: present.sessions(found, p["name"]))
@click.argument("name")
@click.option("--agent", type=click.Choice(agent_registry.NAMES), help="Only this agent's sessions.")
@json_option("the sessions")
def sessions_list(name: str, agent: str | None) -> list:
    """List the agent sessions of a workspace, newest first."""
    return _client().list_sessions(name, agent=agent)


@command(sessions, name="search", view=lambda found, p: present.search_results(found))
@click.argument("text")
@click.option("--workspace", "-w", help="Only this workspace (default: every running one).")
@click.option("--agent", type=click.Choice(agent_registry.NAMES), help="Only this agent's sessions.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500), help="Messages at most.")
@json_option("the results")
def sessions_search(text: str, workspace: str | None, agent: str | None, limit: int) -> dict:
    """Find the messages of agent sessions that hold TEXT (case-insensitive), across workspaces."""
    return _client().search_sessions(text, workspace=workspace, agent=agent, limit=limit)


@command(sessions, name="show", view=lambda shown, p: present.conversation(shown))
@click.argument("name")
@click.argument("session_id")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 1000), help="Messages to show.")
@json_option("the session and its messages")
def sessions_show(name: str, session_id: str, limit: int) -> dict:
    """Read a session's conversation: turns, tool calls, token use."""
    client = _client()
    session = client.get_session(name, session_id)
    total = session.get("messageCount") or 0
    page = client.session_messages(name, session_id, limit=limit, offset=max(0, total - limit))
    return {"session": session, **page}


@command(sessions, name="resume", view=lambda term, p: present.resumed(term))
@click.argument("name")
@click.argument("session_id")
@click.option("--agent", type=click.Choice(agent_registry.NAMES), help="The session's agent (found when not given).")
@json_option("the terminal, when it is not attached here")
@click.pass_context
def sessions_resume(ctx: click.Context, name: str, session_id: str, agent: str | None) -> dict | None:
    """Resume a session in the agent's own CLI, in a terminal in the workspace (a shell stays when it exits)."""
    from perry_jupyter.cli import shell as shell_

    client = _client()
    term = client.resume_session(name, session_id, agent=agent)
    if not _face().has_terminal or sys.stdin is None or not sys.stdin.isatty():
        return term  # no terminal here to hand over (a notebook, a script): it stays open on the server
    code = shell_.run_interactive(client, name, created=str(term["name"]))
    if code:
        ctx.exit(code)
    return None


@command(cli, view=lambda result, p: present.usage(result))
@click.argument("name", required=False)
@json_option("the usage")
def usage(name: str | None) -> dict:
    """Tokens and cost: per session of a workspace, or per workspace overall."""
    return _client().usage(name)


@command(cli, view=lambda answer, p: present.reply(answer))
@click.argument("name")
@click.argument("session_id")
@click.argument("text")
@json_option("the reply")
def chat(name: str, session_id: str, text: str) -> dict:
    """Continue an agent session with one more message and print the reply."""
    with _face().working(f"Waiting for the agent in {name}..."):
        return _client().send_message(name, session_id, text)


@command(cli, view=lambda found, p: present.task(found, must_succeed=p["wait"]))
@click.argument("name")
@click.argument("prompt")
@click.option("--agent", default=agent_registry.DEFAULT, show_default=True, type=click.Choice(agent_registry.NAMES))
@click.option("--session", "session_id", help="Continue this agent session.")
@click.option("--model", help="The agent's model, e.g. provider/model.")
@click.option("--wait", is_flag=True, help="Wait until the task ends; exit non-zero unless it succeeded.")
@click.option("--callback", help="URL to POST when the task ends (the wake-hook shape).")
@click.option("--callback-token", help="Sent as `Authorization: Bearer` with the callback.")
@json_option("the task")
def dispatch(name: str, prompt: str, agent: str, session_id: str | None, model: str | None,
             wait: bool, callback: str | None, callback_token: str | None) -> dict:
    """Hand a task to an agent in a workspace; it runs there and calls back when done."""
    if callback_token and not callback:
        raise click.UsageError("--callback-token needs --callback")
    client = _client()
    hook = {"url": callback, **({"token": callback_token} if callback_token else {})} if callback else None
    found = client.dispatch(name, prompt, agent=agent, session_id=session_id, model=model, callback=hook)
    if wait:
        import time

        with _face().working(f"Task {found['id']} is running in {name}..."):
            while found.get("status") not in present.FINAL_TASK_STATES:
                time.sleep(1)
                found = client.get_task(name, found["id"])
    return found


@command(cli, view=lambda found, p: present.tasks(found, p["name"], prog=p["prog"]))
@click.argument("name")
@json_option("the tasks")
def tasks(name: str) -> list:
    """List the tasks dispatched to a workspace, newest first."""
    return _client().list_tasks(name)


@command(cli, view=lambda found, p: present.task(found, output=not p["follow"]))
@click.argument("name")
@click.argument("task_id")
@click.option("--follow", "-f", is_flag=True, help="Print the task's whole output as it comes, until it ends.")
@json_option("the task")
def task(name: str, task_id: str, follow: bool) -> dict:
    """Show one task: status, session, exit code, the last lines of its output."""
    client = _client()
    if follow:
        _follow(client.follow_task(name, task_id), f"following task {task_id}")
    return client.get_task(name, task_id)


@command(cli, view=lambda found, p: present.task(found))
@click.argument("name")
@click.argument("task_id")
def cancel(name: str, task_id: str) -> dict:
    """Cancel a running task: its agent process ends."""
    return _client().cancel_task(name, task_id)


# -- changes ---------------------------------------------------------------------------

@command(cli, view=lambda data, p: present.changes(data, p["name"], prog=p["prog"]))
@click.argument("name")
@click.option("--dir", "directory", help="A directory under the workspace's home (default: its project).")
@click.option("--commits", default=10, show_default=True, type=click.IntRange(0, 100), help="Last commits shown.")
@json_option("the git state")
def status(name: str, directory: str | None, commits: int) -> dict:
    """What changed in a workspace's project: branch, ahead/behind, files with +/- lines, last commits."""
    return _client().changes(name, dir=directory, commits=commits)


@command(cli, view=lambda data, p: present.diff(data))
@click.argument("name")
@click.argument("file", required=False)
@click.option("--base", help="Compare with this commit (default: HEAD).")
@click.option("--dir", "directory", help="A directory under the workspace's home (default: its project).")
@click.option("--max-bytes", type=click.IntRange(1), help="Cut the diff after this many bytes (default 512 KiB).")
@json_option("the diff")
def diff(name: str, file: str | None, base: str | None, directory: str | None, max_bytes: int | None) -> dict:
    """The unified diff of a workspace's project (untracked files as additions), coloured on a terminal."""
    return _client().diff(name, file=file, base=base, dir=directory, max_bytes=max_bytes)


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


from perry_jupyter.cli import service  # noqa: E402 (it adds install, uninstall and status to `perry agent`)

service.register(agent)


def main() -> None:
    """The `perry` console script."""
    cli.main(prog_name="perry")


if __name__ == "__main__":
    main()
