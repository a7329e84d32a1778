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


def test_a_custom_image_built_from_the_workspace_image_is_used_and_kept_for_recreates(tmp_path, engine):
    from perry_jupyter.core.image import IMAGE_LABEL

    manager = make_manager(tmp_path, engine)
    engine.add_image("mine:1", labels={IMAGE_LABEL: "workspace"})  # what FROM the workspace image inherits
    ws = manager.create("one", image="mine:1")
    assert ws["image"] == "mine:1" and engine.running(f"{TEST_PREFIX}one")["spec"]["image"] == "mine:1"
    # A container removed behind Perry's back comes back of the same image.
    engine.remove_container(f"{TEST_PREFIX}one")
    manager.start("one")
    assert engine.running(f"{TEST_PREFIX}one")["spec"]["image"] == "mine:1"


def test_an_image_not_from_the_workspace_image_or_missing_is_refused_with_nothing_made(tmp_path, engine):
    manager = make_manager(tmp_path, engine)
    engine.add_image("debian:plain")
    with pytest.raises(PerryError, match="FROM") as e:
        manager.create("one", image="debian:plain")
    assert e.value.status == 422 and e.value.code == "not_a_workspace_image"
    with pytest.raises(PerryError, match="perry build --dockerfile") as e:
        manager.create("one", image="nowhere:1")
    assert e.value.status == 409 and e.value.code == "image_missing"
    with pytest.raises(PerryError, match="image must be an image name") as e:
        manager.create("one", image="Not An Image")
    assert e.value.status == 400
    assert engine.calls.count("create_container") == 0 and manager.store.workspaces() == {}
