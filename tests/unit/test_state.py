import json
import multiprocessing
import os
import time

import pytest

from perry_jupyter.core.errors import PerryError
from perry_jupyter.core.state import SETTLED_NS, StateStore


def _bump(state_dir: str, who: str, count: int) -> None:
    store = StateStore(state_dir)
    for i in range(count):
        with store.transaction() as data:
            counters = data.setdefault("counters", {})
            counters[who] = counters.get(who, 0) + 1
            counters["total"] = counters.get("total", 0) + 1


def test_two_processes_500_updates_each_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_bump, args=(str(tmp_path), who, 500)) for who in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    counters = StateStore(tmp_path).read()["counters"]
    assert counters == {"a": 500, "b": 500, "total": 1000}


def test_missing_file_reads_as_empty_and_is_created_on_first_change(tmp_path):
    store = StateStore(tmp_path / "nested")
    assert store.read()["workspaces"] == {}
    store.put_workspace("alpha", {"name": "alpha", "status": "running"})
    assert json.loads((tmp_path / "nested" / "state.json").read_text())["workspaces"]["alpha"]["status"] == "running"


def test_failed_transaction_changes_nothing(tmp_path):
    store = StateStore(tmp_path)
    store.put_workspace("alpha", {"status": "running"})
    before = store.path.read_bytes()
    with pytest.raises(RuntimeError):
        with store.transaction() as data:
            data["workspaces"]["alpha"]["status"] = "stopped"
            data["workspaces"]["beta"] = {}
            raise RuntimeError("boom")
    assert store.path.read_bytes() == before


def test_corrupt_state_is_reported_and_never_overwritten(tmp_path):
    store = StateStore(tmp_path)
    store.path.write_text("{not json")
    with pytest.raises(PerryError) as e:
        with store.transaction() as data:
            data["workspaces"]["x"] = {}
    assert "not valid JSON" in e.value.message and str(store.path) in e.value.message
    assert store.path.read_text() == "{not json"


def test_no_temp_files_left_behind(tmp_path):
    store = StateStore(tmp_path)
    for i in range(20):
        store.put_workspace(f"w{i}", {"i": i})
    leftovers = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert leftovers == []
    assert len(store.workspaces()) == 20


def test_a_truncated_state_file_is_moved_aside_and_its_last_good_copy_restored(tmp_path):
    store = StateStore(tmp_path)
    store.put_workspace("alpha", {"status": "running"})
    store.put_workspace("beta", {"status": "stopped"})
    damaged = store.path.read_bytes()[:40]
    store.path.write_bytes(damaged)

    fresh = StateStore(tmp_path)  # as at the next start
    warning = fresh.recover()
    assert set(fresh.workspaces()) == {"alpha", "beta"}
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("state.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    assert "not valid JSON" in warning and aside[0].name in warning and "last good copy" in warning
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    assert fresh.recover() is None  # repaired once, quiet after


def test_without_a_good_copy_a_damaged_file_is_still_moved_aside_and_perry_starts_empty(tmp_path):
    store = StateStore(tmp_path)
    store.path.write_text("[1, 2]")
    warning = store.recover()
    assert "not a JSON object" in warning and "no usable good copy" in warning
    assert store.workspaces() == {}
    assert [p.read_text() for p in tmp_path.iterdir() if ".corrupt-" in p.name] == ["[1, 2]"]
    store.put_workspace("alpha", {"status": "running"})
    assert StateStore(tmp_path).workspaces() == {"alpha": {"status": "running"}}


def test_a_state_file_from_before_good_copies_gets_one_at_start(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"version": 1, "workspaces": {"old": {"status": "running"}}}))
    store = StateStore(tmp_path)
    assert store.recover() is None
    store.path.write_text("")
    assert store.recover() is not None and set(store.workspaces()) == {"old"}


def test_an_edit_in_place_of_the_same_size_and_times_is_read(tmp_path):
    # The reads skip a settled file whose status has not changed: an editor's in-place write that
    # keeps its size and even puts its times back is still seen.
    store = StateStore(tmp_path)
    with store.transaction() as data:
        data["workspaces"]["a"] = {"idleTimeout": 10}
    path = store.path
    settled = os.stat(path).st_mtime_ns - 5_000_000_000
    os.utime(path, ns=(settled, settled))
    time.sleep(SETTLED_NS / 1e9 + 0.2)  # a file changed within this is read at every look
    assert store.get_workspace("a")["idleTimeout"] == 10
    assert store.file.known_text() == (True, path.read_text())  # kept: no read until it changes
    text = path.read_text().replace('"idleTimeout": 10', '"idleTimeout": 20')
    with open(path, "r+") as f:  # the same inode, the same size
        f.write(text)
    os.utime(path, ns=(settled, settled))
    assert store.get_workspace("a")["idleTimeout"] == 20
