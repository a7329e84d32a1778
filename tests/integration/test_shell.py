"""`perry shell` end to end: a real `perry serve`, the real engine, a real pseudo-terminal.

The CLI runs in a pty driven by pexpect, so raw mode, SIGWINCH and the restoring of the
local terminal are the real thing. This module's server uses its own workspace prefix
and SSH ports, and cleans only that prefix, so it can run beside the other engine tests.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import termios
import time
from pathlib import Path

import pexpect
import pytest
import requests

from ..conftest import IMAGE_TAG, TEST_PREFIX
from .conftest import PERRY, free_port
from .test_cli import perry

pytestmark = pytest.mark.engine

PREFIX = f"{TEST_PREFIX}sh-"
SSH_PORTS = (2600, 2689)
NETWORK = "perry-test"
PROMPT = r"\$ $"
WORKSPACE = "shellbox"


def line(text: str) -> str:
    """A whole output line (bash turns bracketed paste off before each command's output)."""
    return r"\r\n(?:\x1b\[\?2004l\r)?" + re.escape(text) + r"\r\n"


def _remove_own(client) -> None:
    for c in client.containers.list(all=True, filters={"label": "perry.managed=true"}):
        if c.name.startswith(PREFIX):
            c.remove(force=True)
    for v in client.volumes.list(filters={"label": "perry.managed=true"}):
        if v.name.startswith(PREFIX):
            v.remove(force=True)


@pytest.fixture(autouse=True)
def _engine_and_image(workspace_image):
    """Overrides the package's fixture, which removes every test object around each test:
    this module shares one workspace between its tests and cleans its own prefix only."""
    yield


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory, ssh_key, docker_client, workspace_image):
    """A `perry serve` with one running workspace, shared by the module; yields the CLI's env."""
    tmp = tmp_path_factory.mktemp("perry-shell")
    _remove_own(docker_client)
    port = free_port()
    env = {**os.environ, "PERRY_CONFIG_DIR": str(tmp / "perry"), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("PERRY_URL", None)
    env.pop("PERRY_TOKEN", None)
    proc = start_server(env, tmp, port, ssh_key)
    try:
        env["PERRY_URL"] = f"http://127.0.0.1:{port}"
        perry(env, "create", WORKSPACE)
        yield env
    finally:
        proc.terminate()
        proc.wait(30)
        _remove_own(docker_client)


def terminals(env) -> list[str]:
    """Names of the workspace's terminals on the server."""
    token = (Path(env["PERRY_CONFIG_DIR"]) / "token").read_text().strip()
    r = requests.get(f"{env['PERRY_URL']}/perry/api/workspaces/{WORKSPACE}/terminals",
                     headers={"Authorization": f"token {token}"}, timeout=10)
    r.raise_for_status()
    return [t["name"] for t in r.json()["terminals"]]


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def start_server(env, tmp: Path, port: int, ssh_key: Path) -> subprocess.Popen:
    """A `perry serve` (another one on the same state works too: the state file is shared safely)."""
    log_path = tmp / f"serve-{port}.log"
    proc = subprocess.Popen(
        [PERRY, "serve", f"--port={port}", f"--PerryApp.workspace_prefix={PREFIX}",
         f"--PerryApp.image_tag={IMAGE_TAG}", f"--PerryApp.network={NETWORK}",
         f"--PerryApp.ssh_port_range={SSH_PORTS[0]}", f"--PerryApp.ssh_port_range={SSH_PORTS[1]}",
         # Twice on purpose: traitlets reads a single value of this allow_none List as None
         # (the default keys), a repeated flag as a list.
         f"--PerryApp.ssh_public_keys={ssh_key}.pub", f"--PerryApp.ssh_public_keys={ssh_key}.pub"],
        env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    token_file = Path(env["PERRY_CONFIG_DIR"]) / "token"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log_path.read_text()
        if token_file.exists():
            try:
                r = requests.get(f"http://127.0.0.1:{port}/perry/api/info", timeout=5,
                                 headers={"Authorization": f"token {token_file.read_text().strip()}"})
                if r.status_code == 200:
                    return proc
            except requests.ConnectionError:
                pass
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.2)


def spawn_shell(env, *args, **kwargs) -> pexpect.spawn:
    child = pexpect.spawn(PERRY, ["shell", *args], env=env, encoding="utf-8", timeout=60,
                          dimensions=(24, 80), **kwargs)
    return child


def test_interactive_shell(shell_env, tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    # A wrapper records the pty's settings before and after, as a user's shell would see them.
    script = (f'stty -g > {before}; "$0" shell {WORKSPACE}; rc=$?; stty -g > {after}; exit $rc')
    child = pexpect.spawn("sh", ["-c", script, PERRY], env=shell_env, encoding="utf-8", timeout=60,
                          dimensions=(24, 80))
    try:
        child.expect(PROMPT)

        child.sendline("echo $((6*7))")
        child.expect(line("42"))
        child.expect(PROMPT)

        child.setwinsize(40, 120)  # SIGWINCH to the CLI, which sends set_size
        child.sendline("stty size")
        child.expect(line("40 120"))
        child.expect(PROMPT)

        child.sendline("echo 'héllo ✓ 日本'")
        child.expect(line("héllo ✓ 日本"))
        child.expect(PROMPT)

        # A multibyte character split across two reads of the local tty survives.
        os.write(child.child_fd, "echo split-\u2713".encode()[:-1])
        time.sleep(0.3)
        os.write(child.child_fd, "echo split-\u2713".encode()[-1:] + b"-ok\r")
        child.expect(line("split-\u2713-ok"))
        child.expect(PROMPT)

        # Control characters go through raw: ^C interrupts the remote command, not the CLI.
        child.sendline("sleep 30")
        time.sleep(0.5)
        child.sendcontrol("c")
        child.expect(PROMPT, timeout=10)
        child.sendline("echo still-$((1+1))")
        child.expect(line("still-2"))
        child.expect(PROMPT)

        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 3, child.before
    assert before.read_text() == after.read_text(), "the local terminal settings were not restored"
    assert wait_for(lambda: terminals(shell_env) == []), terminals(shell_env)


def test_terminal_restored_on_sigterm(shell_env):
    child = spawn_shell(shell_env, WORKSPACE)
    try:
        child.expect(PROMPT)
        raw = termios.tcgetattr(child.child_fd)
        assert not raw[3] & termios.ECHO, "the CLI should hold the tty in raw mode"
        os.kill(child.pid, signal.SIGTERM)
        child.expect(pexpect.EOF)
        attrs = termios.tcgetattr(child.child_fd)  # the master shares the pty's settings
        assert attrs[3] & termios.ECHO and attrs[3] & termios.ICANON and attrs[3] & termios.ISIG
        assert attrs[1] & termios.OPOST and attrs[0] & termios.ICRNL
    finally:
        child.close(force=True)
    assert child.exitstatus == 128 + signal.SIGTERM
    # The terminal it made is closed on the server, not left running for nobody.
    assert wait_for(lambda: terminals(shell_env) == []), terminals(shell_env)


def test_server_gone(shell_env, ssh_key, tmp_path):
    # A second server on the same state; the shell runs through it, then it dies.
    port = free_port()
    env = {**shell_env, "PERRY_URL": f"http://127.0.0.1:{port}"}
    server = start_server(env, tmp_path, port, ssh_key)
    try:
        child = spawn_shell(env, WORKSPACE)
        child.expect(PROMPT)
        server.kill()
        child.expect(pexpect.EOF, timeout=30)
        attrs = termios.tcgetattr(child.child_fd)
        assert attrs[3] & termios.ECHO and attrs[3] & termios.ICANON
        child.close()
        assert child.exitstatus == 1
        assert child.before.strip().splitlines()[-1].startswith("error: lost the connection"), child.before
    finally:
        server.kill()
        server.wait(30)


def test_script_on_stdin(shell_env):
    r = perry(shell_env, "shell", WORKSPACE, input="hostname\n")
    assert r.stdout == f"{WORKSPACE}\n" and r.stderr == ""

    r = perry(shell_env, "shell", WORKSPACE, input="echo out; echo err >&2; exit 4\n", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (4, "out\n", "err\n")

    # bash -l: the login environment is there, and the working directory is the home.
    r = perry(shell_env, "shell", WORKSPACE, input="echo \"$HOME $(pwd) $(id -un)\"\n")
    assert r.stdout == "/home/workspace /home/workspace workspace\n"


def test_shell_errors(shell_env):
    # unknown workspace: interactive (a tty) and with a script alike
    child = spawn_shell(shell_env, "ghost")
    child.expect(pexpect.EOF)
    child.close()
    lines = child.before.strip().splitlines()
    assert child.exitstatus == 1 and len(lines) == 1, child.before
    assert lines[0] == "error: workspace 'ghost' does not exist"

    r = perry(shell_env, "shell", "ghost", input="true\n", check=False)
    assert r.returncode == 1 and r.stderr.strip() == "error: workspace 'ghost' does not exist"

    # a wrong token
    bad = {**shell_env, "PERRY_TOKEN": "wrong"}
    child = spawn_shell(bad, WORKSPACE)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "token" in child.before, child.before
    assert len(child.before.strip().splitlines()) == 1

    # no server
    down = {**shell_env, "PERRY_URL": f"http://127.0.0.1:{free_port()}"}
    child = spawn_shell(down, WORKSPACE)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "perry serve" in child.before, child.before
    assert len(child.before.strip().splitlines()) == 1


def test_ssh(shell_env, ssh_key, tmp_path):
    # The real ssh, behind a wrapper on PATH that records how the CLI ran it and keeps this
    # machine's known_hosts and keys out of it (the test key is the one the server installed).
    record, known_hosts = tmp_path / "ssh-args", tmp_path / "known_hosts"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "ssh"
    wrapper.write_text(f"""#!/bin/sh
printf '%s\\n' "$@" > {record}
exec /usr/bin/ssh -o UserKnownHostsFile={known_hosts} -o IdentitiesOnly=yes -i {ssh_key} "$@"
""")
    wrapper.chmod(0o755)
    env = {**shell_env, "PATH": f"{bindir}:{shell_env['PATH']}"}
    port = int(re.search(r'"ssh": (\d+)', perry(shell_env, "info", WORKSPACE, "--json").stdout).group(1))

    child = spawn_shell(env, WORKSPACE, "--ssh")
    try:
        child.expect(PROMPT)
        child.sendline("hostname")
        child.expect(line(WORKSPACE))
        child.expect(PROMPT)
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 5, child.before
    assert record.read_text().split("\n")[:-1] == [
        "-p", str(port), "-o", "StrictHostKeyChecking=accept-new", "workspace@127.0.0.1"]
    assert known_hosts.exists()


def test_stopped_workspace(shell_env):
    # a stopped workspace: a one-line error that says what to do
    perry(shell_env, "stop", WORKSPACE)
    try:
        child = spawn_shell(shell_env, WORKSPACE)
        child.expect(pexpect.EOF)
        child.close()
        lines = child.before.strip().splitlines()
        assert child.exitstatus == 1 and len(lines) == 1 and lines[0].startswith("error: "), child.before
        assert "perry start" in lines[0]
        r = perry(shell_env, "shell", WORKSPACE, input="true\n", check=False)
        assert r.returncode == 1 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    finally:
        perry(shell_env, "start", WORKSPACE)
