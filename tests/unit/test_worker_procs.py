"""perry_worker's process handling, with real processes: recorded pids that were reused, trees."""

from __future__ import annotations

import os
import subprocess
import time

from perry_worker import procs, tasks


def _soon(check, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_recorded_pid_counts_only_with_its_command_line():
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert _soon(lambda: procs.running(sleeper.pid, "sleep 30"))  # once it has exec'd
        assert not procs.running(sleeper.pid, "task _run tsk_0123")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not procs.running(sleeper.pid, "sleep 30")
    assert not procs.running(None, "sleep")


def test_a_task_whose_pid_was_reused_is_over_and_cancelling_it_kills_nobody(tmp_path):
    """After a workspace restart the runner's old pid may belong to another process."""
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        task = {"id": "tsk_00000000000000aa", "agent": "opencode", "prompt": "x", "directory": str(tmp_path),
                "sessionId": None, "model": None, "status": "running", "started": tasks._now(), "ended": None,
                "exitCode": None, "summary": None, "runnerPid": stranger.pid, "error": None}
        tasks._write(str(tmp_path), task)
        assert tasks.cancel(str(tmp_path), task["id"])["status"] == "failed"  # it had ended unseen
        assert stranger.poll() is None, "cancel killed a process that was not the task's"
        assert "ended without a result" in tasks.status(str(tmp_path), task["id"])["error"]
    finally:
        stranger.kill()
        stranger.wait()


def test_end_tree_reaches_commands_in_groups_and_sessions_of_their_own(tmp_path):
    pids = tmp_path / "pids"
    # The root starts one child in its own group, and one in a new session that leaves the tree's
    # group entirely (as OpenCode's bash tool does), then waits.
    own_group = "import os, time; os.setpgid(0, 0); time.sleep(302)"
    root = subprocess.Popen(["sh", "-c", f"setsid sleep 301 & echo $! >> {pids}; "
                                         f"python3 -c '{own_group}' & echo $! >> {pids}; sleep 303"],
                            start_new_session=True)
    assert _soon(lambda: pids.exists() and len(pids.read_text().split()) == 2)
    children = [int(p) for p in pids.read_text().split()]

    def left_the_group():
        table = procs.processes()
        return all(p in table and table[p][1] != root.pid for p in children)
    assert _soon(left_the_group)
    procs.end_tree(root.pid)
    root.wait(5)
    assert all(_soon(lambda: p not in procs.processes()) for p in children)
