"""Workspace terminals through Perry's WebSocket and Jupyter's own terminal machinery."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess

import pytest
import tornado.httpclient

from ..conftest import TEST_PREFIX

pytestmark = pytest.mark.engine


class Term:
    """A terminado-protocol client over a tornado WebSocket."""

    def __init__(self, ws):
        self.ws = ws
        self.out = ""
        self.messages: list = []

    async def send(self, *msg):
        await self.ws.write_message(json.dumps(list(msg)))

    async def type(self, text: str):
        await self.send("stdin", text)

    async def read(self, timeout: float = 60):
        msg = await asyncio.wait_for(self.ws.read_message(), timeout)
        if msg is None:
            return None
        msg = json.loads(msg)
        self.messages.append(msg)
        if msg[0] == "stdout":
            self.out += msg[1]
        return msg

    async def until(self, text: str, timeout: float = 60) -> str:
        deadline = asyncio.get_running_loop().time() + timeout
        while text not in self.out:
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"{text!r} never came; got {self.out[-500:]!r}"
            try:
                msg = await self.read(left)
            except asyncio.TimeoutError:
                raise AssertionError(f"{text!r} never came; got {self.out[-500:]!r}") from None
            assert msg is not None, f"socket closed before {text!r}; got {self.out[-500:]!r}"
        return self.out

    async def until_closed(self, timeout: float = 30) -> list:
        while True:
            msg = await self.read(timeout)
            if msg is None:
                return self.messages


async def make_workspace(api):
    code, ws = await api("POST", "workspaces", {"name": "term"})
    assert code == 201, ws
    return ws


async def open_term(jp_ws_fetch, workspace="term", **params) -> Term:
    term = Term(await jp_ws_fetch("perry", "terminal", workspace, params=params))
    assert (await term.read())[0] == "setup"
    return term


def docker_exec_processes(container: str) -> list[str]:
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in ps if "docker" in line and " exec " in line and container in line]


async def test_shell_runs_inside_the_workspace_as_the_user(jp_ws_fetch, api):
    await make_workspace(api)
    term = await open_term(jp_ws_fetch)
    await term.send("set_size", 33, 101)
    await term.type("echo $((6*7)) $(whoami) $(pwd) $TERM $(hostname)\r")
    await term.until("42 workspace /home/workspace xterm-256color term")
    await term.type("stty size\r")
    await term.until("33 101")
    await term.type("echo \"<<$(echo 'héllo ✓ 日本')>>\"; locale charmap\r")
    await term.until("<<héllo ✓ 日本>>")
    await term.until("UTF-8")
    await term.type("exit 3\r")
    messages = await term.until_closed()
    assert ["exit", 3] in messages and messages[-1] == ["disconnect", 1]


async def test_20_mb_of_output_arrives_complete_and_in_order(jp_ws_fetch, api):
    await make_workspace(api)
    code, result = await api("POST", "workspaces/term/exec", {"command": [
        "sh", "-c", "head -c 15000000 /dev/urandom > /tmp/r && base64 /tmp/r | sha256sum"]})
    expected = result["stdout"].split()[0]
    term = await open_term(jp_ws_fetch)
    await term.type("echo BEGIN-MARK; base64 /tmp/r; echo END-MARK\r")
    out = await term.until("\nEND-MARK\r\n", timeout=300)
    # The output starts after the echoed command line (and bash's bracketed-paste escape).
    body = re.split(r"(?<=[\r\n])BEGIN-MARK\r\n", out, maxsplit=1)[1].split("END-MARK\r\n", 1)[0]
    assert len(body) > 20_000_000
    assert hashlib.sha256(body.replace("\r\n", "\n").encode()).hexdigest() == expected


async def test_a_paste_larger_than_the_pty_holds_arrives_complete_and_in_order(jp_ws_fetch, api):
    # The program reads nothing for a while: the pty fills, and the rest of the paste waits in
    # the server (never blocking it) until there is room, in the order it was typed.
    await make_workspace(api)
    term = await open_term(jp_ws_fetch)
    pieces = [hashlib.sha256(str(i).encode()).hexdigest() * 4096 for i in range(8)]  # 8 x 256 kB
    paste = "".join(pieces)
    await term.type(f"stty raw -echo; echo PASTE''-READY; sleep 3; head -c {len(paste)} | sha256sum\r")
    await term.until("PASTE-READY")
    for piece in pieces:
        await term.type(piece)
    # While the paste waits, the server still answers.
    code, _ = await api("GET", "workspaces/term")
    assert code == 200
    await term.until(f"{hashlib.sha256(paste.encode()).hexdigest()}  -", timeout=120)


async def test_two_clients_share_a_terminal_and_closing_leaves_no_process(jp_ws_fetch, api, docker_client):
    await make_workspace(api)
    container = docker_client.containers.get(f"{TEST_PREFIX}term")

    def shells() -> int:  # login shells of the workspace user inside the container
        return len(container.exec_run(["pgrep", "-u", "workspace", "-x", "bash"]).output.split())

    before = shells()
    code, created = await api("POST", "workspaces/term/terminals")
    assert code == 201 and created["workspace"] == "term"
    name = created["name"]
    first = await open_term(jp_ws_fetch, terminal=name)
    await first.until("$ ")  # the shell is up
    second = await open_term(jp_ws_fetch, terminal=name)
    code, listing = await api("GET", "workspaces/term/terminals")
    assert [(t["name"], t["clients"]) for t in listing["terminals"]] == [(name, 2)]
    await first.type("echo shared-$((20+3))\r")
    await first.until("shared-23")
    await second.until("shared-23")
    # The pty takes the smallest size of its clients.
    await first.send("set_size", 40, 120)
    await second.send("set_size", 30, 90)
    # The two sockets' set_size messages race each other: ask until the pty has settled.
    for _ in range(50):
        await first.type("stty size\r")
        try:
            await first.until("30 90", timeout=0.5)
            break
        except AssertionError:
            continue
    assert "30 90" in first.out

    assert docker_exec_processes(container.name)
    first.ws.close()
    second.ws.close()
    code, _ = await api("DELETE", f"workspaces/term/terminals/{name}")
    assert code == 204
    for _ in range(100):
        if not docker_exec_processes(container.name):
            break
        await asyncio.sleep(0.1)
    assert docker_exec_processes(container.name) == []
    assert shells() == before  # the shell inside the container ended too
    code, listing = await api("GET", "workspaces/term/terminals")
    assert listing["terminals"] == []


async def test_jupyter_terminal_websocket_reaches_the_workspace(jp_ws_fetch, jp_fetch, api, docker_client):
    await make_workspace(api)
    code, created = await api("POST", "workspaces/term/terminals")
    running = json.loads((await jp_fetch("api", "terminals")).body)
    assert created["name"] in [t["name"] for t in running]
    term = Term(await jp_ws_fetch("terminals", "websocket", created["name"]))
    await term.type("echo jupyter-$(hostname)\r")
    await term.until("jupyter-term")
    # Closed through Jupyter's own API (as the culler does): the shell inside ends too.
    container = docker_client.containers.get(f"{TEST_PREFIX}term")
    await jp_fetch("api", "terminals", created["name"], method="DELETE")
    for _ in range(50):
        if container.exec_run(["pgrep", "-u", "workspace", "-x", "bash"]).exit_code != 0:
            break
        await asyncio.sleep(0.1)
    assert container.exec_run(["pgrep", "-u", "workspace", "-x", "bash"]).exit_code != 0


async def test_stopping_closes_terminals_and_tells_clients(jp_ws_fetch, api):
    await make_workspace(api)
    term = await open_term(jp_ws_fetch)
    await term.type("echo ready\r")
    await term.until("ready")
    code, _ = await api("POST", "workspaces/term/stop")
    assert code == 200
    messages = await term.until_closed()
    assert "[perry] workspace term is stopping" in term.out
    assert messages[-1] == ["disconnect", 1]
    code, listing = await api("GET", "workspaces/term/terminals")
    assert listing["terminals"] == []
    # A stopped workspace gets no terminal, neither by REST nor by WebSocket.
    code, err = await api("POST", "workspaces/term/terminals")
    assert code == 409 and "not running" in err["error"]["message"]
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_ws_fetch("perry", "terminal", "term")
    assert e.value.code == 409


async def test_unknown_workspace_gets_404(api, jp_ws_fetch):
    code, err = await api("POST", "workspaces/ghost/terminals")
    assert code == 404
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_ws_fetch("perry", "terminal", "ghost")
    assert e.value.code == 404


async def test_restored_layout_never_becomes_a_host_shell(jp_fetch, jp_ws_fetch, api):
    await make_workspace(api)
    # JupyterLab restores a terminal tab whose terminal is gone by POSTing its old name.
    r = await jp_fetch("api", "terminals", method="POST", body=json.dumps({"name": "perry_term_7"}))
    assert json.loads(r.body)["name"] == "perry_term_7"
    term = Term(await jp_ws_fetch("terminals", "websocket", "perry_term_7"))
    await term.type("echo restored-in-$(hostname)-as-$(whoami)\r")
    await term.until("restored-in-term-as-workspace")

    # The workspace of that name is gone: the terminal says so and closes, no host shell.
    r = await jp_fetch("api", "terminals", method="POST", body=json.dumps({"name": "perry_gone_box_1"}))
    term = Term(await jp_ws_fetch("terminals", "websocket", "perry_gone_box_1"))
    messages = await term.until_closed()
    assert "[perry] workspace 'gone-box' is gone" in term.out
    assert messages[-1] == ["disconnect", 1]


async def test_resuming_an_unknown_session_or_an_agent_the_image_lacks_is_refused(api, docker_client):
    from tests.fixtures.worker_homes import CLAUDE_P, CLAUDE_PROJECT, FIXTURES

    from .agents import _tar

    await make_workspace(api)
    code, err = await api("POST", "workspaces/term/terminals", {"session": "ses_nobodyhasit"})
    assert code == 404 and "has no session 'ses_nobodyhasit'" in err["error"]["message"], err
    code, err = await api("POST", "workspaces/term/terminals", {"session": "x; rm -rf ~"})
    assert code == 400 and "invalid session id" in err["error"]["message"], err
    code, err = await api("POST", "workspaces/term/terminals", {"agent": "claude"})
    assert code == 400 and "give `session` too" in err["error"]["message"], err
    code, err = await api("POST", "workspaces/term/terminals", {"session": "ses_1", "agent": "vim"})
    assert code == 400 and "unknown agent 'vim'" in err["error"]["message"], err
    code, err = await api("POST", "workspaces/term/terminals", {"session": "ses_1", "agent": {}})
    assert code == 400 and "unknown agent {}" in err["error"]["message"], err  # found by the fuzz test

    # A Claude Code session in a workspace whose image has OpenCode only (the default image).
    container = docker_client.containers.get(f"{TEST_PREFIX}term")
    folder = f"/home/workspace/.claude/projects/{CLAUDE_PROJECT}"
    container.exec_run(["mkdir", "-p", folder], user="workspace")
    transcript = (FIXTURES / "claude" / "projects" / CLAUDE_PROJECT / f"{CLAUDE_P}.jsonl").read_bytes()
    container.put_archive(folder, _tar({f"{CLAUDE_P}.jsonl": transcript}))
    code, err = await api("POST", "workspaces/term/terminals", {"session": CLAUDE_P})
    assert code == 409 and err["error"]["code"] == "agent_missing", err
    assert "Claude Code (claude) is not installed in workspace 'term'" in err["error"]["message"], err
    code, err = await api("POST", "workspaces/term/terminals", {"session": CLAUDE_P, "agent": "opencode"})
    assert code == 404 and "has no opencode session" in err["error"]["message"], err
    code, listing = await api("GET", "workspaces/term/terminals")
    assert listing["terminals"] == []  # nothing was opened by any of them
