"""A refused WebSocket starts nothing: a hostile page in a logged-in browser gets no shell.

Browsers send the login cookie with a WebSocket to any page's request; only the
Origin header tells the server that the page is someone else's.
"""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
import tornado.httpclient
from jupyter_server.auth import Authorizer

from ..conftest import TEST_PREFIX

pytestmark = pytest.mark.engine

EVIL = "http://evil.example"


def exec_processes(container: str) -> list[str]:
    """The `docker exec` processes on this machine that reach into ``container``."""
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in ps if "docker" in line and " exec " in line and f" {container} " in line]


@pytest.fixture
def terminals(jp_serverapp):
    """The names of the terminals Jupyter's terminal manager holds."""
    return lambda: sorted(jp_serverapp.web_app.settings["terminal_manager"].terminals)


async def login_cookie(jp_fetch, host: str) -> str:
    """The cookie a browser keeps after logging in with the token (its name holds the host)."""
    r = await jp_fetch("api", "status", headers={"Host": host})
    cookies = [c.split(";", 1)[0] for c in r.headers.get_list("Set-Cookie") if c.startswith("username-")]
    assert cookies, r.headers
    return cookies[0]


async def running_workspace(api, name="sock"):
    code, ws = await api("POST", "workspaces", {"name": name})
    assert code == 201 and ws["status"] == "running", ws
    return f"{TEST_PREFIX}{name}"


async def refused(jp_ws_fetch, *parts, headers, params=None) -> tuple[int, bytes]:
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        ws = await jp_ws_fetch(*parts, headers=headers, params=params)
        ws.close()
    return e.value.code, e.value.response.body


async def test_a_browser_on_a_foreign_page_gets_no_terminal(api, jp_fetch, jp_ws_fetch, jp_http_port, terminals):
    container = await running_workspace(api)
    assert terminals() == [] and exec_processes(container) == []
    host = f"localhost:{jp_http_port}"
    browser = {"Authorization": "", "Host": host, "Cookie": await login_cookie(jp_fetch, host)}

    code, body = await refused(jp_ws_fetch, "perry", "terminal", "sock", headers={**browser, "Origin": EVIL})
    await asyncio.sleep(1)
    assert (code, terminals(), exec_processes(container)) == (403, [], [])
    assert json.loads(body)["error"]["code"] == "forbidden"
    # A page can also make the browser send a plain GET (an <img> or a link): no Origin, no upgrade.
    r = await jp_fetch("perry", "terminal", "sock", headers=browser, raise_error=False)
    await asyncio.sleep(1)
    assert (r.code, terminals(), exec_processes(container)) == (400, [], [])
    assert json.loads(r.body)["error"]["code"] == "invalid"

    # The events socket refuses that page the same way, in JSON.
    code, body = await refused(jp_ws_fetch, "perry", "api", "events", headers={**browser, "Origin": EVIL})
    assert code == 403 and json.loads(body)["error"]["code"] == "forbidden"

    # The same cookie from Jupyter's own page opens a terminal: the refusal was the origin's.
    ws = await jp_ws_fetch("perry", "terminal", "sock",
                           headers={**browser, "Origin": f"http://{host}"})
    assert json.loads(await ws.read_message())[0] == "setup"
    assert terminals() == ["perry_sock_1"]
    ws.close()


class DenyTerminals(Authorizer):
    """A deployment whose users may use Perry but not terminals (Jupyter's `terminals` resource)."""

    def is_authorized(self, handler, user, action, resource) -> bool:
        return resource != "terminals"


class TestAnAuthorizerThatDeniesTerminals:
    @pytest.fixture
    def jp_server_config(self, perry_config):
        from traitlets.config import Config

        return Config({
            "ServerApp": {"jpserver_extensions": {"perry_jupyter": True}, "authorizer_class": DenyTerminals},
            "PerryApp": perry_config,
        })

    async def test_denies_perry_terminals_and_exec_too(self, api, jp_fetch, jp_ws_fetch, terminals, docker_client):
        container = await running_workspace(api)
        code, _ = await api("GET", "workspaces/sock")
        assert code == 200  # Perry itself is allowed
        r = await jp_fetch("api", "terminals", method="POST", body="{}", raise_error=False)
        assert r.code == 403  # and Jupyter's own terminals are not

        code, body = await refused(jp_ws_fetch, "perry", "terminal", "sock", headers={})
        await asyncio.sleep(1)
        assert (code, terminals(), exec_processes(container)) == (403, [], [])
        assert json.loads(body)["error"]["code"] == "forbidden"
        code, err = await api("POST", "workspaces/sock/terminals")
        assert code == 403 and "terminals" in err["error"]["message"]
        code, err = await api("POST", "workspaces/sock/exec", {"command": ["touch", "/tmp/ran"]})
        assert code == 403 and "terminals" in err["error"]["message"]
        assert terminals() == []
        assert docker_client.containers.get(container).exec_run(["test", "-e", "/tmp/ran"]).exit_code == 1
