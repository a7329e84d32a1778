"""Moves and clones on in-memory engines: what a failed copy and a crash leave, and what recover() tidies."""

from __future__ import annotations

import pytest

from perry_jupyter.core.engine import DockerError
from perry_jupyter.core.errors import Conflict, InvalidInput
from perry_jupyter.core.transfer import Transfers
from tests.fake_engine import TEST_PREFIX
from tests.unit.test_core_engines import fakes, manager_of  # noqa: F401 (fixture)

HOME, DOCKER = f"{TEST_PREFIX}web-home", f"{TEST_PREFIX}web-docker"


def failing_writes(container: str, command: list[str], **_):
    if container.endswith(".copy-in") and command[0] == "tar":
        return {"exitCode": 2, "stderr": "tar: /to: Cannot write: No space left on device"}
    return None


def test_a_move_whose_copy_fails_leaves_the_workspace_where_it_was_and_running(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    manager.create("web", engine="local")
    fakes["gpu"].on_exec = failing_writes
    with pytest.raises(DockerError, match="No space left on device"):
        Transfers(manager).move("web", "gpu")
    ws = manager.get("web")
    assert (ws["engine"], ws["status"]) == ("local", "running")
    assert manager.store.get_workspace("web").get("moving") is None
    assert fakes["gpu"].containers({}) == [] and fakes["gpu"].volumes == {}
    assert set(fakes["local"].volumes) == {HOME, DOCKER}


def test_a_move_is_refused_with_nothing_changed(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    manager.create("web", engine="local")
    transfers = Transfers(manager, tasks_running=lambda name: name == "busy")
    with pytest.raises(InvalidInput, match="already on engine 'local'"):
        transfers.move("web", "local")
    fakes["gpu"].create_volume(HOME, labels={})
    with pytest.raises(Conflict, match=HOME):
        transfers.move("web", "gpu")
    manager.create("busy", engine="local")
    with pytest.raises(Conflict, match="a task runs in it"):
        transfers.move("busy", "gpu")
    assert manager.get("web")["engine"] == "local" and fakes["local"].running(f"{TEST_PREFIX}web")["state"] == "running"


def test_recover_tidies_the_side_a_crashed_move_did_not_finish(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    manager.create("web", engine="local")
    # Cut short mid-copy: the record still names the source; the destination has half a copy.
    manager.store.patch_workspace("web", moving={"from": "local", "to": "gpu"})
    fakes["gpu"].create_volume(HOME, labels={})
    fakes["gpu"].start_helper(f"{TEST_PREFIX}web.copy-in", "perry-workspace:latest", {HOME: "/to"}, {})
    assert Transfers(manager).recover() == ["web: removed what an interrupted move left on gpu"]
    assert fakes["gpu"].containers({}) == [] and fakes["gpu"].volumes == {}
    assert set(fakes["local"].volumes) == {HOME, DOCKER} and manager.store.get_workspace("web")["moving"] is None


def test_recover_removes_a_crashed_clone_and_unpauses_its_source(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    manager.create("web", engine="local")
    manager.create("copy", engine="local")
    manager.store.patch_workspace("copy", status="creating", cloning="web")
    fakes["local"].pause(f"{TEST_PREFIX}web")
    assert Transfers(manager).recover() == ["copy: removed an interrupted clone of web"]
    assert manager.store.get_workspace("copy") is None and f"{TEST_PREFIX}copy-home" not in fakes["local"].volumes
    assert fakes["local"].running(f"{TEST_PREFIX}web")["state"] == "running"
