"""Limits and live use on the in-memory engine: what the container gets, what a PATCH changes (and
what a bad one does not), the server's defaults, and CPU % from two samples."""

from __future__ import annotations

import time

import pytest

from perry_jupyter.core.errors import InvalidInput
from perry_jupyter.core.limits import parse
from perry_jupyter.core.usage import UsageSampler
from tests.fake_engine import TEST_PREFIX, FakeEngine, make_manager

MIB = 1 << 20


@pytest.mark.parametrize("given, kept", [
    ({"cpus": 2}, {"cpus": 2.0}), ({"cpus": "0.5"}, {"cpus": 0.5}), ({"memory": "4g"}, {"memory": 4 << 30}),
    ({"memory": "512MiB"}, {"memory": 512 * MIB}), ({"memory": 300 * MIB}, {"memory": 300 * MIB}),
    ({"pids": "512"}, {"pids": 512}), ({"cpus": None, "memory": None}, {"cpus": None, "memory": None}),
])
def test_limits_in_the_words_users_write(given, kept):
    assert parse(given) == kept


@pytest.mark.parametrize("given", [{"cpus": 0}, {"cpus": "two"}, {"cpus": True}, {"memory": "5m"},
                                   {"memory": "lots"}, {"memory": 1.5}, {"pids": 8}, {"pids": "x"}])
def test_bad_limits_say_which(given):
    with pytest.raises(InvalidInput, match=next(iter(given))):
        parse(given)


def test_create_gives_the_container_its_limits_and_the_defaults_fill_the_rest(tmp_path):
    engine = FakeEngine()
    manager = make_manager(tmp_path, engine, default_pids=300, default_memory="1g")
    ws = manager.create("one", limits={"cpus": 1.5, "memory": "256m"})
    assert ws["limits"] == {"cpus": 1.5, "memory": 256 * MIB, "pids": 300}
    spec = engine.running(f"{TEST_PREFIX}one")["spec"]
    assert (spec["nano_cpus"], spec["mem_limit"], spec["memswap_limit"], spec["pids_limit"]) == (
        1_500_000_000, 256 * MIB, 256 * MIB, 300)


def test_more_cpus_than_the_engine_has_is_refused_before_anything_is_made(tmp_path):
    engine = FakeEngine()  # 2 CPUs
    manager = make_manager(tmp_path, engine)
    with pytest.raises(InvalidInput, match="cpus 4 is more than the 2 CPUs"):
        manager.create("one", limits={"cpus": 4})
    assert manager.store.workspaces() == {} and engine.containers({}) == []


def test_update_applies_live_and_saves_and_a_bad_field_changes_nothing(tmp_path):
    engine = FakeEngine()
    manager = make_manager(tmp_path, engine)
    manager.create("one", limits={"pids": 100})
    container = engine.running(f"{TEST_PREFIX}one")

    ws = manager.update("one", {"cpus": 1, "memory": "512m"})
    assert ws["limits"] == {"cpus": 1.0, "memory": 512 * MIB, "pids": 100}
    assert container["resources"] == {"NanoCpus": 1_000_000_000, "Memory": 512 * MIB, "MemorySwap": 512 * MIB}

    # Lifting a limit Docker cannot lift live: the whole machine.
    ws = manager.update("one", {"memory": None, "pids": None})
    assert ws["limits"] == {"cpus": 1.0, "memory": None, "pids": None}
    assert container["resources"]["Memory"] == engine.memory and container["resources"]["PidsLimit"] == -1

    before = dict(container["resources"])
    for bad in ({"cpus": 2, "pids": 3}, {"cpus": 2, "idle": 1}, {}, ["cpus"]):
        with pytest.raises(InvalidInput):
            manager.update("one", bad)
    assert container["resources"] == before
    assert manager.get("one")["limits"] == {"cpus": 1.0, "memory": None, "pids": None}


def test_use_comes_from_one_sample_for_every_reader_and_cpu_from_the_second(tmp_path):
    engine = FakeEngine()
    manager = make_manager(tmp_path, engine)
    manager.create("one", limits={"memory": "256m"})
    manager.create("two")
    manager.stop("two")
    sampler = UsageSampler(manager, interval=0.05)
    first = sampler.of("one", wait=5)
    assert first["memoryUsed"] == 100 * MIB and first["memoryLimit"] == 256 * MIB
    # The fake engine's readings: half a CPU's time of two CPUs' between two readings.
    deadline = time.monotonic() + 5
    while (sampler.read().get("one") or {}).get("cpuPercent") is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert sampler.read()["one"]["cpuPercent"] == 50.0
    assert "two" not in sampler.read()
