"""A damaged state file loses nothing and stops nothing; concurrent settings writers lose no update."""

from __future__ import annotations

import json
import multiprocessing

import pytest
import requests


def _recovered_check(info):
    return [c for c in info["checks"] if c["name"] == "state-recovered"]


@pytest.mark.engine
def test_a_truncated_state_file_loses_no_workspace(server):
    state = server.dir / "perry" / "state.json"
    r = requests.post(f"{server.url}/perry/api/workspaces", json={"name": "keep"}, headers=server.headers,
                      timeout=600)
    assert r.status_code in (200, 201), r.text

    # A crash, then the file cut short (a full disk, a copy interrupted).
    server.kill()
    damaged = state.read_bytes()[:len(state.read_bytes()) // 2]
    state.write_bytes(damaged)
    server.start()

    r = requests.get(f"{server.url}/perry/api/workspaces", headers=server.headers, timeout=60)
    assert r.status_code == 200, r.text
    assert [(w["name"], w["status"]) for w in r.json()["workspaces"]] == [("keep", "running")]
    aside = [p for p in state.parent.iterdir() if p.name.startswith("state.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    info = requests.get(f"{server.url}/perry/api/info", headers=server.headers, timeout=60).json()
    [check] = _recovered_check(info)
    assert not check["ok"] and aside[0].name in check["message"] and "last good copy" in check["message"]
    assert info["warnings"] == [check["message"]]
    assert server.log.read_text().count(aside[0].name) == 1  # one clear warning in the log

    # Damaged again with no good copy left: the labelled container is adopted from Docker.
    server.kill()
    state.write_text("{garbage")
    (state.parent / "state.json.good").unlink()
    server.start()
    r = requests.get(f"{server.url}/perry/api/workspaces", headers=server.headers, timeout=60)
    assert [(w["name"], w["status"]) for w in r.json()["workspaces"]] == [("keep", "running")]
    info = requests.get(f"{server.url}/perry/api/info", headers=server.headers, timeout=60).json()
    assert "no usable good copy" in _recovered_check(info)[0]["message"]

    # A clean restart: the notice is gone, the workspace stays.
    server.stop()
    server.start()
    info = requests.get(f"{server.url}/perry/api/info", headers=server.headers, timeout=60).json()
    assert _recovered_check(info) == [] and info["warnings"] == [] and info["workspaces"] == 1
    r = requests.delete(f"{server.url}/perry/api/workspaces/keep", headers=server.headers, timeout=600)
    assert r.status_code in (200, 204), r.text


class TestPerryCannotLoad:
    @pytest.fixture
    def perry_config(self, perry_config, tmp_path):
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("a file where the state directory should be\n")
        return {**perry_config, "state_dir": str(blocker)}

    async def test_every_perry_route_answers_json_503_naming_cause_and_fix(self, api, jp_fetch, tmp_path):
        for method, path in [("GET", "info"), ("GET", "workspaces"), ("POST", "workspaces"),
                             ("PATCH", "config"), ("GET", "events"), ("GET", "workspaces/alpha/sessions")]:
            status, err = await api(method, path, {"name": "alpha"} if method in ("POST", "PATCH") else None)
            assert status == 503, (method, path, err)
            assert err["error"]["code"] == "perry_unavailable"
            message = err["error"]["message"]
            assert str(tmp_path / "not-a-dir") in message and "restart the server" in message
        r = await jp_fetch("perry", "terminal", "alpha", raise_error=False)
        assert r.code == 503 and json.loads(r.body)["error"]["code"] == "perry_unavailable"
        r = await jp_fetch("perry", "proxy", "alpha", "3000", "", raise_error=False)
        assert r.code == 503 and json.loads(r.body)["error"]["code"] == "perry_unavailable"
        # Still behind Jupyter's authentication.
        r = await jp_fetch("perry", "api", "info", headers={"Authorization": "token wrong"}, raise_error=False)
        assert r.code == 403


def _patch_many(url: str, headers: dict, settings_file: str, key: str, values: list, start) -> None:
    start.wait()
    lost = 0
    with requests.Session() as http:
        for value in values:
            r = http.patch(f"{url}/perry/api/config", json={key: value}, headers=headers, timeout=60)
            assert r.status_code == 200, r.text
            # What a restart would load: only this client changes `key`, so it must read back.
            with open(settings_file, encoding="utf-8") as f:
                lost += json.load(f).get(key) != value
    assert lost == 0, f"{key}: {lost} of {len(values)} updates lost in settings.json"


def test_two_clients_patching_config_at_once_lose_no_update(server):
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    settings_file = str(server.dir / "perry" / "settings.json")
    work = [("readyTimeout", list(range(1, 101))), ("terminalShell", [f"sh{i}" for i in range(100)])]
    procs = [ctx.Process(target=_patch_many, args=(server.url, server.headers, settings_file, key, values, start))
             for key, values in work]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]

    server.stop()
    server.start()
    config = requests.get(f"{server.url}/perry/api/config", headers=server.headers, timeout=60).json()
    assert (config["readyTimeout"], config["terminalShell"]) == (100, "sh99")
