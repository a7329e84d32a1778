"""Moving a workspace between two real Docker engines: this machine's, and a second machine reached
over real SSH (the `machine` of test_engines.py: a Perry workspace running its own dockerd and sshd).

What must survive a move is what a user keeps in a workspace: a file of the home, and an image in
its own Docker engine (its layers live in overlay2 on the workspace's Docker volume)."""

from __future__ import annotations

import asyncio
import json

from ..conftest import TEST_PREFIX
from .conftest import until, until_async
from .test_engines import MACHINE, engine_down_task_timeout, machine, machine_docker, perry_config  # noqa: F401 (fixtures)

# A one-file image made inside the workspace (nothing can be pulled), tagged twice.
INNER_IMAGE = ("until docker info >/dev/null 2>&1; do sleep 0.5; done; mkdir -p /tmp/img && echo inner > /tmp/img/hello"
               " && tar -C /tmp/img -c . | docker import - tiny:1 >/dev/null && docker tag tiny:1 tiny:tagged")
# The image's file, read back from its layer: what `docker run` would see, without a shell in the image.
READ_INNER = ("until docker info >/dev/null 2>&1; do sleep 0.5; done; docker images --format '{{.Repository}}:{{.Tag}}'"
              " | sort; docker save tiny:tagged | tar -xO --wildcards '*.tar' | tar -xO --wildcards '*hello'")


def events(body) -> list[dict]:
    assert isinstance(body, bytes), body
    return [json.loads(line) for line in body.splitlines() if line.strip()]


async def exec_in(api, name: str, script: str) -> str:
    code, result = await api("POST", f"workspaces/{name}/exec", {"command": ["bash", "-c", script]})
    assert code == 200 and result["exitCode"] == 0, result
    return result["stdout"]


def local_objects(docker_client, name: str) -> list[str]:
    containers = [c.name for c in docker_client.containers.list(all=True, filters={"name": f"{TEST_PREFIX}{name}"})]
    volumes = [v.name for v in docker_client.volumes.list(filters={"name": f"{TEST_PREFIX}{name}"})]
    return sorted(n for n in containers + volumes if n.startswith(f"{TEST_PREFIX}{name}"))


def far_objects(name: str) -> list[str]:
    found = machine_docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    found += machine_docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    return sorted(n for n in found if n.startswith(f"{TEST_PREFIX}{name}"))


async def test_a_workspace_moves_to_the_other_machine_and_back_with_its_home_and_its_images(api, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "mover", "engine": "local"})
    assert code == 201, ws
    try:
        await exec_in(api, "mover", "echo 'kept across machines' > ~/note.txt; " + INNER_IMAGE)

        # Refused with nothing changed: no such engine, the engine it is on, no engine, no such workspace.
        for body, status, words in (({"engine": "nowhere"}, 400, "no engine 'nowhere'"),
                                    ({"engine": "local"}, 400, "already on engine 'local'"),
                                    ({}, 400, "engine must be"),
                                    ({"engine": "far", "colour": 1}, 400, "unknown field")):
            code, error = await api("POST", "workspaces/mover/move", body)
            assert code == status and words in error["error"]["message"], (body, error)
        code, error = await api("POST", "workspaces/ghost/move", {"engine": "far"})
        assert code == 404, error
        code, ws = await api("GET", "workspaces/mover")
        assert (ws["engine"], ws["status"]) == ("local", "running"), ws

        # Two moves at once: one moves it, the other is refused as busy.
        first, second = await asyncio.gather(api("POST", "workspaces/mover/move", {"engine": "far"}),
                                             api("POST", "workspaces/mover/move", {"engine": "far"}))
        (code, body), (refused, error) = sorted([first, second], key=lambda r: r[0])
        assert code == 200 and refused == 409 and error["error"]["code"] == "busy", (first, second)
        progress = events(body)
        assert progress[-1]["stage"] == "done", progress
        moved = progress[-1]["workspace"]
        assert (moved["engine"], moved["status"]) == ("far", "running"), moved
        copying = [e for e in progress if e.get("message", "").startswith(f"copying {TEST_PREFIX}mover-home")]
        assert copying and copying[-1]["step"] == copying[-1]["steps"], progress

        # It is on the other machine now, with its home and its images, and gone from here.
        assert await exec_in(api, "mover", "hostname; cat ~/note.txt") == "mover\nkept across machines\n"
        assert await exec_in(api, "mover", READ_INNER) == "tiny:1\ntiny:tagged\ninner\n"
        assert f"{TEST_PREFIX}mover" in machine_docker("ps", "--format", "{{.Names}}").stdout.split()
        assert local_objects(docker_client, "mover") == []

        # And back.
        code, body = await api("POST", "workspaces/mover/move", {"engine": "local"})
        assert code == 200 and events(body)[-1]["workspace"]["engine"] == "local", body
        assert await exec_in(api, "mover", "cat ~/note.txt; " + READ_INNER) == \
            "kept across machines\ntiny:1\ntiny:tagged\ninner\n"
        assert far_objects("mover") == []
        assert local_objects(docker_client, "mover") == [f"{TEST_PREFIX}mover", f"{TEST_PREFIX}mover-docker",
                                                         f"{TEST_PREFIX}mover-home"]
    finally:
        await api("DELETE", "workspaces/mover")


async def test_a_move_cut_short_leaves_the_workspace_where_it_was(api, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "stay", "engine": "local"})
    assert code == 201, ws
    try:
        # Enough in the home that the copy is still going when the other machine goes away.
        await exec_in(api, "stay", "echo 'still here' > ~/note.txt; head -c 400000000 /dev/urandom > ~/big")

        # A name clash on the destination: refused before anything is touched.
        assert machine_docker("volume", "create", f"{TEST_PREFIX}stay-home").returncode == 0
        code, error = await api("POST", "workspaces/stay/move", {"engine": "far"})
        assert code == 409 and f"{TEST_PREFIX}stay-home" in error["error"]["message"], error
        assert machine_docker("volume", "rm", f"{TEST_PREFIX}stay-home").returncode == 0
        code, ws = await api("GET", "workspaces/stay")
        assert (ws["engine"], ws["status"]) == ("local", "running"), ws

        # The other machine goes away in the middle of the copy.
        move = asyncio.ensure_future(api("POST", "workspaces/stay/move", {"engine": "far"}))
        await until_async(lambda: f"{TEST_PREFIX}stay.copy-in" in machine_docker(
            "ps", "--format", "{{.Names}}").stdout, timeout=120)
        docker_client.containers.get(MACHINE).stop(timeout=30)
        code, body = await move
        assert code == 200 and events(body)[-1]["stage"] == "error", body
        error = events(body)[-1]["error"]
        assert "'far'" in error["message"], error

        # The workspace is where it was, running again, whole.
        code, ws = await api("GET", "workspaces/stay")
        assert (ws["engine"], ws["status"]) == ("local", "running"), ws
        assert await exec_in(api, "stay", "cat ~/note.txt; stat -c %s ~/big") == "still here\n400000000\n"

        # The machine comes back: what the move had made there is removed.
        docker_client.containers.get(MACHINE).start()
        until(lambda: machine_docker("info").returncode == 0, timeout=60)
        await until_async(lambda: far_objects("stay") == [], timeout=180, interval=1)
    finally:
        await api("DELETE", "workspaces/stay")
