"""Creating a workspace on the in-memory engine: the Docker-in-Docker fallback, a port taken, the rollback."""

from __future__ import annotations

import pytest

from perry_jupyter.core.errors import Conflict, PerryError
from perry_jupyter.core.workspaces import DIND_CAPABILITIES
from tests.fake_engine import TEST_PREFIX, FakeEngine, make_manager


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


def test_auto_falls_back_to_capabilities_where_privileged_is_refused_and_remembers_it(tmp_path, engine):
    engine.refuse_privileged()
    manager = make_manager(tmp_path, engine)
    ws = manager.create("one")
    assert ws["status"] == "running" and ws["dind"] == "capabilities"
    spec = engine.running(f"{TEST_PREFIX}one")["spec"]
    assert "privileged" not in spec and spec["cap_add"] == DIND_CAPABILITIES and spec["cgroupns"] == "host"
    assert engine.calls.count("create_container") == 2  # the refused privileged try, removed again
    # The worker went in before the start, the host's answer is remembered for the next create.
    engine.calls.clear()
    assert manager.create("two")["dind"] == "capabilities"
    assert engine.calls.count("create_container") == 1
    assert {c["name"] for c in engine.containers({})} == {f"{TEST_PREFIX}one", f"{TEST_PREFIX}two"}


def test_privileged_where_the_host_allows_it(tmp_path, engine):
    ws = make_manager(tmp_path, engine).create("one")
    assert ws["dind"] == "privileged" and engine.running(f"{TEST_PREFIX}one")["spec"]["privileged"] is True


def test_a_refusal_in_an_explicit_mode_is_an_error_and_leaves_nothing(tmp_path, engine):
    engine.refuse_privileged()
    manager = make_manager(tmp_path, engine, dind_mode="privileged")
    with pytest.raises(PerryError, match="creating the workspace container failed: unable to apply caps") as e:
        manager.create("one")
    assert e.value.code == "docker_error" and e.value.status == 502
    assert engine.containers({}) == [] and engine.volumes == {} and manager.store.workspaces() == {}


def test_a_port_taken_meanwhile_is_a_conflict_and_the_create_is_rolled_back(tmp_path, engine):
    manager = make_manager(tmp_path, engine, ssh_port_range=(2660, 2661))
    engine.take_port(2660)
    with pytest.raises(Conflict, match="SSH port 2660 was taken while creating 'one'; try again"):
        manager.create("one")
    assert engine.containers({}) == [] and engine.volumes == {} and manager.store.workspaces() == {}


def test_create_without_the_image_says_perry_build(tmp_path, engine):
    manager = make_manager(tmp_path, engine)
    engine.images.clear()
    with pytest.raises(PerryError, match="perry build") as e:
        manager.create("one")
    assert e.value.code == "image_missing" and engine.calls.count("create_container") == 0
