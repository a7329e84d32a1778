"""Workspace limits (cpus, memory, pids) and live use, on the real engine: what Docker holds, what
the kernel enforces inside the workspace, and what the API and the CLI show."""

from __future__ import annotations

import subprocess

import pytest

from ..conftest import TEST_PREFIX
from .conftest import PERRY, PerryServe, until, until_async

pytestmark = pytest.mark.engine

MIB = 1 << 20

# The workspace's own cgroup files, read inside it, on cgroup v2 and v1 hosts alike. (With
# Docker-in-Docker's `cgroupns=host` the workspace sees the host's tree: /proc/self/cgroup says where it is.)
READ_CGROUP = r"""
own() { awk -F: -v c="$1" '$2 == c {print $3}' /proc/self/cgroup; }
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  d=/sys/fs/cgroup$(own ""); cat $d/memory.max $d/pids.max $d/cpu.max
else
  cat /sys/fs/cgroup/memory$(own memory)/memory.limit_in_bytes /sys/fs/cgroup/pids$(own pids)/pids.max
  d=/sys/fs/cgroup/cpu$(own cpu)$(own cpu,cpuacct); echo "$(cat $d/cpu.cfs_quota_us) $(cat $d/cpu.cfs_period_us)"
fi
"""


async def inside(api, name: str) -> dict:
    """The limits the kernel holds for the workspace, read from its own cgroup files."""
    code, result = await api("POST", f"workspaces/{name}/exec", {"command": ["sh", "-c", READ_CGROUP]})
    assert code == 200 and result["exitCode"] == 0, result
    memory, pids, cpu = result["stdout"].splitlines()
    quota, period = cpu.split()
    return {"memory": None if memory == "max" or int(memory) > 1 << 60 else int(memory),
            "pids": None if pids == "max" else int(pids),
            "cpus": None if quota in ("max", "-1") else int(quota) / int(period)}


def host_config(docker_client, name: str) -> dict:
    h = docker_client.api.inspect_container(f"{TEST_PREFIX}{name}")["HostConfig"]
    return {"cpus": h["NanoCpus"] / 1e9, "memory": h["Memory"], "pids": h["PidsLimit"]}


async def test_limits_at_create_are_held_by_docker_and_enforced_inside(api, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "lim", "cpus": 1, "memory": "256m", "pids": 128})
    assert code == 201, ws
    assert ws["limits"] == {"cpus": 1.0, "memory": 256 * MIB, "pids": 128}
    assert host_config(docker_client, "lim") == {"cpus": 1.0, "memory": 256 * MIB, "pids": 128}
    assert await inside(api, "lim") == {"cpus": 1.0, "memory": 256 * MIB, "pids": 128}

    # Enforced, not only written down: a process that wants more memory than the limit is killed.
    code, hog = await api("POST", "workspaces/lim/exec", {"command": [
        "python3", "-c", "b = bytearray(400 * 1024 * 1024); print('survived')"]})
    assert code == 200 and hog["exitCode"] != 0 and "survived" not in hog["stdout"], hog

    # Changed live: the same container, the kernel's limits at once.
    container_id = ws["containerId"]
    code, changed = await api("PATCH", "workspaces/lim", {"cpus": 0.5, "memory": "512m", "pids": 256})
    assert code == 200, changed
    assert changed["limits"] == {"cpus": 0.5, "memory": 512 * MIB, "pids": 256}
    assert changed["containerId"] == container_id
    assert await inside(api, "lim") == {"cpus": 0.5, "memory": 512 * MIB, "pids": 256}

    # Kept across a stop and a start.
    assert (await api("POST", "workspaces/lim/stop"))[0] == 200
    code, started = await api("POST", "workspaces/lim/start")
    assert code == 200 and started["limits"] == {"cpus": 0.5, "memory": 512 * MIB, "pids": 256}
    assert await inside(api, "lim") == {"cpus": 0.5, "memory": 512 * MIB, "pids": 256}

    # A recreated container (removed behind Perry's back) gets them again from the record.
    docker_client.api.remove_container(f"{TEST_PREFIX}lim", force=True)
    code, recreated = await api("POST", "workspaces/lim/start")
    assert code == 200 and recreated["containerId"] != container_id, recreated
    assert host_config(docker_client, "lim") == {"cpus": 0.5, "memory": 512 * MIB, "pids": 256}

    # Lifting a limit live: no process limit, and Perry says so.
    code, lifted = await api("PATCH", "workspaces/lim", {"pids": None})
    assert code == 200 and lifted["limits"]["pids"] is None, lifted
    assert (await inside(api, "lim"))["pids"] is None


BAD = [({"cpus": "lots"}, "cpus"), ({"cpus": 0}, "cpus"), ({"memory": "1k"}, "memory"),
       ({"memory": "four gigs"}, "memory"), ({"pids": 3}, "pids"), ({"pids": True}, "pids"),
       ({"cpus": 2, "nope": 1}, "nope"), ({}, "fields")]


async def test_bad_limits_are_refused_and_change_nothing(api, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "badlim", "cpus": 1, "pids": 100})
    assert code == 201, ws
    before = host_config(docker_client, "badlim")
    for body, says in BAD:
        code, error = await api("PATCH", "workspaces/badlim", body)
        assert code == 400 and says in error["error"]["message"], (body, error)
        assert host_config(docker_client, "badlim") == before
        assert (await api("GET", "workspaces/badlim"))[1]["limits"] == {"cpus": 1.0, "memory": None, "pids": 100}
        # The same refusal at create, where nothing is made.
        if body:
            code, error = await api("POST", "workspaces", {"name": "badlim2", **body})
            assert code == 400 and says in error["error"]["message"], (body, error)
            assert (await api("GET", "workspaces/badlim2"))[0] == 404


async def test_live_use_of_running_workspaces_and_none_for_stopped(api):
    for name in ("busy", "idle"):
        code, ws = await api("POST", "workspaces", {"name": name, "memory": "300m"})
        assert code == 201, ws
    assert (await api("POST", "workspaces/idle/stop"))[0] == 200
    # Something to measure: one CPU busy for a while.
    code, spin = await api("POST", "workspaces/busy/exec", {"command": [
        "sh", "-c", "timeout 60 sh -c 'while :; do :; done' >/dev/null 2>&1 &"]})
    assert code == 200, spin

    code, busy = await api("GET", "workspaces/busy")
    assert code == 200 and busy["use"]["memoryLimit"] == 300 * MIB, busy
    assert 0 < busy["use"]["memoryUsed"] < 300 * MIB

    async def listed_cpu():
        _, found = await api("GET", "workspaces")
        by_name = {w["name"]: w for w in found["workspaces"]}
        assert by_name["idle"]["use"] is None
        use = by_name["busy"]["use"]
        return use if use and (use["cpuPercent"] or 0) > 20 else None

    await until_async(listed_cpu, timeout=60, interval=0.5)
    code, idle = await api("GET", "workspaces/idle")
    assert code == 200 and idle["use"] is None


def perry(env, *args):
    r = subprocess.run([PERRY, *args], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"perry {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_cli_create_limit_info_and_list(tmp_path, ssh_key, docker_client):
    serve = PerryServe(tmp_path, ssh_key)
    serve.argv.append("--PerryApp.default_pids=300")  # a server default, taken by creates naming none
    serve.start()
    try:
        env = serve.cli_env()
        out = perry(env, "create", "clim", "--cpus", "1", "--memory", "300m")
        assert "Created workspace clim" in out
        assert host_config(docker_client, "clim") == {"cpus": 1.0, "memory": 300 * MIB, "pids": 300}

        info = perry(env, "info", "clim")
        assert "1 CPU, 300 MiB, 300 processes" in info
        assert until(lambda: " / 300 MiB" in perry(env, "info", "clim"), timeout=30)

        out = perry(env, "limit", "clim", "--cpus", "2", "--pids", "none")
        assert "Limited workspace clim" in out
        assert host_config(docker_client, "clim")["cpus"] == 2.0
        assert "2 CPUs, 300 MiB" in perry(env, "info", "clim") and "processes" not in perry(env, "info", "clim")

        listed = until(lambda: (lambda out: out if " / 300 MiB" in out else None)(perry(env, "list")), timeout=30)
        header = listed.splitlines()[0].lower()
        assert "cpu" in header and "memory" in header
    finally:
        serve.stop()
