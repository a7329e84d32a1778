"""The `perry` CLI and its REST client without an engine or a Perry server.

Where an answer from a server is needed, a small stdlib HTTP server in a thread plays the
REST API's wire format (canned JSON answers), so the client's parsing of answers, errors
and the build stream is exercised over real HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from perry_jupyter.cli import clientconfig
from perry_jupyter.cli import cli

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("jupyter_server", "tornado", "docker")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own config dir and no PERRY_* from the outside."""
    for var in ("PERRY_URL", "PERRY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PERRY_CONFIG_DIR", str(tmp_path / "perry"))
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path / "perry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, prog_name="perry")


def perry_subprocess(*args: str, env: dict | None = None, code: str | None = None):
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "perry_jupyter.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=60, cwd=REPO)


# -- where the CLI finds the server --------------------------------------------------


def test_default_is_local_server_with_token_file(isolated):
    cfg = clientconfig.resolve()
    assert (cfg.url, cfg.token, cfg.url_source) == ("http://127.0.0.1:7391", None, "default")
    isolated.mkdir(parents=True)
    (isolated / "token").write_text("tok-from-serve\n")
    cfg = clientconfig.resolve()
    assert cfg.token == "tok-from-serve"
    assert cfg.token_source.startswith("token file")


def test_resolution_order(isolated, monkeypatch):
    isolated.mkdir(parents=True)
    (isolated / "token").write_text("local")
    clientconfig.write_client_file("http://worker:7000", "filetok")
    cfg = clientconfig.resolve()
    assert (cfg.url, cfg.token) == ("http://worker:7000", "filetok")
    assert cfg.url_source.startswith("client file")

    # env wins over the client file, separately for URL and token
    monkeypatch.setenv("PERRY_TOKEN", "envtok")
    assert clientconfig.resolve().token == "envtok"
    assert clientconfig.resolve().url == "http://worker:7000"
    monkeypatch.setenv("PERRY_URL", "other:1234")
    cfg = clientconfig.resolve()
    assert (cfg.url, cfg.token, cfg.url_source) == ("http://other:1234", "envtok", "env PERRY_URL")

    # the client file's token is not sent to another server, nor the local token to a remote one
    monkeypatch.delenv("PERRY_TOKEN")
    assert clientconfig.resolve().token is None
    monkeypatch.setenv("PERRY_URL", "http://localhost:7391")
    assert clientconfig.resolve().token == "local"


@pytest.mark.parametrize("given, expected", [
    ("h", "http://h:7391"),
    ("h:1234", "http://h:1234"),
    ("10.0.0.5", "http://10.0.0.5:7391"),
    ("[::1]:8000", "http://[::1]:8000"),
    ("http://h:8888/jupyter/", "http://h:8888/jupyter/"),
    ("https://perry.example.org", "https://perry.example.org"),
])
def test_normalize_url(given, expected):
    assert clientconfig.normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["", "h:notaport", "h:70000", "ftp://h", "h/path"])
def test_normalize_url_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        clientconfig.normalize_url(bad)


def test_client_file_is_private_and_atomic(isolated):
    path = clientconfig.write_client_file("http://h:1", "t")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": "http://h:1", "token": "t"}
    clientconfig.write_client_file("http://h:2", None)
    assert json.loads(path.read_text()) == {"url": "http://h:2"}
    assert sorted(p.name for p in isolated.iterdir()) == ["client.json"]  # no temp files left


def test_config_worker_then_show_hides_the_token(isolated):
    result = run("config", "worker", "h:1234", "--token", "S3CRET-TOKEN")
    assert result.exit_code == 0, result.output
    assert "S3CRET-TOKEN" not in result.output
    assert stat.S_IMODE((isolated / "client.json").stat().st_mode) == 0o600

    result = run("config", "show")
    assert result.exit_code == 0, result.output
    assert "http://h:1234" in result.output
    assert "set" in result.output
    assert "S3CRET-TOKEN" not in result.output

    # pointing at the same worker again keeps the token; another worker drops it
    run("config", "worker", "h:1234")
    assert clientconfig.resolve().token == "S3CRET-TOKEN"
    run("config", "worker", "elsewhere")
    cfg = clientconfig.resolve()
    assert (cfg.url, cfg.token) == ("http://elsewhere:7391", None)
    assert "not set" in run("config", "show").output


def test_config_worker_bad_address_is_a_usage_error():
    result = run("config", "worker", "h:99999")
    assert result.exit_code == 2
    assert "bad port" in result.output


# -- the command line as a program ---------------------------------------------------


def test_unreachable_server_is_one_clear_line():
    url = f"http://127.0.0.1:{free_port()}"
    proc = perry_subprocess("list", env={"PERRY_URL": url})
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert url in lines[0]
    assert "perry serve" in lines[0] and "perry config worker" in lines[0]
    assert proc.stdout == ""


def test_doctor_says_when_the_server_is_unreachable():
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli, ["doctor"], env={"PERRY_URL": url})
    assert result.exit_code == 1
    assert "✗ server" in result.output and url in result.output and "perry serve" in result.output


def test_help_lists_the_commands():
    proc = perry_subprocess("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("serve", "agent", "build", "create", "start", "stop", "list", "info", "exec",
                    "sync", "logs", "delete", "doctor", "config"):
        assert f"  {command} " in proc.stdout, command
    assert "ls" in proc.stdout and "rm" in proc.stdout  # aliases are named
    assert run("ls", "--help").exit_code == 0
    assert run("rm", "--help").exit_code == 0
    assert run("agent", "--help").output.count("run") >= 1


def test_version():
    from perry_jupyter._version import __version__

    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_cli_path_imports_nothing_heavy():
    probe = (
        "import sys, atexit\n"
        "atexit.register(lambda: print('HEAVY=' + ','.join(m for m in %r if m in sys.modules)))\n"
        "import perry_jupyter.cli\n"
        "print('AFTER_IMPORT=' + ','.join(m for m in %r if m in sys.modules))\n"
        "sys.argv = ['perry', 'list']\n"
        "perry_jupyter.cli.main()\n"
    ) % (HEAVY, HEAVY)
    proc = perry_subprocess(code=probe, env={"PERRY_URL": f"http://127.0.0.1:{free_port()}"})
    assert "AFTER_IMPORT=\n" in proc.stdout, proc.stdout + proc.stderr
    assert "HEAVY=\n" in proc.stdout, proc.stdout + proc.stderr  # also after running a command
    assert proc.returncode == 1


# -- against a stand-in for the REST API's wire format -------------------------------
