"""A PerryApp setting Jupyter cannot apply stops Perry with a 503 naming it, not a half-configured Perry."""

from __future__ import annotations

import pytest


@pytest.fixture(params=[("ssh_port_range", [0, 5], "ssh_port_range 0-5"),
                        ("image_agents", ["opencode", "gemini"], "unknown agent(s) gemini")])
def bad(request):
    return request.param


@pytest.fixture
def perry_config(perry_config, bad, tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    name, value, _ = bad
    return {**perry_config, name: value, "docker_host": f"unix://{tmp_path}/no-engine.sock"}


async def test_a_bad_setting_is_a_503_naming_it_and_nothing_is_written(api, bad, perry_state_dir, tmp_path):
    status, err = await api("GET", "info")
    assert status == 503, err
    assert err["error"]["code"] == "perry_unavailable" and bad[2] in err["error"]["message"]
    # Before, Perry ran on with state_dir "" and kept its state in the server's working directory.
    assert list((tmp_path / "cwd").iterdir()) == []
    assert not perry_state_dir.exists()
