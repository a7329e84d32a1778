"""`perry serve` and the CLI on one machine: one token wherever it came from, found on any port."""

from __future__ import annotations

import json
import os
import subprocess
import time

import requests

from .conftest import PERRY, PerryServe


class Serve(PerryServe):
    """`perry serve` on a free (so non-default) port, ready once it answers with the token it recorded."""

    def __init__(self, tmp_path, ssh_key, *argv, env=None, config_dir=None, cwd=None):
        super().__init__(tmp_path, ssh_key)
        self.argv += list(argv)
        self.env.update(env or {})
        self.config_dir = config_dir or tmp_path / "perry"
        self.cwd = cwd

    def start(self):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            if self.record_file.exists():
                # The record is written before Jupyter binds its port (on the loop's first turn).
                try:
                    r = requests.get(f"{self.url}/perry/api/info", headers=self.headers, timeout=5)
                except requests.ConnectionError:
                    r = None
                if r is not None:
                    assert r.status_code == 200, r.text
                    return self
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.2)

    @property
    def record_file(self):
        return self.config_dir / f"server-{self.proc.pid}.json"

    @property
    def headers(self):
        return {"Authorization": f"token {json.loads(self.record_file.read_text())['token']}"}

    def cli(self, *args, **env):
        """The CLI as a user on this machine runs it: no PERRY_URL, no PERRY_TOKEN."""
        env = {**{k: v for k, v in self.env.items() if k not in ("PERRY_URL", "PERRY_TOKEN")}, **env}
        return subprocess.run([PERRY, *args], env=env, capture_output=True, text=True, timeout=120)


def test_a_token_given_on_the_command_line_is_the_one_and_the_cli_finds_the_server_on_its_port(tmp_path, ssh_key):
    serve = Serve(tmp_path, ssh_key, "--ServerApp.token=given-on-the-command-line").start()
    try:
        assert serve.port != 7391
        record = json.loads(serve.record_file.read_text())
        assert record["token"] == "given-on-the-command-line" and record["port"] == serve.port
        assert oct(serve.record_file.stat().st_mode & 0o777) == "0o600"
        assert not (tmp_path / "perry" / "token").exists(), "a token file nobody uses"

        r = serve.cli("list", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == []
        shown = serve.cli("config", "show").stdout
        assert f"127.0.0.1:{serve.port}" in shown and "token:      set" in shown

        log = serve.log.read_text()
        assert "T is the one you configured" in log and "token file" not in log
        assert f"finds it by itself while it runs (recorded in {serve.record_file}" in log
        assert "it listens on localhost only; to reach it from elsewhere, start it with --ip=0.0.0.0" in log
        assert "given-on-the-command-line" not in log
    finally:
        serve.stop()
    assert not serve.record_file.exists()
    assert "http://127.0.0.1:7391  (default)" in serve.cli("config", "show").stdout


def test_the_generated_token_on_any_port_and_a_killed_servers_record_is_ignored(tmp_path, ssh_key):
    serve = Serve(tmp_path, ssh_key).start()
    token_file = tmp_path / "perry" / "token"
    assert json.loads(serve.record_file.read_text())["token"] == token_file.read_text().strip()
    assert f"T is in {token_file}" in serve.log.read_text()
    r = serve.cli("list", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stderr

    serve.kill()  # no clean-up: the record stays, but its process is gone
    stale = serve.record_file
    assert stale.exists()
    assert "http://127.0.0.1:7391  (default)" in serve.cli("config", "show").stdout

    again = Serve(tmp_path, ssh_key).start()  # the same token, another port; the stale record is swept
    try:
        assert not stale.exists()
        assert again.headers == {"Authorization": f"token {token_file.read_text().strip()}"}
        r = again.cli("list", "--json")
        assert r.returncode == 0 and json.loads(r.stdout) == [], r.stderr
    finally:
        again.stop()


def test_a_perry_config_dir_with_a_tilde_means_the_same_place_to_server_and_cli(tmp_path, ssh_key):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    serve = Serve(tmp_path, ssh_key, env={"HOME": str(home), "PERRY_CONFIG_DIR": "~/perry-cfg"},
                  config_dir=home / "perry-cfg", cwd=cwd).start()
    try:
        assert (home / "perry-cfg" / "token").is_file()
        assert not (cwd / "~").exists()
        r = requests.patch(f"{serve.url}/perry/api/config", json={"readyTimeout": 42}, headers=serve.headers,
                           timeout=30)
        assert r.status_code == 200 and r.json()["stateDir"] == str(home / "perry-cfg")
        assert json.loads((home / "perry-cfg" / "settings.json").read_text())["readyTimeout"] == 42
        r = serve.cli("list", "--json")
        assert r.returncode == 0, r.stderr
        assert str(home / "perry-cfg") in serve.cli("config", "show").stdout
    finally:
        serve.stop()
