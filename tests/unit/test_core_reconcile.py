"""Reconcile: the state file and the engine brought back into agreement after a restart (no Docker engine)."""

from __future__ import annotations

import pytest

from perry_jupyter.core.names import LABEL_CREATED
from tests.fake_engine import TEST_PREFIX, FakeEngine, make_manager, workspace_labels


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def manager(tmp_path, engine):
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAA tester\n")
    return make_manager(tmp_path / "state", engine, ssh_public_keys=[str(key)])


def record(name: str, status: str, **more) -> dict:
    return {"name": name, "status": status, "created": "2026-11-01T00:00:00+00:00", "image": "perry-workspace:latest",
            "ports": {"ssh": 2650}, "clone": None, "env": {}, "dind": "capabilities", "containerId": None,
            "error": None, **more}


def test_a_create_cut_short_with_its_container_running_is_finished(manager, engine):
    manager.store.put_workspace("half", record("half", "creating", unfinished=True))
    cid = engine.add_container(f"{TEST_PREFIX}half", labels=workspace_labels("half"))

    assert manager.reconcile() == ["half: creation interrupted; finishing it"]
    assert manager.store.get_workspace("half")["containerId"] == cid
    assert manager.get("half")["status"] == "creating"

    assert manager.finish_interrupted() == ["half"]
    ws = manager.get("half")
    assert ws["status"] == "running" and ws["error"] is None
    # Finishing waited for the workspace and copied the user's key in.
    assert [e["command"][:2] for e in engine.execs] == [["perry-worker", "health"]]
    assert [(name, path) for name, path, _ in engine.archives] == [(f"{TEST_PREFIX}half", "/home/workspace")]
    assert "unfinished" not in manager.store.get_workspace("half") or not manager.store.get_workspace("half")["unfinished"]


def test_finishing_that_fails_marks_the_workspace_with_the_way_out(manager, engine):
    manager.store.put_workspace("half", record("half", "creating", unfinished=True))
    engine.add_container(f"{TEST_PREFIX}half", labels=workspace_labels("half"))
    engine.on_exec = lambda *a, **k: {"exitCode": 1, "stdout": "sshd is not answering"}
    manager.reconcile()

    assert manager.finish_interrupted() == []
    ws = manager.store.get_workspace("half")
    assert ws["status"] == "error"
    assert "finishing it failed" in ws["error"] and "sshd is not answering" in ws["error"]
    assert "`perry start half`" in ws["error"] and "`perry delete half`" in ws["error"]


def test_a_create_cut_short_without_a_container_is_an_error(manager, engine):
    manager.store.put_workspace("gone", record("gone", "creating"))
    assert manager.reconcile() == ["gone: creation interrupted"]
    ws = manager.get("gone")
    assert ws["status"] == "error" and "creation was interrupted" in ws["error"]
    assert manager.finish_interrupted() == []
    assert engine.execs == []


def test_a_container_removed_behind_perrys_back_is_an_error(manager, engine):
    manager.store.put_workspace("lost", record("lost", "running"))
    assert manager.reconcile() == ["lost: container missing"]
    ws = manager.get("lost")
    assert ws["status"] == "error" and "removed outside Perry" in ws["error"] and "perry start lost" in ws["error"]
    # Already marked: nothing more to say next time.
    assert manager.reconcile() == []


def test_labelled_containers_missing_from_the_state_are_adopted(manager, engine):
    engine.add_container(f"{TEST_PREFIX}found", state="exited", ports={"22/tcp": 2677},
                         labels=workspace_labels("found", **{LABEL_CREATED: "2026-10-01T00:00:00+00:00"}))
    engine.add_container(f"{TEST_PREFIX}live", labels=workspace_labels("live"), ports={"22/tcp": 2678})

    assert sorted(manager.reconcile()) == [
        "found: adopted a labelled container missing from the state",
        "live: adopted a labelled container missing from the state",
    ]
    found = manager.store.get_workspace("found")
    assert (found["status"], found["ports"], found["created"]) == ("stopped", {"ssh": 2677}, "2026-10-01T00:00:00+00:00")
    assert manager.get("live")["status"] == "running" and manager.get("live")["ports"] == {"ssh": 2678}
    assert manager.reconcile() == []


def test_other_prefixes_and_unlabelled_containers_are_left_alone(manager, engine):
    # Another Perry on the same engine, whose prefix holds ours (the engine's name filter matches substrings).
    engine.add_container(f"x-{TEST_PREFIX}theirs", labels=workspace_labels("theirs"))
    engine.add_container("workspace-other", labels=workspace_labels("other"))
    engine.add_container(f"{TEST_PREFIX}plain", labels={"some.label": "1"})

    assert manager.reconcile() == []
    assert manager.store.workspaces() == {}
    assert manager.list() == []
