"""`perry-worker sessions ...` and `usage` over all agents at once: shapes, errors, paging."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perry_worker.__main__ import main
from tests.fixtures.worker_homes import (
    CLAUDE_P,
    CLAUDE_PARALLEL,
    CODEX_2025,
    CODEX_REAL,
    OC_JSON_SESSION,
    OC_SESSION,
    make_home,
)

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "perry_worker"
SESSION_KEYS = {"sessionId", "agent", "title", "directory", "messageCount", "lastActivity", "tokens", "cost"}
TOKEN_KEYS = {"input", "output", "reasoning", "cacheRead", "cacheWrite"}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_home(tmp_path_factory.mktemp("worker"))


def run(capsys, *argv):
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def run_json(capsys, *argv):
    rc, out, _ = run(capsys, *argv)
    return rc, json.loads(out)


def worker(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "perry_worker", *argv], cwd=str(REPO), capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})))


def test_list_merges_every_agent_newest_first(home, capsys):
    rc, sessions = run_json(capsys, "--home", str(home), "sessions", "list", "--json")
    assert rc == 0 and len(sessions) == 10
    assert {s["agent"] for s in sessions} == {"opencode", "claude", "codex"}
    for s in sessions:
        assert set(s) == SESSION_KEYS and set(s["tokens"]) == TOKEN_KEYS
        assert s["lastActivity"].endswith("Z") and len(s["lastActivity"]) == 24
        assert isinstance(s["messageCount"], int) and s["messageCount"] > 0
        assert s["cost"] is None or isinstance(s["cost"], float)
    stamps = [s["lastActivity"] for s in sessions]
    assert stamps == sorted(stamps, reverse=True)
    assert sessions[0]["sessionId"] == CLAUDE_PARALLEL
    assert sessions[1]["sessionId"] == OC_SESSION


def test_agent_filter_and_home_after_the_command(home, capsys):
    rc, sessions = run_json(capsys, "sessions", "list", "--agent", "codex", "--home", str(home), "--json")
    assert rc == 0 and [s["sessionId"] for s in sessions][:2] == [CODEX_REAL, CODEX_2025]
    assert {s["agent"] for s in sessions} == {"codex"}


def test_get_finds_the_session_in_its_store(home, capsys):
    for sid, agent in ((OC_SESSION, "opencode"), (OC_JSON_SESSION, "opencode"), (CLAUDE_P, "claude"),
                       (CODEX_REAL, "codex")):
        rc, s = run_json(capsys, "--home", str(home), "sessions", "get", sid, "--json")
        assert rc == 0 and s["sessionId"] == sid and s["agent"] == agent and set(s) == SESSION_KEYS


def test_unknown_session_is_exit_2_with_a_json_error(home, capsys):
    for command in (["sessions", "get"], ["sessions", "messages"], ["usage", "--session"]):
        rc, out, err = run(capsys, "--home", str(home), *command, "ses_nope", "--json")
        assert rc == 2
        assert json.loads(out) == {"error": {"code": "not_found", "message": "no session 'ses_nope' in any agent store"}}
    rc, out, err = run(capsys, "--home", str(home), "sessions", "get", "../../etc/passwd")
    assert rc == 2 and out == "" and "no session" in err
    rc, out, err = run(capsys, "--home", str(home), "sessions", "get", CLAUDE_P, "--agent", "codex", "--json")
    assert rc == 2 and json.loads(out)["error"]["code"] == "not_found"


def test_messages_page_shape_and_bad_paging(home, capsys):
    rc, page = run_json(capsys, "--home", str(home), "sessions", "messages", CLAUDE_P, "--json")
    assert rc == 0 and set(page) == {"sessionId", "total", "offset", "limit", "messages"}
    assert (page["total"], page["offset"], page["limit"], len(page["messages"])) == (5, 0, 50, 5)
    for m in page["messages"]:
        assert set(m) == {"id", "role", "time", "parts"} and m["role"] in ("user", "assistant")
        for p in m["parts"]:
            assert p["type"] in ("text", "reasoning", "tool", "file")
            if p["type"] == "tool":
                assert {"tool", "input", "output", "status"} <= set(p)
    for bad in (["--limit", "0"], ["--offset", "-1"], ["--agent", "gpt"]):
        rc, err = run_json(capsys, "--home", str(home), "sessions", "messages", CLAUDE_P, *bad, "--json")
        assert rc == 2 and err["error"]["code"] == "bad_request"


def test_usage(home, capsys):
    rc, report = run_json(capsys, "--home", str(home), "usage", "--json")
    assert rc == 0 and set(report) == {"sessions", "total"}
    assert len(report["sessions"]) == 10
    assert all(set(r) == {"sessionId", "agent", "tokens", "cost"} for r in report["sessions"])
    for key in TOKEN_KEYS:
        assert report["total"]["tokens"][key] == sum(r["tokens"][key] for r in report["sessions"])
    assert report["total"]["cost"] == 0.0  # OpenCode recorded 0.0 (a local model); the others record none
    rc, one = run_json(capsys, "--home", str(home), "usage", "--session", CODEX_2025, "--json")
    assert one["sessions"] == [{"sessionId": CODEX_2025, "agent": "codex", "cost": None,
                                "tokens": {"input": 3900, "output": 146, "reasoning": 64, "cacheRead": 12000,
                                           "cacheWrite": 0}}]
    assert one["total"] == {"tokens": one["sessions"][0]["tokens"], "cost": None}


def test_empty_home(tmp_path, capsys):
    assert run_json(capsys, "--home", str(tmp_path), "sessions", "list", "--json") == (0, [])
    rc, report = run_json(capsys, "--home", str(tmp_path), "usage", "--json")
    assert report == {"sessions": [], "total": {"tokens": dict.fromkeys(TOKEN_KEYS, 0), "cost": None}}
    rc, out, err = run(capsys, "--home", str(tmp_path / "missing"), "sessions", "list")
    assert rc == 0 and out.strip() == "no sessions" and err == ""


def test_plain_text_output(home, capsys):
    rc, out, _ = run(capsys, "--home", str(home), "sessions", "list")
    assert rc == 0 and "Write two files" in out and out.splitlines()[0].startswith("AGENT")
    rc, out, _ = run(capsys, "--home", str(home), "sessions", "messages", CODEX_2025)
    assert "[tool shell: completed]" in out and "(1-4 of 4)" in out
    rc, out, _ = run(capsys, "--home", str(home), "usage")
    assert "TOTAL" in out


def test_real_process_exit_codes_and_old_commands(home):
    p = worker("--home", str(home), "sessions", "get", "nope", "--json")
    assert p.returncode == 2 and json.loads(p.stdout)["error"]["code"] == "not_found"
    p = worker("--home", str(home), "sessions", "list", "--json")
    assert p.returncode == 0 and len(json.loads(p.stdout)) == 10 and p.stderr == ""
    p = worker("--version")
    assert p.returncode == 0 and p.stdout.strip()
    p = worker("health", "--json")
    assert set(json.loads(p.stdout)) >= {"ok", "sshd", "docker", "ready", "version"}
    p = worker("sessions")
    assert p.returncode == 2 and "list" in p.stderr


def test_worker_is_python39_and_standard_library_only():
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    for path in sorted(WORKER.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert not stdlib or top in stdlib or top == "perry_worker", "%s imports %s" % (path.name, name)


def _python39():
    import glob
    import shutil

    candidates = [shutil.which("python3.9")] + sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python")))
    for exe in filter(None, candidates):
        try:
            p = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                               capture_output=True, text=True, timeout=20)
        except OSError:
            continue
        if p.stdout.strip() == "True":
            return exe
    return None


def test_a_worker_whose_source_differs_from_the_servers_says_so_and_does_nothing(tmp_path):
    """The server sends its copy's digest; a stale worker answers `stale_worker` and runs nothing."""
    import shutil

    from perry_worker import source_digest

    copy = tmp_path / "perry_worker"
    shutil.copytree(WORKER, copy, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PERRY_WORKER_EXPECT": source_digest()}
    argv = [sys.executable, "-m", "perry_worker", "--home", str(tmp_path / "home"), "sessions", "list", "--json"]
    same = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert same.returncode == 0 and json.loads(same.stdout) == [], same.stderr

    with open(copy / "sessions.py", "a") as f:
        f.write("# an older version\n")
    stale = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert stale.returncode == 3
    assert json.loads(stale.stdout)["error"]["code"] == "stale_worker"


def test_health_says_the_inner_engine_state_the_entrypoint_wrote(tmp_path, monkeypatch):
    """Ready does not wait for the inner Docker engine: `dind` says how far it is, from the
    entrypoint's file (a probe would wait in the socket's queue); --dind waits for it."""
    from perry_worker import __main__ as cli

    ready, dind = tmp_path / "ready", tmp_path / "dind"
    ready.write_text("")
    monkeypatch.setattr(cli, "check_sshd", lambda *a, **k: True)
    monkeypatch.setattr(cli, "sshd_running", lambda *a, **k: True)
    dind.write_text("starting\n")
    report = cli.health(str(ready), str(dind))
    assert report["ok"] and report["dind"] == "starting" and report["docker"] is False
    waited = cli.wait_for_health(0.05, dind=True, ready_file=str(ready), dind_file=str(dind))
    assert not cli.healthy(waited, dind=True) and cli.healthy(waited, dind=False)
    dind.write_text("ready\n")
    report = cli.wait_for_health(1, dind=True, ready_file=str(ready), dind_file=str(dind))
    assert cli.healthy(report, dind=True) and report["dind"] == "ready" and report["docker"] is True
    monkeypatch.setenv("PERRY_DIND", "0")
    report = cli.health(str(ready), str(dind))
    assert report["ok"] and report["dind"] == "off" and report["docker"] is None
