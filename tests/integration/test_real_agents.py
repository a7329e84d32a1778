"""The real agent CLIs, offline against tests/modelserver.py, read back by perry_worker.

The CLIs come from npm (opencode-ai, @anthropic-ai/claude-code, @openai/codex):
`scripts/setup` installs them into `.agents/`; PERRY_TEST_OPENCODE / PERRY_TEST_CLAUDE /
PERRY_TEST_CODEX, or PATH, can name others. No network is needed: each
CLI talks only to the stand-in model on 127.0.0.1 (checked in a network namespace with
nothing but loopback). This is also the reference for running them inside a workspace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from perry_worker.sessions import SessionStore
from tests.modelserver import ModelServer


AGENTS_BIN = Path(__file__).resolve().parents[2] / ".agents" / "node_modules" / ".bin"


def cli(name: str, env_var: str) -> str:
    path = os.environ.get(env_var) or shutil.which(name, path=str(AGENTS_BIN)) or shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed: `scripts/setup` puts it in .agents/ (or set {env_var})")
    return path


def opencode_config(base_url: str) -> dict:
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {"local": {"npm": "@ai-sdk/openai-compatible", "name": "Local test model",
                               "options": {"baseURL": base_url, "apiKey": "x"}, "models": {"m": {"name": "m"}}}},
        "model": "local/m",
        "small_model": "local/m",
        "autoupdate": False,
        "share": "disabled",
    }


def main_usage(server: ModelServer) -> dict:
    used = [r["usage"] for r in server.responses if r["kind"] == "main"]
    return {"input": sum(u["input"] for u in used), "output": sum(u["output"] for u in used)}


def run(argv, home: Path, cwd: Path, **env) -> subprocess.CompletedProcess:
    # OpenCode takes its project directory from $PWD, not from the process's cwd: with a
    # stale PWD every write in the project is an "external_directory" and auto-rejected.
    full_env = dict(os.environ, HOME=str(home), PWD=str(cwd), **env)
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        full_env.pop(var, None)
    p = subprocess.run(argv, cwd=str(cwd), env=full_env, capture_output=True, text=True, timeout=180,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p


def test_opencode_run(tmp_path):
    exe = cli("opencode", "PERRY_TEST_OPENCODE")
    home, project = tmp_path / "home", tmp_path / "project"
    (home / ".config" / "opencode").mkdir(parents=True)
    project.mkdir()
    target = project / "hello.txt"
    with ModelServer(replies=[
        {"text": "Creating it.", "tool": "write", "input": {"filePath": str(target), "content": "hello\n"},
         "reasoning": "A file is wanted."},
        "Created hello.txt.",
    ], title="Greeting file") as server:
        (home / ".config" / "opencode" / "opencode.json").write_text(json.dumps(opencode_config(server.openai_base_url)))
        run([exe, "run", "Create hello.txt"], home, project)
    assert target.read_text() == "hello\n"
    [s] = SessionStore(str(home)).list()
    assert (s["agent"], s["title"], s["messageCount"], s["directory"]) == ("opencode", "Greeting file", 3, str(project))
    assert {k: s["tokens"][k] for k in ("input", "output")} == main_usage(server)
    msgs = SessionStore(str(home)).messages(s["sessionId"])["messages"]
    assert [p["type"] for p in msgs[1]["parts"]] == ["reasoning", "text", "tool"]
    assert msgs[1]["parts"][2]["status"] == "completed"


def test_claude_print_and_resume(tmp_path):
    exe = cli("claude", "PERRY_TEST_CLAUDE")
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    target = project / "notes.md"
    with ModelServer(replies=[
        {"text": "Writing notes.", "tool": "Write", "input": {"file_path": str(target), "content": "# Notes\n"}},
        "Wrote notes.md.",
        "Second answer.",
    ]) as server:
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-test",
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
        run([exe, "-p", "--permission-mode", "acceptEdits", "Write the notes file"], home, project, **env)
        [s] = SessionStore(str(home)).list()
        run([exe, "-p", "--resume", s["sessionId"], "And then?"], home, project, **env)
    assert target.read_text() == "# Notes\n"
    [s] = SessionStore(str(home)).list()
    assert (s["agent"], s["title"], s["messageCount"]) == ("claude", "Write the notes file", 5)
    assert {k: s["tokens"][k] for k in ("input", "output")} == main_usage(server)
    msgs = SessionStore(str(home)).messages(s["sessionId"])["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "assistant", "user", "assistant"]
    assert msgs[1]["parts"][1]["tool"] == "Write" and msgs[1]["parts"][1]["status"] == "completed"


def test_codex_exec(tmp_path):
    exe = cli("codex", "PERRY_TEST_CODEX")
    home, project = tmp_path / "home", tmp_path / "project"
    (home / ".codex").mkdir(parents=True)
    project.mkdir()
    with ModelServer(replies=[
        {"text": "Creating the file.", "tool": "exec_command", "input": {"cmd": "echo hi > hi.txt"}},
        "Created hi.txt.",
    ]) as server:
        (home / ".codex" / "config.toml").write_text(
            'model = "gpt-5"\nmodel_provider = "local"\n\n[model_providers.local]\nname = "local"\n'
            'base_url = "%s"\nwire_api = "responses"\nenv_key = "LOCAL_API_KEY"\n' % server.openai_base_url)
        run([exe, "exec", "--skip-git-repo-check", "--sandbox", "workspace-write", "make hi.txt"], home, project,
            LOCAL_API_KEY="x")
    assert (project / "hi.txt").read_text() == "hi\n"
    [s] = SessionStore(str(home)).list()
    assert (s["agent"], s["title"], s["messageCount"]) == ("codex", "make hi.txt", 3)
    assert {k: s["tokens"][k] for k in ("input", "output")} == main_usage(server)
