"""The per-workspace operation registry: refuse at once, name the holder, hand the claim on."""

from __future__ import annotations

import threading

import pytest

from perry_jupyter.core.errors import Conflict, InvalidInput
from perry_jupyter.core.operations import WorkspaceOperations


def test_a_second_operation_is_refused_at_once_naming_the_first():
    ops = WorkspaceOperations()
    with ops.hold("alpha", "stop"):
        with pytest.raises(Conflict) as refused:
            with ops.hold("alpha", "start"):
                pass
        assert (refused.value.status, refused.value.code) == (409, "busy")
        assert refused.value.message.startswith("workspace 'alpha' is busy: stop in progress")
        with ops.hold("beta", "start"):  # other workspaces go on
            pass
    with ops.hold("alpha", "start"):  # released once done
        pass


def test_a_bad_name_is_invalid_even_while_it_is_asked_for_twice():
    ops = WorkspaceOperations()
    for _ in range(2):
        with pytest.raises(InvalidInput):
            with ops.hold("Bad/Name", "start"):
                pass


def test_released_when_the_operation_fails():
    ops = WorkspaceOperations()
    with pytest.raises(RuntimeError):
        with ops.hold("alpha", "create"):
            raise RuntimeError("docker went away")
    with ops.hold("alpha", "delete"):
        pass


def test_a_claim_is_handed_on_and_stays_held_by_its_owner():
    ops = WorkspaceOperations()
    with ops.hold("alpha", "delete") as claim:
        with ops.hold("alpha", "delete", claim) as same:
            assert same is claim
        # The inner use did not release it.
        with pytest.raises(Conflict):
            with ops.hold("alpha", "start"):
                pass
        # A claim for another workspace is no pass.
        with ops.hold("beta", "stop") as other:
            with pytest.raises(Conflict):
                with ops.hold("alpha", "stop", other):
                    pass


def test_only_one_of_many_racing_threads_gets_it():
    ops = WorkspaceOperations()
    barrier, all_refused, outcomes = threading.Barrier(8), threading.Event(), []

    def race():
        barrier.wait()
        try:
            with ops.hold("alpha", "start"):
                outcomes.append("ran")
                all_refused.wait(5)  # held until every other thread has tried
        except Conflict:
            outcomes.append("busy")
            if outcomes.count("busy") == 7:
                all_refused.set()

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["busy"] * 7 + ["ran"]
