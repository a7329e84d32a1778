"""`perry list` by the standard library alone (perry_jupyter.cli.quick) against the full command tree.

A stdlib HTTP server in a thread answers ``GET /perry/api/workspaces`` as Perry does; the same
`perry list` runs as a process through the console script's entry (which may take the quick
path) and through the command tree alone, and the two must print the same bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tok-quick"
NOT_ON_THE_FAST_PATH = ("click", "requests", "rich", "jupyter_server", "tornado", "docker", "urllib3")

WORKSPACES = [
    {"name": "alpha", "status": "running", "sshPort": 2222, "sshUser": "workspace", "sshHost": "127.0.0.1",
     "created": "2026-11-30T01:00:00Z", "image": "perry-workspace:latest"},
    {"name": "b", "status": "stopped", "created": "2026-11-20T01:00:00Z", "image": "perry-workspace-agents:latest"},
    {"name": "creating-one", "status": "creating", "image": "perry-workspace:latest"},
    {"name": "broken", "status": "error", "error": "it broke", "created": "2025-01-01T00:00:00Z", "image": None},
]
ON_TWO_ENGINES = [dict(ws, engine="local" if i % 2 else "gpu-box") for i, ws in enumerate(WORKSPACES)]


class Api(BaseHTTPRequestHandler):
    answer: tuple[int, object] = (200, {"workspaces": WORKSPACES})
    requests: list[tuple[str, str | None]] = []

    def do_GET(self):
        Api.requests.append((self.path, self.headers.get("Authorization")))
        status, body = Api.answer
        if self.headers.get("Authorization") != f"token {TOKEN}":
            status, body = 403, {"error": {"code": "forbidden", "message": "bad token"}}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Api.requests = []
    Api.answer = (200, {"workspaces": WORKSPACES})
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def perry(url: str, *args: str, full: bool = False, env: dict | None = None, token: str = TOKEN):
    """`perry ARGS` as a process: the console script's entry, or (``full``) the command tree alone."""
    entry = "perry_jupyter.cli.commands" if full else "perry_jupyter.cli"
    code = f"import sys; sys.argv = ['perry', *{list(args)!r}]; from {entry} import main; main()"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PERRY_", "FORCE_COLOR", "NO_COLOR",
                                                                       "TTY_", "COLUMNS", "LINES"))}
    full_env = {**clean, "PERRY_URL": url, "PERRY_TOKEN": token, "PERRY_CONFIG_DIR": "/nonexistent/perry",
                "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=full_env, timeout=60, cwd=REPO,
                          stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("env", [
    {},
    {"COLUMNS": "120"},
    {"FORCE_COLOR": "1", "COLUMNS": "120"},
    {"FORCE_COLOR": "1", "NO_COLOR": "1", "COLUMNS": "120"},
    {"FORCE_COLOR": "1", "TERM": "dumb"},
    {"TTY_COMPATIBLE": "1", "COLUMNS": "100", "LINES": "30"},
    {"FORCE_COLOR": "1", "COLUMNS": "40"},  # too narrow: rich wraps the image column and cuts others
], ids=["plain", "wide", "colour", "no-colour", "dumb", "tty-compatible", "narrow"])
@pytest.mark.parametrize("answer", [WORKSPACES, ON_TWO_ENGINES, []], ids=["workspaces", "two-engines", "none"])
@pytest.mark.parametrize("args", [("list",), ("ls",), ("list", "--json")], ids=["list", "ls", "json"])
def test_the_entry_prints_what_the_command_tree_prints(api, env, answer, args):
    Api.answer = (200, {"workspaces": answer})
    quick = perry(api, *args, env=env)
    tree = perry(api, *args, env=env, full=True)
    assert quick == tree
    assert quick[0] == 0


@pytest.mark.parametrize("answer", [
    (401, {"error": {"code": "unauthorized", "message": "no token"}}),
    (500, {"error": {"code": "internal", "message": "boom"}}),
    (200, {"notWorkspaces": 1}),
    (503, {"error": {"code": "engine_unavailable", "message": "the engine is down"}}),
], ids=["401", "500", "no-workspaces-key", "503"])
def test_errors_and_odd_answers_are_the_command_trees_own(api, answer):
    Api.answer = answer
    quick = perry(api, "list")
    assert quick == perry(api, "list", full=True)
    assert quick[0] != 0 or answer[0] == 200


def test_a_refused_connection_and_a_bad_token_read_as_before(api):
    assert perry(api, "list", token="wrong") == perry(api, "list", token="wrong", full=True)
    gone = "http://127.0.0.1:9"  # nothing listens on the discard port
    code, out, err = perry(gone, "list")
    assert (code, out, err) == perry(gone, "list", full=True)
    assert code == 1 and err.startswith(b"error: no Perry server answered at")


def test_the_quick_path_loads_nothing_heavy_and_sends_the_token(api):
    probe = ("import sys, atexit\n"
             f"atexit.register(lambda: print('LOADED=' + ','.join(m for m in {NOT_ON_THE_FAST_PATH!r} "
             "if m in sys.modules)))\n"
             "sys.argv = ['perry', 'list']\n"
             "from perry_jupyter.cli import main\n"
             "main()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERRY_")}
    env.update(PERRY_URL=api, PERRY_TOKEN=TOKEN, PERRY_CONFIG_DIR="/nonexistent/perry", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "alpha" in proc.stdout and "LOADED=\n" in proc.stdout, proc.stdout
    assert Api.requests == [("/perry/api/workspaces", f"token {TOKEN}")]
    # Anything else is the command tree's.
    proc = subprocess.run([sys.executable, "-c", probe.replace("'list'", "'list', '--help'")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert "LOADED=click" in proc.stdout
