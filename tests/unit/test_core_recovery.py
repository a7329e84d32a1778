"""A damaged state file at start-up: moved aside, the last good copy restored, and what Docker still
runs adopted again by reconcile (the in-memory engine stands in for Docker)."""

from __future__ import annotations

from perry_jupyter.core.services import Perry
from perry_jupyter.core.state import StateStore
from perry_jupyter.core.config import WorkspaceSettings
from tests.fake_engine import IMAGE, TEST_PREFIX, FakeEngine, core_config, workspace_labels


def settings(tmp_path) -> WorkspaceSettings:
    return core_config(prefix=TEST_PREFIX, image=IMAGE, ssh_public_keys=[], git_config=None,
                       host_home=str(tmp_path))


def engine_with(*names: str) -> FakeEngine:
    engine = FakeEngine()
    engine.add_image(IMAGE)
    for n, name in enumerate(names):
        engine.add_container(f"{TEST_PREFIX}{name}", labels=workspace_labels(name), ports={"22/tcp": 2600 + n})
    return engine


def promised(state_dir, *names: str) -> None:
    store = StateStore(state_dir)
    for name in names:
        store.put_workspace(name, {"name": name, "status": "running", "created": "2026-11-01T00:00:00+00:00",
                                   "ports": {"ssh": 2650}, "clone": "https://example.invalid/r.git",
                                   "env": {"A": "1"}, "error": None})


def test_damaged_state_restores_the_good_copy_and_adopts_the_rest(tmp_path):
    state_dir = tmp_path / "state"
    promised(state_dir, "kept")
    (state_dir / "state.json").write_text('{"version": 1, "workspaces": {"kep')  # a write cut short
    engine = engine_with("kept", "later")

    perry = Perry(state_dir, settings(tmp_path), engine=engine)
    assert len(perry.warnings) == 1 and "was damaged" in perry.warnings[0]
    assert "restored the last good copy" in perry.warnings[0]
    aside = list(state_dir.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text().endswith('"kep')

    assert perry.workspaces.reconcile() == ["later: adopted a labelled container missing from the state"]
    shown = {w["name"]: w for w in perry.workspaces.list()}
    # What the good copy promised is kept (its clone, its port), the rest is read from Docker.
    assert shown["kept"]["status"] == "running" and shown["kept"]["clone"] == "https://example.invalid/r.git"
    assert shown["kept"]["ports"] == {"ssh": 2650}
    assert shown["later"]["status"] == "running" and shown["later"]["ports"] == {"ssh": 2601}
    # The doctor says it too, until a restart.
    recovered = [c for c in perry.info()["checks"] if c["name"] == "state-recovered"]
    assert len(recovered) == 1 and not recovered[0]["ok"]


def test_damaged_state_without_a_good_copy_starts_empty_and_adopts_everything(tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "state.json").write_text("[1, 2")
    engine = engine_with("a", "b")

    perry = Perry(state_dir, settings(tmp_path), engine=engine)
    assert "starts empty" in perry.warnings[0]
    assert sorted(perry.workspaces.reconcile()) == [f"{n}: adopted a labelled container missing from the state"
                                                    for n in ("a", "b")]
    assert sorted(perry.store.workspaces()) == ["a", "b"]
    assert [w["status"] for w in perry.workspaces.list()] == ["running", "running"]


def test_a_sound_state_file_is_left_as_it_is(tmp_path):
    state_dir = tmp_path / "state"
    promised(state_dir, "kept")
    before = (state_dir / "state.json").read_text()
    perry = Perry(state_dir, settings(tmp_path), engine=engine_with("kept"))
    assert perry.warnings == [] and perry.workspaces.reconcile() == []
    assert (state_dir / "state.json").read_text() == before


def test_info_without_an_engine_still_answers(tmp_path):
    engine = engine_with()
    engine.reachable = False
    info = Perry(tmp_path / "state", settings(tmp_path), engine=engine).info()
    assert info["engine"]["reachable"] is False and info["workspaces"] == 0
    assert next(c for c in info["checks"] if c["name"] == "engine")["ok"] is False
