"""The panel learns the coding agents from GET /perry/api/info: the one list perry_worker declares."""

from __future__ import annotations

import pytest

from perry_worker import agents


@pytest.fixture
def perry_config(perry_config, tmp_path):
    # No engine needed: what Perry says about its agents does not depend on Docker.
    return {**perry_config, "docker_host": f"unix://{tmp_path}/no-engine.sock"}


async def test_info_lists_every_agent_of_the_registry_in_order(api):
    status, info = await api("GET", "info")
    assert status == 200
    assert [(a["name"], a["label"]) for a in info["agents"]] == [("opencode", "OpenCode"), ("claude", "Claude Code"),
                                                                 ("codex", "Codex")]
    assert info["agents"] == [a.public() for a in agents.AGENTS.values()]
    by_name = {a["name"]: a for a in info["agents"]}
    assert by_name["claude"]["resumeCommand"] == "claude --resume {id}"
    assert by_name["codex"]["package"] == "@openai/codex"
    assert [a["name"] for a in info["agents"] if a["default"]] == ["opencode"]

