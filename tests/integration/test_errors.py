"""Bad input gets a clear error and changes nothing; an unreachable engine is a 503 naming it."""

from __future__ import annotations


import pytest

from ..conftest import TEST_PREFIX

pytestmark = pytest.mark.engine


def snapshot(state_dir, docker_client):
    state = state_dir / "state.json"
    containers = sorted(c.name for c in docker_client.containers.list(all=True, filters={"name": TEST_PREFIX})
                        if c.name.startswith(TEST_PREFIX))
    volumes = sorted(v.name for v in docker_client.volumes.list() if v.name.startswith(TEST_PREFIX))
    return (state.read_text() if state.exists() else None, containers, volumes)


@pytest.mark.parametrize("body, code, words", [
    ({"name": "Bad_Name"}, 400, "invalid workspace name"),
    ({"name": "-x"}, 400, "invalid workspace name"),
    ({}, 400, "name is required"),
    ({"name": "ok", "color": "red"}, 400, "unknown field(s) color"),
    ({"name": "ok", "env": ["A=1"]}, 400, "env must be an object"),
    ({"name": "ok", "env": {"1BAD": "x"}}, 400, "not a valid variable name"),
    ({"name": "ok", "clone": "/no/such/dir"}, 400, "not a directory"),
    ({"name": "ok", "clone": "not a url"}, 400, "neither a git URL"),
])
async def test_bad_create_bodies(api, perry_state_dir, docker_client, body, code, words):
    before = snapshot(perry_state_dir, docker_client)
    status, err = await api("POST", "workspaces", body)
    assert status == code
    assert words in err["error"]["message"]
    assert snapshot(perry_state_dir, docker_client) == before


async def test_bodies_that_are_not_json_objects(api):
    status, err = await api("POST", "workspaces", raw=b"{nope")
    assert status == 400 and "not valid JSON" in err["error"]["message"]
    status, err = await api("POST", "workspaces", raw=b"[1, 2]")
    assert status == 400 and "JSON object" in err["error"]["message"]


@pytest.mark.parametrize("method, path", [
    ("GET", "workspaces/ghost"), ("DELETE", "workspaces/ghost"), ("POST", "workspaces/ghost/start"),
    ("POST", "workspaces/ghost/stop"), ("POST", "workspaces/ghost/sync"), ("GET", "workspaces/ghost/logs"),
])
async def test_unknown_workspace_is_404(api, method, path):
    status, err = await api(method, path)
    assert status == 404
    assert err["error"] == {"code": "not_found", "message": "workspace 'ghost' does not exist"}


async def test_invalid_name_in_path_is_400(api):
    status, err = await api("GET", "workspaces/NOT_OK")
    assert status == 400 and "invalid workspace name" in err["error"]["message"]


async def test_duplicate_and_bad_exec(api, perry_state_dir, docker_client):
    status, ws = await api("POST", "workspaces", {"name": "dup"})
    assert status == 201, ws
    before = snapshot(perry_state_dir, docker_client)
    status, err = await api("POST", "workspaces", {"name": "dup"})
    assert status == 409 and "already exists" in err["error"]["message"]
    assert snapshot(perry_state_dir, docker_client) == before
    for body, words in [({"command": "ls"}, "non-empty list"), ({"command": []}, "non-empty list"),
                        ({"command": ["ls"], "user": ""}, "user"), ({"cmd": ["ls"]}, "unknown field"),
                        # Docker's own errors for these were a 502; the fields are checked first.
                        ({"command": ["ls"], "workdir": 5}, "workdir must be an absolute path"),
                        ({"command": ["ls"], "workdir": "relative"}, "workdir must be an absolute path"),
                        ({"command": ["ls"], "user": 1000}, "user must be"),
                        ({"command": ["ls"], "env": {"A": ["x"]}}, "env value"),
                        ({"command": ["ls", "a\0b"]}, "NUL")]:
        status, err = await api("POST", "workspaces/dup/exec", body)
        assert status == 400 and words in err["error"]["message"], err
    status, err = await api("GET", "workspaces/dup/logs", params={"tail": "many"})
    assert status == 400 and "tail" in err["error"]["message"]
    status, err = await api("PATCH", "config", {"dindMode": "sometimes"})
    assert status == 400 and "dindMode" in err["error"]["message"]


@pytest.fixture
def jp_server_config(perry_config):
    from traitlets.config import Config

    return Config({
        "ServerApp": {"jpserver_extensions": {"perry_jupyter": True}},
        "PerryApp": perry_config,
    })


class TestEngineUnreachable:
    @pytest.fixture
    def perry_config(self, perry_config, tmp_path):
        return {**perry_config, "docker_host": f"unix://{tmp_path}/no-engine.sock"}

    async def test_503_names_the_engine_address(self, api, tmp_path):
        for method, path in [("GET", "workspaces"), ("POST", "workspaces"), ("GET", "workspaces/alpha")]:
            status, err = await api(method, path, {"name": "alpha"} if method == "POST" else None)
            assert status == 503, (method, path, err)
            assert err["error"]["code"] == "engine_unavailable"
            assert f"unix://{tmp_path}/no-engine.sock" in err["error"]["message"]
        status, info = await api("GET", "info")
        assert status == 200 and info["engine"]["reachable"] is False
        engine_check = next(c for c in info["checks"] if c["name"] == "engine")
        assert not engine_check["ok"] and "dockerd" in engine_check["fix"]
        assert not (tmp_path / "perry-state" / "state.json").exists()


async def test_a_clone_that_fails_is_reported_and_leaves_nothing(api, perry_state_dir, docker_client, tmp_path):
    not_a_repo = tmp_path / "plain-folder"
    not_a_repo.mkdir()
    before = snapshot(perry_state_dir, docker_client)
    status, err = await api("POST", "workspaces", {"name": "badclone", "clone": str(not_a_repo)})
    assert status == 422, err
    assert err["error"]["code"] == "clone_failed"
    assert "fatal: repository" in err["error"]["message"]  # git's own words reach the user
    assert snapshot(perry_state_dir, docker_client)[1:] == before[1:]
    status, _ = await api("GET", "workspaces/badclone")
    assert status == 404
