"""PerryApp's traits are the only defaults: the core's configuration is built from them, unchanged."""

from __future__ import annotations

import dataclasses

import pytest
from traitlets import TraitError

from perry_jupyter.app import PerryApp
from perry_jupyter.core.config import WorkspaceSettings

# Config fields whose trait has another name (the trait names are the user's documented ones).
TRAIT_OF = {"prefix": "workspace_prefix", "image": "image_tag", "extra_env": "workspace_env"}
# A value unlike the default for every trait the core receives.
OTHER = {
    "workspace_prefix": "x-", "image_tag": "img:1", "network": "net", "ssh_port_range": (3000, 3010),
    "bind_address": "0.0.0.0", "dind_mode": "off", "restart_policy": "always", "ready_timeout": 7.0,
    "clone_timeout": 8.0, "stop_timeout": 9, "engine_down_task_timeout": 11.0, "ssh_public_keys": ["/k.pub"], "git_config": None,
    "terminal_shell": "zsh", "agent_files": [".x/auth.json"], "host_home": "/h",
    "image_agents": ["codex"], "workspace_env": {"A": "1"}, "idle_timeout": 600, "auto_start": False,
    "default_cpus": 1.5, "default_memory": "2g", "default_pids": 256,
}


def _fields():
    return [(f.name, TRAIT_OF.get(f.name, f.name)) for f in dataclasses.fields(WorkspaceSettings)]


def _same(config_value, trait_value):
    if isinstance(config_value, tuple):
        return config_value == tuple(trait_value)
    return config_value == trait_value


def test_the_core_config_has_no_default_of_its_own():
    with_default = [f.name for f in dataclasses.fields(WorkspaceSettings)
                    if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
    assert with_default == []


def test_every_trait_default_reaches_the_core_config_unchanged():
    traits = PerryApp.class_traits()
    config = PerryApp().core_config()
    for field, trait in _fields():
        assert trait in traits, f"{field} has no PerryApp trait"
        assert _same(getattr(config, field), traits[trait].default()), field


def test_every_configured_value_reaches_the_core_config_unchanged():
    assert {trait for _, trait in _fields()} == set(OTHER), "a new setting needs a value here"
    config = PerryApp(**OTHER).core_config()
    for field, trait in _fields():
        assert _same(getattr(config, field), OTHER[trait]), field


def test_an_unknown_image_agent_is_refused_at_configuration():
    with pytest.raises(TraitError, match="unknown agent.*nope.*known: opencode, claude, codex"):
        PerryApp(image_agents=["opencode", "nope"])
