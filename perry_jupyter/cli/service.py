"""`perry agent install|uninstall|status`: `perry serve` as a systemd service.

A normal user gets a user unit (``~/.config/systemd/user/perry.service``, run by their own
systemd), root a system unit (``/etc/systemd/system/perry.service``). The unit runs this
same `perry` with the settings given here (port, address, extra server options) and this
shell's PERRY_CONFIG_DIR, and is restarted when it fails. The token is never written into
the unit: the server reads it where it always does (the config directory's ``token`` file,
made on first start), or from PERRY_TOKEN in an optional environment file the unit names.

Without systemd (no ``systemctl``, or a machine not booted with it, as in most containers)
nothing is enabled and the command says what to run instead.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click

from perry_jupyter import paths

UNIT = "perry.service"
UNIT_DIR_ENV = "PERRY_SYSTEMD_UNIT_DIR"  # where the unit goes instead (tests, a packaged layout)
ENV_FILE = "service.env"
DEFAULT_PORT = 7391


def is_root() -> bool:
    return os.geteuid() == 0


def unit_dir(option: str | None) -> Path:
    if option or os.environ.get(UNIT_DIR_ENV):
        return Path(option or os.environ[UNIT_DIR_ENV]).expanduser()
    if is_root():
        return Path("/etc/systemd/system")
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user"


def why_no_systemd() -> str | None:
    """None where systemd runs this machine, else why it does not (sd_booted's own test)."""
    if shutil.which("systemctl") is None:
        return "there is no systemctl on this machine"
    if not os.path.isdir("/run/systemd/system"):
        try:
            init = Path("/proc/1/comm").read_text().strip()
        except OSError:
            init = "unknown"
        return f"this machine was not booted with systemd (its first process is {init!r})"
    return None


def perry_executable() -> str:
    """This `perry`: the console script beside the running Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "perry"
    if beside.exists():
        return str(beside)
    found = shutil.which("perry")
    return str(Path(found).resolve()) if found else str(beside)


def serve_command(port: int, ip: str | None, extra: tuple[str, ...]) -> list[str]:
    return [perry_executable(), "serve", f"--port={port}", *([f"--ip={ip}"] if ip else []), *extra]


def unit_text(command: list[str], config_dir: Path, user_unit: bool) -> str:
    # systemd splits ExecStart like a shell; %-specifiers must be doubled.
    exec_start = " ".join(shlex.quote(part).replace("%", "%%") for part in command)
    lines = [
        "[Unit]",
        "Description=Perry: isolated Docker workspaces for coding agents (perry serve)",
        "After=network-online.target docker.service",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={exec_start}",
        f"Environment={shlex.quote('PERRY_CONFIG_DIR=' + str(config_dir))}",
        # The tools the server runs (docker, ssh, git) are found as in the shell that installed it.
        f"Environment={shlex.quote('PATH=' + os.environ.get('PATH', '/usr/bin:/bin'))}",
        # The token: the config directory's token file, or PERRY_TOKEN=... in this optional file.
        f"EnvironmentFile=-{config_dir / ENV_FILE}",
        "Restart=on-failure",
        "RestartSec=3",
        "",
        "[Install]",
        f"WantedBy={'default.target' if user_unit else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)


def _systemctl(user_unit: bool, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", *(["--user"] if user_unit else []), *args], capture_output=True, text=True)


def _token_note(config_dir: Path) -> str:
    note = (f"The token is not in the unit: the server reads {paths.token_file(config_dir)} (made on its first "
            f"start), or PERRY_TOKEN=... from {config_dir / ENV_FILE} if you create that file (mode 600).")
    if os.environ.get("PERRY_TOKEN"):
        note += " PERRY_TOKEN is set in this shell but is not passed on: put it in that file to keep it."
    return note


def _run_instead(command: list[str], config_dir: Path) -> str:
    line = f"PERRY_CONFIG_DIR={shlex.quote(str(config_dir))} nohup {shlex.join(command)}"
    return (f"Run the server yourself instead, under your own supervisor, or in the background:\n"
            f"  {line} >> {shlex.quote(str(config_dir / 'serve.log'))} 2>&1 &")


def register(agent: click.Group) -> None:
    """Add install, uninstall and status to the `perry agent` group."""

    @agent.command("install", context_settings={"ignore_unknown_options": True})
    @click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535),
                  help="The port the service listens on.")
    @click.option("--ip", help="The address it listens on (default: Jupyter's, localhost).")
    @click.option("--unit-dir", "unit_dir_option", help=f"Write the unit here (default: the user's or the "
                                                        f"system's unit folder; also ${UNIT_DIR_ENV}).")
    @click.argument("server_args", nargs=-1, type=click.UNPROCESSED)
    def agent_install(port: int, ip: str | None, unit_dir_option: str | None, server_args: tuple[str, ...]) -> None:
        """Run `perry serve` as a systemd service that starts at boot (login, for a user) and
        restarts on failure; extra arguments go to the server."""
        config_dir = paths.config_dir()
        command = serve_command(port, ip, server_args)
        missing = why_no_systemd()
        if missing and not (unit_dir_option or os.environ.get(UNIT_DIR_ENV)):
            raise click.ClickException(f"cannot install a service: {missing}; nothing was written.\n"
                                       + _run_instead(command, config_dir))
        user_unit = not is_root()
        folder = unit_dir(unit_dir_option)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / UNIT
        path.write_text(unit_text(command, config_dir, user_unit))
        path.chmod(0o644)
        click.echo(f"wrote {'user' if user_unit else 'system'} unit {path}")
        click.echo(f"  runs: {shlex.join(command)}")
        click.echo("  " + _token_note(config_dir))
        if missing:
            click.echo(f"systemd is not running it: {missing}.\n" + _run_instead(command, config_dir))
            return
        for args in (("daemon-reload",), ("enable", "--now", UNIT)):
            done = _systemctl(user_unit, *args)
            if done.returncode != 0:
                raise click.ClickException(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}")
        click.echo(f"enabled and started {UNIT}; `perry agent status` tells how it runs")
        if user_unit:
            click.echo(f"  to keep it running when you are logged out: loginctl enable-linger {os.environ.get('USER', '$USER')}")

    @agent.command("uninstall")
    @click.option("--unit-dir", "unit_dir_option", help=f"Where the unit was written (also ${UNIT_DIR_ENV}).")
    def agent_uninstall(unit_dir_option: str | None) -> None:
        """Stop and disable the service and remove its unit (the config directory stays)."""
        user_unit = not is_root()
        path = unit_dir(unit_dir_option) / UNIT
        missing = why_no_systemd()
        if not missing:
            _systemctl(user_unit, "disable", "--now", UNIT)
        if path.exists():
            path.unlink()
            click.echo(f"removed {path}")
        else:
            click.echo(f"no unit at {path}")
        if not missing:
            _systemctl(user_unit, "daemon-reload")
        else:
            click.echo(f"systemd is not running here: {missing}; a server you started yourself is yours to stop")

    @agent.command("status")
    @click.option("--unit-dir", "unit_dir_option", help=f"Where the unit was written (also ${UNIT_DIR_ENV}).")
    def agent_status(unit_dir_option: str | None) -> None:
        """Whether the service is installed, enabled and running."""
        user_unit = not is_root()
        path = unit_dir(unit_dir_option) / UNIT
        click.echo(f"unit:    {path} ({'installed' if path.exists() else 'not installed'})")
        missing = why_no_systemd()
        if missing:
            click.echo(f"systemd: not available: {missing}")
            click.echo(_run_instead(serve_command(DEFAULT_PORT, None, ()), paths.config_dir()))
            return
        active = _systemctl(user_unit, "is-active", UNIT).stdout.strip() or "unknown"
        enabled = _systemctl(user_unit, "is-enabled", UNIT).stdout.strip() or "unknown"
        click.echo(f"service: {active}, {enabled}")
