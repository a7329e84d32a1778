"""Jupyter's terminal manager is Perry's subclass, in any Jupyter server with the extension; another class the user sets gets no workspace terminals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests
import tornado.httpclient

from .conftest import PerryServe, free_port

PERRYS_CLASS = "perry_jupyter.terminals.WorkspaceTerminalManager"
OWN_CLASS = "jupyter_server_terminals.terminalmanager.TerminalManager"
SETTING = "TerminalsExtensionApp.terminal_manager_class"
OVERRIDDEN = {"create", "get_terminal", "terminate"}


def class_name(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


async def test_a_jupyter_server_with_the_extension_gets_perrys_terminal_manager(jp_serverapp):
    manager = jp_serverapp.web_app.settings["terminal_manager"]
    assert class_name(manager) == PERRYS_CLASS
    assert OVERRIDDEN & set(vars(manager)) == set(), "methods were replaced on Jupyter's instance"


def test_perry_serve_makes_its_terminal_manager_perrys(tmp_path):
    # `perry serve`'s own start-up, in a process of its own (a ServerApp is a process-wide singleton).
    probe = ("import json, sys; from perry_jupyter.serve import initialize; "
             "m = initialize(sys.argv[1:]).web_app.settings['terminal_manager']; "
             "print(json.dumps([type(m).__module__ + '.' + type(m).__qualname__, sorted(vars(m))]))")
    env = {**os.environ, "PERRY_CONFIG_DIR": str(tmp_path / "perry"), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter")}
    out = subprocess.run([sys.executable, "-c", probe, f"--port={free_port()}", "--ServerApp.ip=127.0.0.1"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    cls, attributes = json.loads(out.stdout.strip().splitlines()[-1])
    assert cls == PERRYS_CLASS
    assert OVERRIDDEN & set(attributes) == set()


def test_perry_serve_with_the_users_own_class_refuses_workspace_terminals(tmp_path, ssh_key):
    serve = PerryServe(tmp_path, ssh_key)
    serve.argv.append(f"--{SETTING}={OWN_CLASS}")
    serve.start()
    try:
        r = requests.post(f"{serve.url}/perry/api/workspaces/alpha/terminals", headers=serve.headers, timeout=60)
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["code"] == "terminals_unavailable"
        assert SETTING in error["message"] and OWN_CLASS in error["message"] and PERRYS_CLASS in error["message"]
        # Jupyter's own terminals are the user's class's business, and still work.
        r = requests.post(f"{serve.url}/api/terminals", headers=serve.headers, json={}, timeout=60)
        assert r.status_code == 200, r.text
    finally:
        serve.stop()
    assert f"Perry: no workspace terminals: workspace terminals need Perry's terminal manager, and {SETTING} is " \
           f"{OWN_CLASS}" in serve.log.read_text()


class TestTheUsersOwnClass:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        jp_server_config.TerminalsExtensionApp.terminal_manager_class = OWN_CLASS
        return jp_server_config

    async def test_workspace_terminals_are_refused_naming_the_setting(self, jp_serverapp, api, jp_ws_fetch):
        assert class_name(jp_serverapp.web_app.settings["terminal_manager"]) == OWN_CLASS
        code, err = await api("POST", "workspaces/alpha/terminals")
        assert code == 503 and err["error"]["code"] == "terminals_unavailable"
        assert f"{SETTING} is {OWN_CLASS}" in err["error"]["message"]
        with pytest.raises(tornado.httpclient.HTTPClientError) as e:
            await jp_ws_fetch("perry", "terminal", "alpha")
        assert e.value.code == 503
        assert SETTING in e.value.response.body.decode()


class TestPerryCannotLoad:
    @pytest.fixture
    def perry_config(self, perry_config):
        return {**perry_config, "state_dir": "/proc/no-perry-state"}  # where no directory can be made

    async def test_a_restored_workspace_terminal_is_refused_not_a_host_shell(self, api, jp_fetch):
        code, err = await api("GET", "info")
        assert code == 503 and err["error"]["code"] == "perry_unavailable"
        # JupyterLab restoring a saved layout asks for the old name with no command.
        r = await jp_fetch("api", "terminals", method="POST", body=json.dumps({"name": "perry_alpha_1"}),
                           raise_error=False)
        assert r.code == 503 and "workspace 'alpha'" in json.loads(r.body)["message"]
        running = json.loads((await jp_fetch("api", "terminals")).body)
        assert "perry_alpha_1" not in [t["name"] for t in running]
