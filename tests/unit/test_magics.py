"""`%perry`, the kernel environment hook and the widgets' pieces that need no engine and no server."""

from __future__ import annotations

import asyncio
import json
import socket
from types import SimpleNamespace

import pytest
from IPython.core.error import UsageError

from perry_jupyter import present
from perry_jupyter.client import PerryClient, PerryClientError
from perry_jupyter.notebook import kernel_env
from perry_jupyter.notebook.magics import PerryError, run, shown


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    monkeypatch.setenv("PERRY_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("PERRY_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("PERRY_TOKEN", raising=False)


@pytest.mark.parametrize("line, message, help_line", [
    ("create", "Missing argument 'NAME'.", "Usage: %perry create [OPTIONS] NAME"),
    ("list --bogus", "No such option '--bogus'.", "Usage: %perry list [OPTIONS]"),
    ("frob", "No such command 'frob'.", "Usage: %perry [OPTIONS] COMMAND [ARGS]..."),
    ("dispatch alpha", "Missing argument 'PROMPT'.", "Usage: %perry dispatch [OPTIONS] NAME PROMPT"),
    ("dispatch alpha x --agent nope", "'nope' is not one of", "Usage: %perry dispatch"),
    ("delete alpha", "add --yes to confirm", "Usage: %perry delete [OPTIONS] NAME"),
])
def test_usage_mistakes_raise_usage_error_with_the_help(nowhere, line, message, help_line):
    with pytest.raises(UsageError) as caught:
        run(line)
    text = str(caught.value)
    assert message in text and help_line in text


@pytest.mark.parametrize("line, says", [
    ("shell alpha", "no terminal"),
    ("serve", "would block this kernel"),
    ("agent run", "would block this kernel"),
    ('create "alpha', "No closing quotation"),
])
def test_what_a_notebook_cannot_do(nowhere, line, says):
    with pytest.raises(UsageError, match=says):
        run(line)


def test_an_unreachable_server_is_one_line(nowhere):
    with pytest.raises(PerryError) as caught:
        run("list")
    error = caught.value
    assert isinstance(error, PerryClientError) and "no Perry server answered at" in error.message
    [line] = error._render_traceback_()
    assert "PerryError" in line and error.message in line


def test_help_and_version_return_nothing(nowhere, capsys):
    assert run("--version") is None
    assert run("create --help") is None
    assert run("") is None
    out = capsys.readouterr().out
    assert "perry 0.1" in out and "Usage: %perry create" in out and "Commands:" in out


def test_the_magic_is_registered():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "perry_jupyter")
        assert "perry" in shell.magics_manager.magics["line"]
        assert "Usage: %perry" in shell.find_line_magic("perry").__doc__
    finally:
        InteractiveShell.clear_instance()


WS = {"name": "alpha", "status": "running", "containerId": "0123456789abcdef", "containerName": "workspace-alpha",
      "created": "2026-01-01T00:00:00Z", "image": "perry-workspace:latest", "ports": {"ssh": 2201},
      "sshHost": "127.0.0.1", "sshCommand": "ssh -p 2201 workspace@127.0.0.1", "volumes": {"home": "workspace-alpha-home", "docker": "workspace-alpha-docker"},
      "error": "<script>alert(1)</script>"}


def test_results_are_the_data_with_an_html_face():
    listed = shown([WS], present.workspaces([WS]))
    assert isinstance(listed, list) and listed == [WS] and json.loads(json.dumps(listed)) == [WS]
    page = listed._repr_html_()
    assert "<table" in page and "<b>alpha</b>" in page and "ssh -p 2201 workspace@127.0.0.1" in page

    ws = shown(WS, present.workspace(WS, verb="Created"))
    assert isinstance(ws, dict) and ws == WS and ws["status"] == "running"
    page = ws._repr_html_()
    assert "Created workspace <b>alpha</b>" in page and "workspace-alpha-home" in page
    assert "<script>" not in page and "&lt;script&gt;" in page  # what the server says is text, never markup

    assert "No workspaces yet" in shown([], present.workspaces([], prog="%perry"))._repr_html_()
    assert "Deleted workspace <b>alpha</b>" in shown({"name": "alpha", "status": "deleted"},
                                                     present.deleted("alpha"))._repr_html_()
    task = {"id": "tsk_1", "workspace": "alpha", "agent": "opencode", "status": "succeeded", "prompt": "p",
            "summary": "all <b>done</b>", "sessionId": "ses_1", "exitCode": 0}
    assert "succeeded" in shown(task, present.task(task))._repr_html_()
    assert "all &lt;b&gt;done" in shown(task, present.task(task, output=True))._repr_html_()
    assert "tsk_1" in shown([task], present.tasks([task]))._repr_html_()
    session = {"sessionId": "ses_1", "agent": "opencode", "title": "T", "messageCount": 2,
               "tokens": {"input": 1200, "output": 30}}
    assert "1,200 in / 30 out" in shown([session], present.sessions([session]))._repr_html_()
    data = {"session": session, "messages": [
        {"role": "user", "parts": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "parts": [{"type": "tool", "tool": "write", "status": "completed", "input": {"a": 1}},
                                        {"type": "text", "text": "ok"}]}]}
    assert "tool: write (completed)" in shown(data, present.conversation(data))._repr_html_()
    result = {"exitCode": 3, "stdout": "o", "stderr": "e"}
    assert "exit code 3" in shown(result, present.exec_result(result))._repr_html_()
    data = {"workspaces": {"alpha": {"tokens": {"input": 1, "output": 2}, "cost": 0.5}},
            "total": {"tokens": {"input": 1, "output": 2}, "cost": 0.5}}
    assert "$0.5000" in shown(data, present.usage(data))._repr_html_()
    logs = shown("line <1>\n", present.logs("line <1>\n"))
    assert logs == "line <1>\n" and "line &lt;1&gt;" in logs._repr_html_()
    data = {"version": "0.1", "checks": [{"name": "engine", "ok": False, "message": "down", "fix": "start it"}]}
    checks = shown(data, present.checks(data))
    assert "✗" in checks._repr_html_() and "fix: start it" in checks._repr_html_()
    assert shown(None, None) is None


# -- kernel_env ---------------------------------------------------------------------

def app(**kw):
    defaults = {"ip": "localhost", "port": 8888, "base_url": "/", "sock": "", "certfile": "",
                "identity_provider": SimpleNamespace(token="tok"), "kernel_manager": None}
    return SimpleNamespace(**{**defaults, **kw})


@pytest.mark.parametrize("settings, url", [
    ({}, "http://127.0.0.1:8888/"),
    ({"ip": "0.0.0.0", "base_url": "/user/me/"}, "http://127.0.0.1:8888/user/me/"),
    ({"ip": "10.1.2.3", "certfile": "/c.pem"}, "https://10.1.2.3:8888/"),
    ({"ip": "::"}, "http://[::1]:8888/"),
    ({"sock": "/run/jupyter.sock"}, None),
])
def test_server_url(settings, url):
    assert kernel_env.server_url(app(**settings)) == url


def test_kernel_env_hands_url_and_token_unless_perry_url_is_set(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    env = kernel_env.kernel_env(app(), base={})
    assert env == {"PERRY_URL": "http://127.0.0.1:8888/", "PERRY_TOKEN": "tok",
                   "PERRY_JUPYTER_URL": "http://127.0.0.1:8888/"}
    # Someone meant another Perry server: theirs stays.
    assert kernel_env.kernel_env(app(), base={"PERRY_URL": "http://elsewhere:7391"}) == {
        "PERRY_JUPYTER_URL": "http://127.0.0.1:8888/"}
    # A JupyterHub server has no Jupyter token: the hub's API token authenticates.
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub")
    assert kernel_env.kernel_env(app(identity_provider=SimpleNamespace(token="")), base={})["PERRY_TOKEN"] == "hub"


def test_install_wraps_start_kernel_once(monkeypatch):
    monkeypatch.delenv("PERRY_URL", raising=False)
    calls = []

    class KernelManager:
        async def start_kernel(self, **kwargs):
            calls.append(kwargs)
            return "kid"

    km = KernelManager()
    server = app(kernel_manager=km)
    assert kernel_env.install(server) is True
    assert kernel_env.install(server) is False  # once
    assert asyncio.run(km.start_kernel(kernel_name="python3", env={"JPY_SESSION_NAME": "x.ipynb"})) == "kid"
    assert calls[-1]["env"] == {"JPY_SESSION_NAME": "x.ipynb", "PERRY_URL": "http://127.0.0.1:8888/",
                                "PERRY_TOKEN": "tok", "PERRY_JUPYTER_URL": "http://127.0.0.1:8888/"}
    asyncio.run(km.start_kernel(kernel_name="python3"))  # no env: the server's own, plus ours
    assert calls[-1]["env"]["PERRY_TOKEN"] == "tok" and "PATH" in calls[-1]["env"]

    class GatewayMappingKernelManager(KernelManager):
        pass

    assert kernel_env.install(app(kernel_manager=GatewayMappingKernelManager())) is False


# -- widget pieces ------------------------------------------------------------------

def test_engine_banner_and_terminal_link(monkeypatch):
    from perry_jupyter.notebook.widgets import engine_banner, terminal_link_html

    info = {"engine": {"reachable": False, "address": "unix:///var/run/docker.sock",
                       "error": "the Docker engine at unix:///var/run/docker.sock is not reachable"},
            "checks": [{"name": "engine", "ok": False, "message": "not reachable", "fix": "start one"}]}
    banner = engine_banner(info)
    assert "No Docker engine is reachable" in banner and "Binder" in banner and "start one" in banner
    assert engine_banner({"engine": {"reachable": True}, "image": {"present": True}}) == ""
    assert "perry build" in engine_banner({"engine": {"reachable": True}, "image": {"tag": "t", "present": False}})

    client = PerryClient("http://127.0.0.1:8888/user/me/", "tok")
    assert client.websocket_url("perry/api/events", workspace="alpha") == \
        "ws://127.0.0.1:8888/user/me/perry/api/events?workspace=alpha"
    assert PerryClient("https://h/base", "t").websocket_url("perry/terminal/a", terminal=None) == \
        "wss://h/base/perry/terminal/a"
    assert client.websocket_headers() == ["Authorization: token tok"]
    terminal = {"name": "perry_alpha_1", "workspace": "alpha"}
    monkeypatch.setenv("PERRY_JUPYTER_URL", "http://127.0.0.1:8888/user/me/")
    link = terminal_link_html(client, terminal, WS)
    assert 'data-commandlinker-command="terminal:open"' in link and "/user/me/terminals/perry_alpha_1" in link
    monkeypatch.setenv("PERRY_JUPYTER_URL", "http://127.0.0.1:9999/")
    link = terminal_link_html(client, terminal, WS)
    assert "commandlinker" not in link and "perry shell alpha" in link and "ssh -p 2201" in link
