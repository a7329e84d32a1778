"""What `perry serve` loads on its way to its first answer: Perry and Jupyter's terminals, not every
server extension installed beside it (unless the user's config names one); Jupyter's IRI grammar
only once something checks an IRI; not the CLI's command tree. (How long that takes: bench/lists.py.)"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from ..conftest import TEST_PREFIX
from .conftest import free_port

pytestmark = pytest.mark.engine

# `perry serve`'s own start-up, in a process of its own (a ServerApp is a process-wide singleton).
LOADED = ("import json, sys; from perry_jupyter.serve import initialize; app = initialize(sys.argv[1:]); "
          "print(json.dumps(sorted(app.extension_manager.extensions)))")
IRI = ("import json, sys; from perry_jupyter.serve import initialize; initialize(sys.argv[1:]); "
       "compiled_at_start = 'lark' in sys.modules; import jsonschema; "
       "check = jsonschema.Draft7Validator.FORMAT_CHECKER; "
       "print(json.dumps([compiled_at_start, check.conforms('https://例え.jp/パス', 'iri'), "
       "check.conforms('http://[bad', 'iri')]))")


def probe(tmp_path, code: str, *argv: str) -> object:
    env = {**os.environ, "PERRY_CONFIG_DIR": str(tmp_path / "perry"), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter")}
    out = subprocess.run([sys.executable, "-c", code, f"--port={free_port()}", "--ServerApp.ip=127.0.0.1",
                          f"--PerryApp.workspace_prefix={TEST_PREFIX}", "--PerryApp.network=perry-test", *argv],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_perry_serve_loads_perry_and_the_terminals_not_every_installed_extension(tmp_path):
    # JupyterLab and the LSP are installed and enabled here: `jupyter lab` loads them, and `jupyter server` too.
    assert importlib.util.find_spec("jupyterlab") and importlib.util.find_spec("jupyter_lsp")
    assert probe(tmp_path, LOADED) == ["jupyter_server_terminals", "perry_jupyter"]


def test_an_extension_the_users_config_names_still_loads(tmp_path):
    (tmp_path / "jupyter").mkdir()
    (tmp_path / "jupyter" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_lsp": True}}}))
    assert probe(tmp_path, LOADED) == ["jupyter_lsp", "jupyter_server_terminals", "perry_jupyter"]


def test_the_iri_grammar_is_compiled_when_an_iri_is_checked_not_at_start(tmp_path):
    compiled_at_start, good, bad = probe(tmp_path, IRI)
    assert compiled_at_start is False
    assert good is True and bad is False


def test_perry_serve_starts_without_the_clis_command_tree(tmp_path):
    # `--version` is Jupyter Server's: it answers and exits before the server starts.
    code = ("import atexit, sys; atexit.register(lambda: print(sorted(m for m in ('click', 'rich') "
            "if m in sys.modules), file=sys.stderr)); sys.argv = ['perry', 'serve', '--version']; "
            "from perry_jupyter.cli import main; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PERRY_CONFIG_DIR": str(tmp_path / "perry")})
    import jupyter_server

    assert out.stdout.strip() == jupyter_server.__version__, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "[]"
