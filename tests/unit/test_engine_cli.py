"""The Docker CLI command line a terminal runs reaches the workspace's engine as the SDK does."""

from __future__ import annotations

import os
import subprocess

from perry_jupyter.core.engine import Engine, terminal_command
from perry_jupyter.core.engines import Engines


def test_a_tls_engine_gives_the_cli_its_address_and_files():
    engine = Engine("tcp://box:2376", tls={"ca": "/t/ca.pem", "cert": "/t/cert.pem", "key": "/t/key.pem"})
    assert engine.cli() == ["docker", "-H", "tcp://box:2376", "--tlsverify", "--tlscacert", "/t/ca.pem",
                            "--tlscert", "/t/cert.pem", "--tlskey", "/t/key.pem"]
    assert Engine().cli() == ["docker"]  # the environment's engine, as before


def test_an_ssh_engine_gives_the_cli_an_ssh_with_the_pinned_known_hosts(tmp_path):
    engines = Engines({"far": {"address": "ssh://perry@box:2222", "ssh_key": "/k/id"}}, tmp_path)
    command = terminal_command("c", ["bash"], docker=engines.get("far").cli(), user="workspace", workdir="/w", env={})
    assert command[0] == "env" and command[2:5] == ["docker", "-H", "ssh://perry@box:2222"], command
    folder = command[1].removeprefix("PATH=").split(os.pathsep)[0]
    assert folder == str(tmp_path / "engines" / "far.bin")
    # What the Docker CLI's `ssh` runs: the real ssh with the engine's options, then the CLI's arguments.
    shown = subprocess.run([f"{folder}/ssh", "-G", "-p", "2222", "perry@box"], capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"]})
    assert shown.returncode == 0, shown.stderr
    settings = dict(line.split(" ", 1) for line in shown.stdout.lower().splitlines() if " " in line)
    assert settings["userknownhostsfile"] == str(tmp_path / "engines" / "known_hosts").lower()
    assert settings["stricthostkeychecking"] == "accept-new" and settings["batchmode"] == "yes"
    assert settings["identityfile"] == "/k/id" and settings["controlmaster"] == "auto"
