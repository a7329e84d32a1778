"""The lists' containers from memory (core/container_view.py) on the in-memory engine: no Docker call
once the view follows the engine's events, changes behind Perry's back shown, Perry's own changes
shown at once, a cut stream resynced, and the same list as one asked of Docker every time.
(tests/integration/test_container_view.py does the same on the real engine.)"""

from __future__ import annotations

import threading
import time

import pytest

from perry_jupyter.core.container_view import ContainerViews
from perry_jupyter.core.engines import Engines
from perry_jupyter.core.errors import EngineUnavailable
from tests.fake_engine import TEST_PREFIX, FakeEngine, make_manager, workspace_labels

DEADLINE = 10.0


@pytest.fixture
def engine() -> FakeEngine:
    engine = FakeEngine()
    engine.streams_events = True
    return engine


@pytest.fixture
def manager(tmp_path, engine):
    manager = make_manager(tmp_path, engine)
    yield manager
    manager.views.close()


def box(engine, name: str, state: str = "running") -> str:
    return engine.add_container(f"{TEST_PREFIX}{name}", state=state, labels=workspace_labels(name))


def statuses(manager) -> dict[str, str]:
    return {ws["name"]: ws["status"] for ws in manager.list()}


def until(check, what: str):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        answer = check()
        if answer:
            return answer
        time.sleep(0.02)
    raise AssertionError(f"not within {DEADLINE} s: {what}")


def unreachable(manager) -> bool:
    try:
        manager.list()
    except EngineUnavailable:
        return True
    return False


def following(manager, engine) -> None:
    """Wait until a list costs no engine call: the view follows the engine."""
    def free() -> bool:
        before = engine.api_calls
        manager.list()
        return engine.api_calls == before
    until(free, "a list without a Docker call")


def test_a_followed_engine_lists_without_docker_calls(manager, engine):
    for n in ("a", "b", "c"):
        box(engine, n)
    following(manager, engine)
    before = engine.api_calls
    for _ in range(20):
        assert set(statuses(manager)) == {"a", "b", "c"}
    manager.running_containers()
    assert engine.api_calls == before


def test_changes_behind_perrys_back_show(manager, engine):
    box(engine, "a")
    box(engine, "b")
    following(manager, engine)
    engine.behind_perry(f"{TEST_PREFIX}a", "exited")
    until(lambda: statuses(manager)["a"] == "stopped", "a stopped by hand shows stopped")
    engine.behind_perry(f"{TEST_PREFIX}a", "running")
    until(lambda: statuses(manager)["a"] == "running", "a started by hand shows running")
    engine.behind_perry(f"{TEST_PREFIX}b", None)
    until(lambda: "b" not in statuses(manager), "b removed by hand is gone")
    box(engine, "c")
    until(lambda: statuses(manager).get("c") == "running", "c made by hand shows")


def test_perrys_own_changes_show_in_the_next_list(manager, engine):
    # The events are held back: what the list shows comes from the engine's watchers alone.
    following(manager, engine)
    engine._emit = lambda *a, **k: None
    manager.create("w")
    assert statuses(manager)["w"] == "running"
    manager.stop("w")
    assert statuses(manager)["w"] == "stopped"
    manager.start("w")
    assert statuses(manager)["w"] == "running"
    manager.delete("w")
    assert "w" not in statuses(manager)


def test_a_cut_stream_is_followed_again_and_what_changed_meanwhile_shows(manager, engine):
    box(engine, "a")
    following(manager, engine)
    engine.reachable = False
    engine.cut_events()
    until(lambda: unreachable(manager), "the list says the engine is unreachable")
    # Changed while the engine was away: no event ever tells of it.
    next(c for c in engine.containers_.values() if c["name"] == f"{TEST_PREFIX}a")["state"] = "exited"
    engine.reachable = True
    assert statuses(manager)["a"] == "stopped"  # read from Docker until the view is live again
    following(manager, engine)
    assert statuses(manager)["a"] == "stopped"
    engine.behind_perry(f"{TEST_PREFIX}a", "running")
    until(lambda: statuses(manager)["a"] == "running", "a change after the resync shows")


def test_the_list_is_the_one_docker_gives(tmp_path, manager, engine):
    for n, state in (("up", "running"), ("down", "exited"), ("new", "created"), ("odd", "restarting")):
        box(engine, n, state)
    manager.store.put_workspace("gone", {"name": "gone", "status": "running", "ports": {"ssh": 2650}})
    following(manager, engine)
    uncached_engine = FakeEngine()
    uncached_engine.containers_ = engine.containers_
    uncached = make_manager(tmp_path, uncached_engine)
    assert manager.list() == uncached.list()


def test_an_engine_without_events_is_asked_every_time(tmp_path):
    engine = FakeEngine()  # streams no events
    manager = make_manager(tmp_path, engine)
    box(engine, "a")
    for _ in range(3):
        before = engine.api_calls
        assert statuses(manager) == {"a": "running"}
        assert engine.api_calls == before + 1


def test_an_answer_asked_for_earlier_never_replaces_a_later_one():
    engine = FakeEngine()
    answers = {"old": {"w": {"id": "1", "state": "running"}}, "new": {"w": {"id": "1", "state": "exited"}}}
    asked_old, release_old = threading.Event(), threading.Event()

    def fetch(engine_name, name):
        if threading.current_thread().name == "slow":
            asked_old.set()
            release_old.wait(5)
            return answers["old"]
        return answers["new"]

    views = ContainerViews(Engines(engine=engine), fetch, lambda w: f"{TEST_PREFIX}{w}", TEST_PREFIX)
    view = views._view("local")
    slow = threading.Thread(target=views._one, args=("local", view, "w"), name="slow")
    slow.start()
    asked_old.wait(5)
    views._one("local", view, "w")  # asked later, answered first
    release_old.set()
    slow.join(5)
    assert view.containers["w"]["state"] == "exited"
    views.close()


def test_a_kept_list_follows_the_state_file_the_settings_and_the_containers(manager, engine):
    box(engine, "a")
    manager.reconcile()  # adopts it: a record in the state file
    following(manager, engine)
    assert manager.list()[0]["idleTimeout"] == manager.settings.idle_timeout
    manager.store.patch_workspace("a", idleTimeout=77)
    assert manager.list()[0]["idleTimeout"] == 77
    manager.store.patch_workspace("a", idleTimeout=None)
    manager.list()
    manager.settings.idle_timeout = 55  # as a PATCH of the server's settings does
    assert manager.list()[0]["idleTimeout"] == 55
    engine.behind_perry(f"{TEST_PREFIX}a", "exited")
    until(lambda: manager.list()[0]["status"] == "stopped", "the stop shows in the kept list")


def test_a_restart_behind_perrys_back_makes_the_inner_engine_unknown(manager, engine):
    box(engine, "a")
    following(manager, engine)
    manager.inner_engines.started("a", "ready", lambda: True)
    assert manager.get("a")["dindStatus"] == "ready"
    # Stopped and started again by hand before anyone listed: its inner engine starts anew.
    engine.behind_perry(f"{TEST_PREFIX}a", "exited")
    engine.behind_perry(f"{TEST_PREFIX}a", "running")
    until(lambda: manager.list()[0]["dindStatus"] is None, "the inner engine of a restarted container is unknown")
    assert manager.list()[0]["status"] == "running"


def test_a_stop_older_than_what_perry_was_told_changes_nothing(manager):
    # Perry's own restart: the stop's event may come after the start told the new state.
    before = time.time()
    manager.inner_engines.started("a", "ready", lambda: True)
    manager.inner_engines.died("a", before)
    assert manager.inner_engines.state("a") == "ready"
    manager.inner_engines.died("a", time.time())
    assert manager.inner_engines.state("a") is None


def kept(manager):
    """The kept list once the state file has settled (a file changed within a second is read again)."""
    def settled():
        manager.listing()
        return manager.kept_listing()
    return until(settled, "a list answered from memory")


def test_a_list_nothing_changed_is_known_from_memory_and_every_change_ends_it(tmp_path, manager, engine):
    from perry_jupyter.core.state import StateStore

    for n in ("a", "b"):
        box(engine, n)
    manager.reconcile()
    following(manager, engine)
    serial, workspaces = kept(manager)
    before = engine.api_calls
    assert manager.kept_listing() == (serial, workspaces) == manager.listing()
    assert engine.api_calls == before
    # Another process (a CLI, a second server) changes the state file: the next list reads it.
    StateStore(tmp_path).patch_workspace("a", idleTimeout=77)
    assert manager.kept_listing() is None
    assert {ws["name"]: ws["idleTimeout"] for ws in manager.list()}["a"] == 77
    # A change made with `docker` behind Perry's back.
    serial, _ = kept(manager)
    engine.behind_perry(f"{TEST_PREFIX}b", "exited")
    until(lambda: manager.kept_listing() is None, "the stop ends the kept list")
    assert statuses(manager) == {"a": "running", "b": "stopped"}
    # Perry's own change: known at once, without waiting for its event.
    kept(manager)
    manager.stop("a")
    assert manager.kept_listing() is None
    assert statuses(manager)["a"] == "stopped"
    assert manager.listing()[0] > serial
