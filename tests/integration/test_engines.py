"""One Perry over two real Docker engines: this machine's, and a second machine reached over real SSH.

The second machine is a Perry workspace: it runs its own dockerd and sshd, and the workspace user
is in its docker group, so `ssh://workspace@127.0.0.1:PORT` is a Docker engine on another host as
far as Perry can tell. It has no registry either: the workspace image goes in by `docker save` into
`docker load`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import time

import pexpect
import pytest

from perry_jupyter.app import PerryApp
from perry_jupyter.core.engines import Engines
from perry_jupyter.core.services import Perry

from ..conftest import IMAGE_TAG, SSH_PORTS, TEST_PREFIX
from .agents import CallbackServer, start_model
from .conftest import PERRY, PerryServe, until, until_async
from .test_resume_in_terminal import INTERFACE, wait_for_screen
from .test_terminals import Term

# Inside the suite's prefix (so its cleanup is ours), but not a workspace of the Perry under test.
MACHINE_PREFIX = f"{TEST_PREFIX}m-"
MACHINE = f"{MACHINE_PREFIX}machine"


def machine_docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", MACHINE, "docker", *args], capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def machine(docker_client, workspace_image, ssh_key, tmp_path_factory):
    """The second machine: its SSH address, with the workspace image loaded into its engine."""
    state = tmp_path_factory.mktemp("machine")
    perry = Perry(state, PerryApp(state_dir=str(state), workspace_prefix=MACHINE_PREFIX, image_tag=IMAGE_TAG,
                                  network="perry-test", ssh_port_range=(SSH_PORTS[1] - 4, SSH_PORTS[1]),
                                  ssh_public_keys=[f"{ssh_key}.pub"], git_config=None).core_config())
    try:
        ws = perry.workspaces.create("machine")
        until(lambda: machine_docker("info").returncode == 0, timeout=60)
        address = f"ssh://workspace@127.0.0.1:{ws['ports']['ssh']}"
        # Perry's own copy, over the SSH engine: `docker save` here streamed into `docker load` there.
        copier = Perry(state / "copier", perry.settings,
                       engines={"local": "", "far": {"address": address, "ssh_key": str(ssh_key)}})
        progress = []
        status = copier.copy_image("local", "far", progress=progress.append)
        assert status["present"] and status["upToDate"], status
        assert progress[-1]["message"].endswith("MB copied") and int(progress[-1]["message"].split()[0]) > 100
        assert IMAGE_TAG in machine_docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
        yield address
    finally:
        perry.workspaces.delete("machine")


@pytest.fixture
def engine_down_task_timeout() -> float:
    return 3600.0  # PerryApp's default; a test parametrizes it shorter


@pytest.fixture
def perry_config(perry_config, machine, ssh_key, engine_down_task_timeout):
    return {**perry_config, "engines": {"local": "", "far": {"address": machine, "ssh_key": str(ssh_key)}},
            "engine_down_task_timeout": engine_down_task_timeout}


def far_container(machine, ssh_key, tmp_path, name: str):
    """The SDK's container ``name`` on the second machine's engine, as the test's own client sees it."""
    engine = Engines({"far": {"address": machine, "ssh_key": str(ssh_key)}}, tmp_path / "client").get("far")
    return engine._sdk().containers.get(f"{TEST_PREFIX}{name}")


@contextlib.asynccontextmanager
async def machine_stopped(docker_client):
    """The second machine off for the block (at once, as a power cut: a shutdown would stop its
    workspaces before its engine, which would then answer that they stopped), then on again."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, lambda: docker_client.containers.get(MACHINE).kill())
    try:
        yield
    finally:
        await loop.run_in_executor(None, lambda: docker_client.containers.get(MACHINE).start())
        await loop.run_in_executor(None, lambda: until(lambda: machine_docker("info").returncode == 0, timeout=90))


async def running_task_on_far(api, machine, ssh_key, tmp_path, name: str, hook) -> dict:
    """A task running on a workspace of the second machine, its stand-in model slow to answer."""
    code, ws = await api("POST", "workspaces", {"name": name, "engine": "far"})
    assert code == 201 and ws["engine"] == "far", ws
    start_model(far_container(machine, ssh_key, tmp_path, name), ["Finished late."], delay=120)
    code, task = await api("POST", f"workspaces/{name}/tasks", {"prompt": "take your time", "callback": {"url": hook.url}})
    assert code == 201, task

    async def running():
        code, t = await api("GET", f"workspaces/{name}/tasks/{task['id']}")
        return t if t["status"] == "running" else None
    return await until_async(running)


async def test_workspaces_on_two_engines_and_one_machine_going_away(api, docker_client, jp_ws_fetch, machine,
                                                                     ssh_key, tmp_path):
    code, body = await api("GET", "engines")
    assert code == 200, body
    engines = {e["name"]: e for e in body["engines"]}
    assert engines["far"]["reachable"] and engines["local"]["reachable"], engines
    assert engines["far"]["address"].startswith("ssh://workspace@127.0.0.1:") and engines["far"]["cpus"] >= 1

    code, near = await api("POST", "workspaces", {"name": "near", "engine": "local"})
    assert code == 201, near
    code, far = await api("POST", "workspaces", {"name": "far", "engine": "far"})
    assert code == 201, far
    assert (near["engine"], far["engine"]) == ("local", "far") and far["status"] == "running"

    # The far workspace runs on the second machine's engine, not on this one.
    assert docker_client.containers.list(all=True, filters={"name": f"{TEST_PREFIX}far"}) == []
    assert f"{TEST_PREFIX}far" in machine_docker("ps", "--format", "{{.Names}}").stdout
    code, result = await api("POST", "workspaces/far/exec", {"command": ["sh", "-c", "hostname; id -un; echo hi > f"]})
    assert code == 200 and result["stdout"].split() == ["far", "workspace"], result

    # SSH reaches it on its engine's machine.
    assert far["sshHost"] == "127.0.0.1" and far["sshCommand"].endswith("workspace@127.0.0.1"), far

    # A terminal there: the Docker CLI over SSH, with the host key Perry pinned for that engine.
    term = Term(await jp_ws_fetch("perry", "terminal", "far"))
    assert (await term.read())[0] == "setup"
    await term.type("echo $(hostname)-$(whoami)-$((6*7)); cat f\r")
    await term.until("far-workspace-42")
    await term.until("hi")
    await term.type("exit 4\r")
    assert ["exit", 4] in await term.until_closed()

    # An OpenCode session made there by a task, resumed in a terminal there: OpenCode's own interface.
    far_sdk = far_container(machine, ssh_key, tmp_path, "far")
    start_model(far_sdk, [], default="Resumable answer.")
    code, task = await api("POST", "workspaces/far/tasks", {"prompt": "Say something"})
    assert code == 201, task

    async def ended():
        code, t = await api("GET", f"workspaces/far/tasks/{task['id']}")
        return t if t["status"] not in ("queued", "running") else None
    done = await until_async(ended, timeout=180)
    assert done["status"] == "succeeded" and done["sessionId"], done
    code, resumed = await api("POST", "workspaces/far/terminals", {"session": done["sessionId"]})
    assert code == 201 and resumed["resumes"]["sessionId"] == done["sessionId"], resumed
    tui = Term(await jp_ws_fetch("terminals", "websocket", resumed["name"]))
    await tui.send("set_size", 40, 120)
    try:
        for text in INTERFACE["opencode"]:
            await wait_for_screen(tui, text, timeout=180)
    except AssertionError as e:
        raise AssertionError(f"{e}\nprocesses there: {far_sdk.exec_run(['ps', '-ef']).output.decode()}\n"
                             f"raw: {tui.out[-3000:]!r}") from None
    code, _ = await api("DELETE", f"workspaces/far/terminals/{resumed['name']}")
    assert code == 204

    code, body = await api("GET", "workspaces")
    assert {w["name"]: (w["engine"], w["status"]) for w in body["workspaces"]} == {
        "near": ("local", "running"), "far": ("far", "running")}
    code, body = await api("GET", "engines")
    assert {e["name"]: e["workspaces"] for e in body["engines"]} == {
        "local": {"running": 1, "total": 1}, "far": {"running": 1, "total": 1}}

    # The second machine goes away: the list still answers, this machine's workspace still works.
    docker_client.containers.get(MACHINE).stop(timeout=30)
    code, body = await api("GET", "workspaces")
    assert code == 200, body
    listed = {w["name"]: w for w in body["workspaces"]}
    assert listed["near"]["status"] == "running"
    assert listed["far"]["status"] == "unreachable" and listed["far"]["lastStatus"] == "running"
    assert "'far'" in listed["far"]["error"]
    code, result = await api("POST", "workspaces/near/exec", {"command": ["echo", "still here"]})
    assert code == 200 and result["stdout"] == "still here\n"
    code, error = await api("POST", "workspaces/far/exec", {"command": ["true"]})
    assert code == 503 and "'far'" in error["error"]["message"], error
    code, error = await api("POST", "workspaces/far/terminals")
    assert code == 503 and "'far'" in error["error"]["message"], error
    code, body = await api("GET", "engines")
    assert [e["reachable"] for e in body["engines"] if e["name"] == "far"] == [False]

    # It comes back, and so does its workspace, with its files.
    docker_client.containers.get(MACHINE).start()
    until(lambda: machine_docker("info").returncode == 0, timeout=60)
    code, ws = await api("GET", "workspaces/far")
    deadline = time.monotonic() + 90
    while ws.get("status") == "unreachable" and time.monotonic() < deadline:
        await asyncio.sleep(1)
        code, ws = await api("GET", "workspaces/far")
    assert ws["status"] in ("running", "stopped"), ws
    if ws["status"] == "stopped":
        code, ws = await api("POST", "workspaces/far/start")
        assert code == 200, ws
    code, result = await api("POST", "workspaces/far/exec", {"command": ["cat", "f"]})
    assert code == 200 and result["stdout"] == "hi\n", result

    code, error = await api("DELETE", "engines/far")
    assert code == 409 and "configuration" in error["error"]["message"]
    code, _ = await api("DELETE", "workspaces/far")
    assert code == 204
    code, _ = await api("DELETE", "workspaces/near")
    assert code == 204
    assert f"{TEST_PREFIX}far" not in machine_docker("ps", "-a", "--format", "{{.Names}}").stdout


async def test_a_task_on_a_machine_that_goes_away_calls_back_once_it_is_back(api, docker_client, machine, ssh_key,
                                                                               tmp_path):
    hook = CallbackServer()
    try:
        task = await running_task_on_far(api, machine, ssh_key, tmp_path, "tdown", hook)
        url = f"workspaces/tdown/tasks/{task['id']}"

        async with machine_stopped(docker_client):
            async def noticed():
                code, t = await api("GET", url)
                return t if t.get("engineDown") else None
            kept = await until_async(noticed, timeout=60)
            assert kept["status"] == "running" and kept["engineDown"]["engine"] == "far", kept
            await asyncio.sleep(5)  # the task is followed all along; nothing is called back meanwhile
            code, kept = await api("GET", url)
            assert kept["status"] == "running" and kept["callback"]["attempts"] == 0, kept
            assert hook.calls == []

        # Back: the task is followed again. The machine's stop ended its process, which the
        # workspace now says; the callback goes out once.
        await until_async(hook.delivered, timeout=180)
        code, done = await api("GET", url)
        assert done["status"] == "failed" and not done.get("engineDown") and done["callback"]["delivered"], done
        await asyncio.sleep(3)
        [call] = hook.calls
        assert call["body"]["task"]["id"] == task["id"] and call["body"]["text"].startswith("Failed: "), call
        code, _ = await api("DELETE", "workspaces/tdown")
        assert code == 204
    finally:
        hook.close()


@pytest.mark.parametrize("engine_down_task_timeout", [4.0])
async def test_a_task_whose_engine_stays_away_fails_after_the_timeout(api, docker_client, machine, ssh_key, tmp_path):
    hook = CallbackServer()
    try:
        task = await running_task_on_far(api, machine, ssh_key, tmp_path, "tgone", hook)

        async with machine_stopped(docker_client):
            [call] = await until_async(hook.delivered, timeout=90)
            text = call["body"]["text"]
            assert text.startswith("Failed: engine 'far' was unreachable for more than 4 s"), text
            assert "engine_down_task_timeout" in text, text
            code, failed = await api("GET", f"workspaces/tgone/tasks/{task['id']}")
            assert failed["status"] == "failed" and failed["error"] == text[len("Failed: "):], failed
        code, _ = await api("DELETE", "workspaces/tgone")
        assert code == 204
        assert len(hook.calls) == 1  # its end decided, the task is not followed again
    finally:
        hook.close()


async def test_engines_added_and_removed_at_run_time(api, machine, ssh_key, perry_state_dir):
    code, added = await api("POST", "engines", {"name": "again", "address": machine, "sshKey": str(ssh_key)})
    assert code == 201, added
    code, body = await api("GET", "engines")
    again = [e for e in body["engines"] if e["name"] == "again"]
    assert again and again[0]["reachable"] and not again[0]["configured"], body
    assert "again" in (perry_state_dir / "engines.json").read_text()
    code, error = await api("POST", "engines", {"name": "again", "address": "unix:///nowhere.sock"})
    assert code == 409, error
    code, error = await api("POST", "engines", {"name": "bad", "address": "ftp://host"})
    assert code == 400 and "ftp://host" in error["error"]["message"], error
    code, _ = await api("DELETE", "engines/again")
    assert code == 204
    code, body = await api("GET", "engines")
    assert [e["name"] for e in body["engines"]] == ["local", "far"]


async def test_a_changed_ssh_host_key_marks_the_engine_down_saying_so(api, machine, ssh_key, perry_state_dir):
    code, body = await api("GET", "engines")  # `far` is asked, and its host key pinned
    assert [e["reachable"] for e in body["engines"] if e["name"] == "far"] == [True]
    port = machine.rsplit(":", 1)[1]
    pinned = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{port}", "-f",
                             str(perry_state_dir / "engines" / "known_hosts")], capture_output=True, text=True)
    assert pinned.returncode == 0 and "ssh-ed25519" in pinned.stdout, pinned
    # The machine is "reinstalled": new host keys, and sshd (re-executed by SIGHUP) serves them.
    subprocess.run(["docker", "exec", MACHINE, "sh", "-c",
                    "rm -f /etc/ssh/ssh_host_*key* && ssh-keygen -A -q && kill -HUP $(cat /run/sshd.pid)"], check=True)
    old_key = pinned.stdout.split("ssh-ed25519", 1)[1].split()[0]

    def serves_the_new_key() -> bool:  # sshd re-executing resets the connections that come meanwhile
        scan = subprocess.run(["ssh-keyscan", "-T", "5", "-t", "ed25519", "-p", port, "127.0.0.1"],
                              capture_output=True, text=True)
        return "ssh-ed25519" in scan.stdout and old_key not in scan.stdout
    await asyncio.get_running_loop().run_in_executor(None, lambda: until(serves_the_new_key, timeout=30, interval=0.2))
    # A new engine at that address opens new connections (the pinned key is the same file's).
    code, added = await api("POST", "engines", {"name": "same", "address": machine, "sshKey": str(ssh_key)})
    assert code == 201, added
    code, body = await api("GET", "engines")
    same = [e for e in body["engines"] if e["name"] == "same"][0]
    assert not same["reachable"] and "SSH host key" in same["error"] and "known_hosts" in same["error"], same
    code, error = await api("POST", "workspaces", {"name": "nope", "engine": "same"})
    assert code == 503 and "SSH host key" in error["error"]["message"], error


def test_the_cli_adds_an_engine_creates_there_and_lists_it(machine, ssh_key, tmp_path):
    serve = PerryServe(tmp_path, ssh_key).start()
    try:
        env = serve.cli_env()

        def perry(*args):
            r = subprocess.run([PERRY, *args], env=env, capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, f"perry {' '.join(args)}: {r.stdout}\n{r.stderr}"
            return r.stdout

        assert "Added engine far" in perry("engines", "add", "far", machine, "--ssh-key", str(ssh_key))
        table = perry("engines")
        assert re.search(r"far\s+ssh://workspace@127\.0\.0\.1:\d+\s+yes", table), table
        perry("create", "clifar", "--engine", "far")
        listing = perry("list")
        assert re.search(r"clifar\s+running\s+far", listing), listing
        assert perry("exec", "clifar", "--", "hostname") == "clifar\n"
        # `perry shell` there, in a real pseudo-terminal.
        shell = pexpect.spawn(PERRY, ["shell", "clifar"], env=env, encoding="utf-8", timeout=60, dimensions=(24, 80))
        try:
            shell.expect(r"\$ $")
            shell.sendline("echo on-$(hostname)-$((6*7))")
            shell.expect("on-clifar-42")
            shell.sendline("exit 5")
            shell.expect(pexpect.EOF)
        finally:
            shell.close(force=True)
        assert shell.exitstatus == 5, shell.before
        r = subprocess.run([PERRY, "engines", "remove", "far"], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "holds 1 workspace" in r.stdout + r.stderr
        perry("delete", "clifar", "--yes")
        assert "Removed engine far" in perry("engines", "remove", "far")
    finally:
        serve.stop()
