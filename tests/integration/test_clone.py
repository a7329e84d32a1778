"""Cloning at create: a credential in the URL is used for the clone and shown nowhere; a local
repository is cloned however it is readable to the server, and refused clearly when it is not."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from perry_jupyter.core.services import Perry
from perry_jupyter.app import PerryApp

from ..conftest import SSH_PORTS, TEST_PREFIX
from .conftest import PerryServe, free_port
from .test_cli import perry
from .test_errors import snapshot
from .test_lifecycle import make_repo, run

pytestmark = pytest.mark.engine

USER, TOKEN = "perry-user", "s3cret-T0ken-4711"


class GitHttp:
    """A bare repository served over git's dumb HTTP protocol, behind Basic auth."""

    def __init__(self, root, host):
        self.root, self.host = root, host
        self.authorizations: list[str | None] = []
        expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
        seen = self.authorizations

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                auth = self.headers.get("Authorization")
                seen.append(auth)
                if auth != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("0.0.0.0", free_port()), partial(Handler, directory=str(root)))
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, userinfo: str | None = None) -> str:
        return f"http://{userinfo + '@' if userinfo else ''}{self.host}:{self.port}/shop.git"

    def authorized(self) -> bool:
        return any(a and base64.b64decode(a.split()[1]).decode() == f"{USER}:{TOKEN}" for a in self.authorizations)


def network_gateway(docker_client, name="perry-test") -> str:
    """The host's address on the test network (made here as Perry makes it, if no test made it yet)."""
    nets = [n for n in docker_client.networks.list(names=[name]) if n.name == name]
    net = nets[0] if nets else docker_client.networks.create(name, driver="bridge",
                                                              labels={"perry.managed": "true"})
    net.reload()
    return net.attrs["IPAM"]["Config"][0]["Gateway"]


@pytest.fixture
def git_http(tmp_path, docker_client):
    work = make_repo(tmp_path / "shop")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(tmp_path / "site" / "shop.git")], check=True)
    subprocess.run(["git", "-C", str(tmp_path / "site" / "shop.git"), "update-server-info"], check=True)
    server = GitHttp(tmp_path / "site", network_gateway(docker_client))
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


async def events_until(ws, last: str) -> list[str]:
    """Every event message (raw text) up to and including the first of type ``last``."""
    seen = []
    while True:
        msg = await asyncio.wait_for(ws.read_message(), 300)
        assert msg is not None, "events socket closed"
        seen.append(msg)
        if json.loads(msg)["type"] == last:
            return seen


async def test_a_token_in_the_clone_url_is_used_for_the_clone_and_shown_nowhere(
        api, jp_ws_fetch, docker_client, perry_state_dir, git_http, caplog):
    caplog.set_level(logging.DEBUG)
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "secret"})
    assert json.loads(await events.read_message())["type"] == "hello"

    code, ws = await api("POST", "workspaces", {"name": "secret", "clone": git_http.url(f"{USER}:{TOKEN}")})
    assert code == 201, ws
    # git used the credential: the server let it in, and the project is there.
    assert git_http.authorized()
    assert ws["projectDir"] == "/home/workspace/shop"
    assert (await run(api, "secret", "cat", "shop/README.md"))["stdout"] == "hello from the cloned repo\n"
    assert ws["clone"] == git_http.url("***")

    # Nowhere it is shown: the API, the events, the state file, the server's log.
    _, got = await api("GET", "workspaces/secret")
    _, listing = await api("GET", "workspaces")
    messages = await events_until(events, "workspace.updated")
    assert any(git_http.url("***") in m for m in messages)  # "cloning http://***@..." was said
    for text in (json.dumps(ws), json.dumps(got), json.dumps(listing), *messages,
                 (perry_state_dir / "state.json").read_text(), caplog.text):
        assert TOKEN not in text

    # Nor in the container's configuration (docker inspect) or its log.
    container = docker_client.containers.get(f"{TEST_PREFIX}secret")
    assert TOKEN not in json.dumps(container.attrs)
    assert TOKEN not in container.logs().decode()

    # Nor left in the workspace: not in .git/config (origin is the URL without it), not in a
    # credential store, not in the clone's log, nowhere on its disk.
    origin = await run(api, "secret", "git", "-C", "shop", "remote", "get-url", "origin")
    assert origin["stdout"].strip() == git_http.url()
    assert "perry: clone done" in (await run(api, "secret", "cat", ".perry/clone.log"))["stdout"]
    found = await run(api, "secret", "grep", "-rlsF", "-D", "skip", TOKEN, "/home", "/root", "/etc", "/run", "/tmp",
                      "/var/log", user="root")
    assert found["exitCode"] == 1 and found["stdout"] == "", found
    events.close()


async def test_keeping_the_credential_in_git_config_is_asked_for(api, git_http):
    url = git_http.url(f"{USER}:{TOKEN}")
    code, ws = await api("POST", "workspaces", {"name": "keep", "clone": url,
                                                "env": {"PERRY_CLONE_KEEP_CREDENTIALS": "1"}})
    assert code == 201, ws
    assert ws["clone"] == git_http.url("***")
    origin = await run(api, "keep", "git", "-C", "shop", "remote", "get-url", "origin")
    assert origin["stdout"].strip() == url
    # So later fetches need nothing more.
    fetched = await run(api, "keep", "env", "GIT_TERMINAL_PROMPT=0", "git", "-C", "shop", "fetch", "origin")
    assert fetched["exitCode"] == 0, fetched


async def test_a_refused_credential_fails_clearly_without_showing_it(
        api, jp_ws_fetch, docker_client, perry_state_dir, git_http, caplog):
    caplog.set_level(logging.DEBUG)
    before = snapshot(perry_state_dir, docker_client)
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "refused"})
    assert json.loads(await events.read_message())["type"] == "hello"
    wrong = "wr0ng-T0ken-0815"

    code, err = await api("POST", "workspaces", {"name": "refused", "clone": git_http.url(f"{USER}:{wrong}")})
    assert code == 422, err
    assert err["error"]["code"] == "clone_failed"
    message = err["error"]["message"]
    assert message.startswith(f"cloning {git_http.url('***')} failed:")
    assert "Authentication failed" in message  # git's own words reach the user
    # The server was asked with that credential: the failure is git's, not a missing token.
    assert any(a and wrong in base64.b64decode(a.split()[1]).decode() for a in git_http.authorizations)

    messages = await events_until(events, "workspace.deleted")
    assert "creating workspace refused failed" in caplog.text
    for text in (message, *messages, caplog.text):
        assert wrong not in text
    assert snapshot(perry_state_dir, docker_client)[1:] == before[1:]
    assert (await api("GET", "workspaces/refused"))[0] == 404
    events.close()


async def test_a_local_repository_only_its_owner_may_read_is_cloned(api, tmp_path):
    repo = make_repo(tmp_path / "private")
    os.chmod(repo, 0o700)  # as `mktemp -d` makes it, and many home directories are
    assert os.stat(repo).st_uid != 1000

    code, ws = await api("POST", "workspaces", {"name": "private", "clone": str(repo)})
    assert code == 201, ws
    assert ws["projectDir"] == "/home/workspace/private"
    # The copy is the workspace user's to work in.
    assert (await run(api, "private", "cat", "private/README.md"))["stdout"] == "hello from the cloned repo\n"
    owners = await run(api, "private", "sh", "-c", "find private -printf '%u\\n' | sort -u")
    assert owners["stdout"].split() == ["workspace"]
    status = await run(api, "private", "git", "-C", "private", "status", "--porcelain")
    assert status["exitCode"] == 0 and status["stdout"] == ""
    log_ = await run(api, "private", "git", "-C", "private", "log", "--format=%s")
    assert log_["stdout"].split() == ["first"]


def test_a_local_repository_the_server_cannot_read_is_refused_with_the_reason(tmp_path, ssh_key, docker_client):
    """The server runs as a user who may not read the folder (here: root without the capability to
    override file permissions), so the workspace must not read it for them either."""
    repo = make_repo(tmp_path / "someone-elses")
    subprocess.run(["chown", "-R", "4242:4242", str(repo)], check=True)
    os.chmod(repo, 0o700)
    serve = PerryServe(tmp_path / "serve", ssh_key)
    serve.dir.mkdir()
    serve.argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *serve.argv]
    serve.start()
    try:
        env = serve.cli_env()
        before = snapshot(tmp_path / "serve" / "perry", docker_client)
        r = perry(env, "create", "nope", "--clone", str(repo), check=False)
        assert r.returncode != 0
        said = " ".join((r.stdout + r.stderr).split())
        assert f"clone path {repo} cannot be read by the Perry server" in said, said
        assert "Permission denied" in said
        assert json.loads(perry(env, "list", "--json").stdout) == []
        assert snapshot(tmp_path / "serve" / "perry", docker_client)[1:] == before[1:]
    finally:
        serve.stop()


def test_a_record_an_older_perry_wrote_with_the_token_is_shown_redacted(perry_state_dir, perry_config):
    perry_ = Perry(perry_state_dir, PerryApp(**perry_config).core_config())
    with perry_.store.transaction() as data:
        data["workspaces"]["old"] = {"name": "old", "status": "stopped", "created": "2026-01-01T00:00:00+00:00",
                                     "ports": {"ssh": SSH_PORTS[1]}, "env": {},
                                     "clone": f"https://{USER}:{TOKEN}@example.invalid/shop.git"}
    assert perry_.workspaces.get("old")["clone"] == "https://***@example.invalid/shop.git"
    assert TOKEN not in json.dumps(perry_.workspaces.list())
