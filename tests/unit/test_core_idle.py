"""Idle settings on the in-memory engine: PATCH's checks change nothing on bad input, why a workspace
stopped, and which stopped workspaces wake on use (the idle check itself runs on the real engine:
tests/integration/test_idle.py)."""

from __future__ import annotations

import click
import pytest

from perry_jupyter.cli.commands import _parse_duration
from perry_jupyter.core.activity import Activity
from perry_jupyter.core.errors import Conflict, InvalidInput
from tests.fake_engine import FakeEngine, make_manager


@pytest.fixture
def manager(tmp_path):
    return make_manager(tmp_path, FakeEngine())


@pytest.mark.parametrize("changes, words", [
    ({"idleTimeout": -1}, "idleTimeout must be"), ({"idleTimeout": "60"}, "idleTimeout must be"),
    ({"idleTimeout": True}, "idleTimeout must be"), ({"idleTimeout": 1.5}, "idleTimeout must be"),
    ({"idleTimeout": 60, "colour": "red"}, r"unknown field\(s\) colour"), ({}, "give the fields"), ([], "give the fields"),
])
def test_bad_changes_are_refused_and_change_nothing(manager, changes, words):
    manager.create("one", idle_timeout=120)
    before = manager.store.read()
    with pytest.raises(InvalidInput, match=words):
        manager.update("one", changes)
    assert manager.store.read() == before


def test_an_update_is_kept_and_announced(manager):
    manager.create("one")
    assert manager.get("one")["idleTimeout"] == 0  # the server's default: never
    seen = []
    manager.events.subscribe(seen.append)
    assert manager.update("one", {"idleTimeout": 900})["idleTimeout"] == 900
    assert manager.store.get_workspace("one")["idleTimeout"] == 900
    assert [e["data"]["idleTimeout"] for e in seen if e["type"] == "workspace.updated"] == [900]
    # null: back to the server's default.
    assert manager.update("one", {"idleTimeout": None})["idleTimeout"] == 0


def test_a_bad_idle_timeout_at_create_creates_nothing(manager):
    with pytest.raises(InvalidInput, match="idleTimeout must be"):
        manager.create("one", idle_timeout=-5)
    assert manager.store.workspaces() == {}


def test_only_an_idle_stopped_workspace_wakes(tmp_path):
    manager = make_manager(tmp_path, FakeEngine())
    manager.create("one")
    ws = manager.stop("one")
    assert (ws["status"], ws["stopReason"]) == ("stopped", "user")
    assert not manager.wakes("one") and manager.wake("one") is False
    with pytest.raises(Conflict, match="not running"):
        manager.woken("one", lambda: manager._require_running("one"))

    assert manager.stop("one", reason="idle")["stopReason"] == "idle"
    assert manager.woken("one", lambda: manager.get("one")["status"]) == "stopped"  # nothing refused: no wake
    manager.woken("one", lambda: manager._require_running("one"))
    ws = manager.get("one")
    assert (ws["status"], ws["stopReason"]) == ("running", None)

    off = make_manager(tmp_path / "off", FakeEngine(), auto_start=False)
    off.create("two")
    off.stop("two", reason="idle")
    assert not off.wakes("two")


def test_activity_uses_end_once_and_keep_the_latest_time():
    clock = iter([10.0, 20.0, 30.0, 5.0])
    activity = Activity(clock=lambda: next(clock))
    key = activity.begin("one")
    assert activity.busy("one") and activity.last("one") == 10.0
    activity.end(key)
    activity.end(key)  # a handler's finish and its connection's close both end it
    assert not activity.busy("one") and activity.last("one") == 20.0
    activity.touch("one", at=15.0)  # an older report (a tty's time) never moves it back
    assert activity.last("one") == 20.0


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("off", 0), ("0", 0)])
def test_idle_timeout_durations(text, seconds):
    assert _parse_duration(None, None, text) == seconds


@pytest.mark.parametrize("text", ["soon", "1.5h", "-3m", "m", ""])
def test_bad_durations(text):
    with pytest.raises(click.BadParameter, match="not a duration"):
        _parse_duration(None, None, text)
