"""`perry agent install|status|uninstall`: the systemd unit it writes, and what it says where
there is no systemd to run it."""

from __future__ import annotations

import configparser
import os
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from perry_jupyter.cli.commands import cli


@pytest.fixture
def env(tmp_path, monkeypatch):
    """No systemctl on PATH (as on a machine without systemd); the config directory and the
    user's config home in the temporary folder."""
    empty = tmp_path / "bin"
    empty.mkdir()
    values = {"PATH": str(empty), "PERRY_CONFIG_DIR": str(tmp_path / "cfg"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
              "PERRY_TOKEN": "tok-must-not-leak-7c1d"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PERRY_SYSTEMD_UNIT_DIR", raising=False)
    return values


def perry(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_without_systemctl_nothing_is_written_and_the_command_line_is_said(env, tmp_path):
    result = perry("agent", "install", "--port", "7402")
    assert result.exit_code == 1
    assert "cannot install a service: there is no systemctl on this machine; nothing was written" in result.output
    run_instead = [line.strip() for line in result.output.splitlines() if "nohup" in line]
    assert len(run_instead) == 1
    words = shlex.split(run_instead[0])
    assert words[0] == f"PERRY_CONFIG_DIR={tmp_path / 'cfg'}" and words[1] == "nohup"
    assert Path(words[2]).name == "perry" and os.access(words[2], os.X_OK)
    assert words[3:5] == ["serve", "--port=7402"]
    assert not (tmp_path / "xdg").exists()
    assert env["PERRY_TOKEN"] not in result.output


def test_the_unit_runs_perry_serve_with_these_settings_and_restarts_on_failure(env, tmp_path, monkeypatch):
    units = tmp_path / "units"
    monkeypatch.setenv("PERRY_SYSTEMD_UNIT_DIR", str(units))
    result = perry("agent", "install", "--port", "7400", "--ip", "0.0.0.0", "--PerryApp.workspace_prefix=x-")
    assert result.exit_code == 0, result.output
    text = (units / "perry.service").read_text()
    assert env["PERRY_TOKEN"] not in text and env["PERRY_TOKEN"] not in result.output
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(text)
    command = shlex.split(unit["Service"]["ExecStart"])
    assert os.access(command[0], os.X_OK) and Path(command[0]).name == "perry"
    assert command[1:] == ["serve", "--port=7400", "--ip=0.0.0.0", "--PerryApp.workspace_prefix=x-"]
    assert unit["Service"]["Restart"] == "on-failure"
    environment = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("Environment=")]
    assert f"PERRY_CONFIG_DIR={tmp_path / 'cfg'}" in environment
    assert unit["Service"]["EnvironmentFile"] == f"-{tmp_path / 'cfg' / 'service.env'}"
    assert unit["Install"]["WantedBy"] == ("multi-user.target" if os.geteuid() == 0 else "default.target")
    # Where the token comes from, and that systemd is not here to run it.
    assert f"the server reads {tmp_path / 'cfg' / 'token'}" in result.output
    assert "PERRY_TOKEN is set in this shell but is not passed on" in result.output
    assert "systemd is not running it: there is no systemctl on this machine" in result.output

    status = perry("agent", "status")
    assert f"{units / 'perry.service'} (installed)" in status.output
    assert "systemd: not available: there is no systemctl on this machine" in status.output
    removed = perry("agent", "uninstall")
    assert f"removed {units / 'perry.service'}" in removed.output and not (units / "perry.service").exists()
    assert "(not installed)" in perry("agent", "status").output
