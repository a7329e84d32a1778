"""Following a workspace's log and a task's output as server-sent events, on the real engine:
lines arrive as they are written, the stream ends when the workspace stops or the task ends,
and a client that leaves takes its thread and its Docker connection with it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading

import pytest
from docker.constants import DEFAULT_MAX_POOL_SIZE

from ..conftest import TEST_PREFIX
from .agents import start_model
from .conftest import PERRY, until_async

pytestmark = pytest.mark.engine


class Follower:
    """A raw HTTP/1.1 client of one event stream, so the test decides when it leaves."""

    def __init__(self, reader, writer):
        self.reader, self.writer, self.text = reader, writer, ""

    @classmethod
    async def open(cls, port, base_url, auth, path):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((f"GET {base_url}perry/api/{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Authorization: {auth['Authorization']}\r\nConnection: close\r\n\r\n").encode())
        await writer.drain()
        return cls(reader, writer)

    async def until(self, text, timeout=60):
        async def read():
            while text not in self.text:
                chunk = await self.reader.read(65536)
                assert chunk, f"stream closed before {text!r}: {self.text[-2000:]}"
                self.text += chunk.decode("utf-8", "replace")
        await asyncio.wait_for(read(), timeout)

    async def to_end(self, timeout=60):
        async def read():
            while chunk := await self.reader.read(65536):
                self.text += chunk.decode("utf-8", "replace")
        await asyncio.wait_for(read(), timeout)

    def leave(self):
        self.writer.close()


def follow_threads():
    return [t for t in threading.enumerate() if t.name == "perry-follow"]


def docker_connections():
    """This process's open connections to the Docker engine's socket (the engine's side names
    the peer's inode)."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    lines = subprocess.run(["ss", "-xn"], capture_output=True, text=True, check=True).stdout.splitlines()
    return sum(1 for line in lines if "docker.sock " in line and line.split()[7] in mine)


@pytest.fixture
def follow(jp_http_port, jp_base_url, jp_auth_header):
    return lambda path: Follower.open(jp_http_port, jp_base_url, jp_auth_header, path)


async def test_log_lines_arrive_as_written_and_the_stream_ends_when_the_workspace_stops(api, follow, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "tailed"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}tailed")
    stream = await follow("workspaces/tailed/logs?follow=true&tail=50")
    await stream.until("perry: ready")
    assert "Content-Type: text/event-stream" in stream.text
    # The container's own stdout: what `docker logs` shows.
    container.exec_run(["sh", "-c", "echo written-after-the-follow-began > /proc/1/fd/1"], user="root")
    await stream.until("data: written-after-the-follow-began\n")

    code, _ = await api("POST", "workspaces/tailed/stop")
    assert code == 200
    await stream.to_end()
    assert 'event: end\ndata: {"reason": "the workspace stopped"}\n\n' in stream.text
    await until_async(lambda: not follow_threads(), timeout=30)


async def test_a_client_that_leaves_takes_its_thread_and_docker_connection(api, follow):
    code, ws = await api("POST", "workspaces", {"name": "leaver"})
    assert code == 201, ws

    async def follow_and_leave():
        streams = [await follow("workspaces/leaver/logs?follow=true") for _ in range(3)]
        for stream in streams:
            await stream.until("perry: ready")
        assert len(follow_threads()) == 3
        for stream in streams:
            stream.leave()
        await until_async(lambda: not follow_threads(), timeout=30)

    # The engine client keeps a pool of idle connections that other threads of the server (the
    # task poller, the usage sampler) may grow at any moment, but never past its size; a leak
    # grows by three every round, so four rounds leave more than the whole pool could.
    await follow_and_leave()
    connections = docker_connections()
    for _ in range(4):
        await follow_and_leave()
    await until_async(lambda: docker_connections() - connections <= DEFAULT_MAX_POOL_SIZE, timeout=30)
    code, ws = await api("GET", "workspaces/leaver")
    assert ws["status"] == "running"  # leaving changed nothing


async def test_bad_follow_arguments_are_400_and_a_stopped_workspace_409(api):
    code, ws = await api("POST", "workspaces", {"name": "args"})
    assert code == 201, ws
    for params, words in [({"tail": "0"}, "tail must be between 1"), ({"tail": "lots"}, "tail must be a whole number"),
                          ({"since": "yesterday"}, "since must be seconds since the epoch or an ISO 8601"),
                          ({"since": "2026-11-30T03:00:00"}, "time zone"), ({"since": "-5"}, "after 1970"),
                          ({"follow": "maybe"}, "follow must be true or false")]:
        code, err = await api("GET", "workspaces/args/logs", params={"follow": "true", **params})
        assert code == 400 and words in err["error"]["message"], (params, err)
    code, logs = await api("GET", "workspaces/args/logs", params={"since": "2000-01-01T00:00:00Z", "tail": "5"})
    assert code == 200 and "perry: ready" in logs["logs"]
    code, logs = await api("GET", "workspaces/args/logs", params={"since": "4000000000"})
    assert code == 200 and logs["logs"] == ""  # nothing was written in the future
    await api("POST", "workspaces/args/stop")
    code, err = await api("GET", "workspaces/args/logs", params={"follow": "true"})
    assert code == 409 and "not running" in err["error"]["message"]
    code, err = await api("GET", "workspaces/args/tasks/tsk_0000000000000000/output", params={"follow": "true"})
    assert code == 404


async def test_task_output_follows_until_the_task_ends(api, follow, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "taskfollow"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}taskfollow")
    start_model(container, ["The answer is forty-two."], delay=0.5)
    code, task = await api("POST", "workspaces/taskfollow/tasks", {"prompt": "what is the answer?"})
    assert code == 201, task
    stream = await follow(f"workspaces/taskfollow/tasks/{task['id']}/output?follow=true")
    await stream.to_end(timeout=120)
    assert "forty-two" in stream.text
    assert 'event: end\ndata: {"status": "succeeded", "reason": "the task ended"}\n\n' in stream.text
    code, part = await api("GET", f"workspaces/taskfollow/tasks/{task['id']}/output", params={"offset": "0"})
    assert code == 200 and "forty-two" in part["output"] and part["ended"] and part["status"] == "succeeded"
    code, rest = await api("GET", f"workspaces/taskfollow/tasks/{task['id']}/output",
                           params={"offset": str(part["offset"])})
    assert rest["output"] == "" and rest["offset"] == part["offset"]
    code, err = await api("GET", f"workspaces/taskfollow/tasks/{task['id']}/output", params={"offset": "x"})
    assert code == 400 and "offset" in err["error"]["message"]


def test_cli_follows_a_task_and_a_log(served, docker_client):
    env = served

    def perry(*args):
        r = subprocess.run([PERRY, *args], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    perry("create", "clifollow")
    start_model(docker_client.containers.get(f"{TEST_PREFIX}clifollow"), ["Followed from the CLI."])
    task_id = json.loads(perry("dispatch", "clifollow", "say it", "--json"))["id"]
    out = perry("task", "-f", "clifollow", task_id)
    assert f"task {task_id} in clifollow (opencode): succeeded" in out  # the task as it ended, at once
    task = json.loads(perry("task", "clifollow", task_id, "--json"))
    assert task["summary"] and task["summary"] in out  # the agent's words came through the stream

    logs = subprocess.Popen([PERRY, "logs", "-f", "clifollow"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        seen = ""
        while "perry: ready" not in seen:
            line = logs.stdout.readline()
            assert line, seen
            seen += line
        perry("stop", "clifollow")
        rest, _ = logs.communicate(timeout=60)
        assert logs.returncode == 0 and "perry: stopped" in rest
    finally:
        if logs.poll() is None:
            logs.kill()
