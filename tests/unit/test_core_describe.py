"""What a workspace looks like to clients: the state file's promise read against the engine (no Docker engine)."""

from __future__ import annotations

import pytest

from perry_jupyter.core.errors import NotFound
from perry_jupyter.core.image import AGENTS_LABEL
from tests.fake_engine import TEST_PREFIX, FakeEngine, make_manager, workspace_labels


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def manager(tmp_path, engine):
    return make_manager(tmp_path, engine)


def promise(manager, name: str, status: str, **more) -> None:
    manager.store.put_workspace(name, {"name": name, "status": status, "created": "2026-11-01T00:00:00+00:00",
                                       "ports": {"ssh": 2650}, "error": None, **more})


def box(engine, name: str, state: str = "running", **more) -> str:
    return engine.add_container(f"{TEST_PREFIX}{name}", state=state, labels=workspace_labels(name), **more)


@pytest.mark.parametrize("recorded, state, shown", [
    ("running", "running", "running"),
    ("error", "running", "running"),      # it runs again: the old error is gone
    ("running", "exited", "stopped"),     # stopped behind Perry's back
    ("stopped", "created", "stopped"),
    ("error", "exited", "error"),         # a failure stays until a start clears it
    ("creating", "running", "creating"),  # a create in progress shows as such
])
def test_status_comes_from_the_record_and_the_container(manager, engine, recorded, state, shown):
    promise(manager, "w", recorded, **({"error": "it broke"} if recorded == "error" else {}))
    cid = box(engine, "w", state)
    ws = manager.get("w")
    assert ws["status"] == shown
    assert ws["containerId"] == cid and ws["containerName"] == f"{TEST_PREFIX}w"
    assert ws["error"] == ("it broke" if shown == "error" else None)


def test_a_restarting_container_is_an_error_that_says_where_to_look(manager, engine):
    promise(manager, "w", "running")
    box(engine, "w", "restarting")
    ws = manager.get("w")
    assert ws["status"] == "error" and "keeps exiting" in ws["error"] and "perry logs" in ws["error"]


def test_a_missing_container_is_an_error_unless_the_create_still_runs(manager, engine):
    promise(manager, "gone", "running")
    promise(manager, "new", "creating")
    shown = {w["name"]: w for w in manager.list()}
    assert shown["gone"]["status"] == "error" and "perry start" in shown["gone"]["error"]
    assert shown["new"]["status"] == "creating" and shown["new"]["error"] is None


def test_ssh_port_from_the_record_else_from_the_published_port(manager, engine):
    promise(manager, "recorded", "running")
    box(engine, "recorded", ports={"22/tcp": 2699})
    box(engine, "adopted", ports={"22/tcp": 2688, "8080/tcp": 2689})
    shown = {w["name"]: w for w in manager.list()}
    assert shown["recorded"]["ports"] == {"ssh": 2650}
    assert shown["adopted"]["ports"] == {"ssh": 2688} and shown["adopted"]["sshHost"] == "127.0.0.1"
    assert shown["adopted"]["status"] == "running"


def test_agents_come_from_the_image_label_and_unknown_is_none(manager, engine):
    engine.add_container(f"{TEST_PREFIX}two", labels=workspace_labels("two", **{AGENTS_LABEL: "opencode claude"}))
    engine.add_container(f"{TEST_PREFIX}none", labels=workspace_labels("none", **{AGENTS_LABEL: ""}))
    box(engine, "old")
    promise(manager, "nobox", "running")
    shown = {w["name"]: w["agents"] for w in manager.list()}
    assert shown == {"two": ["opencode", "claude"], "none": [], "old": None, "nobox": None}


def test_volumes_and_listing_cost_one_engine_call(manager, engine):
    for n in ("a", "b", "c"):
        box(engine, n)
    before = engine.api_calls
    shown = manager.list()
    assert engine.api_calls - before == 1
    assert shown[0]["volumes"] == {"home": f"{TEST_PREFIX}a-home", "docker": f"{TEST_PREFIX}a-docker"}


def test_unknown_workspace_is_not_found(manager):
    with pytest.raises(NotFound, match="does not exist"):
        manager.get("nothing")
