"""Every Perry route refuses a request without Jupyter credentials, WebSockets included."""

from __future__ import annotations

import pytest
import tornado.httpclient
import tornado.websocket

from perry_jupyter.handlers import routes
from perry_jupyter.openapi import openapi_document

ROUTES = [
    ("GET", "info"), ("GET", "config"), ("PATCH", "config"), ("GET", "openapi.json"),
    ("GET", "image"), ("POST", "image/build"),
    ("GET", "engines"), ("POST", "engines"), ("DELETE", "engines/alpha"),
    ("GET", "workspaces"), ("POST", "workspaces"), ("GET", "workspaces/alpha"), ("DELETE", "workspaces/alpha"),
    ("PATCH", "workspaces/alpha"),
    ("POST", "workspaces/alpha/start"), ("POST", "workspaces/alpha/stop"), ("POST", "workspaces/alpha/sync"),
    ("POST", "workspaces/alpha/move"), ("POST", "workspaces/alpha/clone"),
    ("GET", "workspaces/alpha/logs"), ("POST", "workspaces/alpha/exec"),
    ("GET", "workspaces/alpha/terminals"), ("POST", "workspaces/alpha/terminals"),
    ("GET", "workspaces/alpha/tasks"), ("POST", "workspaces/alpha/tasks"),
    ("GET", "workspaces/alpha/tasks/tsk_1"), ("DELETE", "workspaces/alpha/tasks/tsk_1"),
    ("GET", "workspaces/alpha/tasks/tsk_1/output"), ("GET", "sessions/search"),
    ("GET", "usage"), ("GET", "workspaces/alpha/usage"), ("GET", "workspaces/alpha/sessions"),
    ("GET", "workspaces/alpha/sessions/ses_1"), ("GET", "workspaces/alpha/sessions/ses_1/messages"),
    ("POST", "workspaces/alpha/sessions/ses_1/messages"),
    ("GET", "workspaces/alpha/terminals/perry_alpha_1"), ("DELETE", "workspaces/alpha/terminals/perry_alpha_1"),
    ("GET", "workspaces/alpha/changes"), ("GET", "workspaces/alpha/changes/diff"),

    ("GET", "workspaces/alpha/ports"),
]
SOCKETS = [("perry", "api", "events"), ("perry", "terminal", "alpha"),
           ("perry", "api", "workspaces", "alpha", "ports", "8000", "connect")]
# The reverse proxy (a GET without credentials goes to the login page; test_proxy.py checks them).
PROXIES = {"/perry/proxy/{name}/{port}/{path}", "/perry/proxy-absolute/{name}/{port}/{path}", "/perry/proxy.js"}
# The phone page's files (a GET without credentials goes to the login page; tests/e2e/test_phone.py checks them).
PAGES = {"/perry/", "/perry/sw.js", "/perry/manifest.webmanifest", "/perry/phone/{path}"}


def _shape(path: str) -> str:
    for action in ("/start", "/stop", "/sync"):
        path = path.replace(action, "/{action}")
    return (path.replace("perry_alpha_1", "{term}").replace("alpha", "{name}")
            .replace("ses_1", "{sessionId}").replace("tsk_1", "{taskId}").replace("{session_id}", "{sessionId}"))


def test_every_route_is_in_this_list_and_in_the_openapi_document():
    served = {pattern.replace("(?P<name>[^/]+)", "{name}").replace("(?P<workspace>[^/]+)", "{name}")
              .replace("/(?P<action>start|stop|sync)", "/{action}").replace("(?P<term>[^/]+)", "{term}").replace("(?P<session_id>[^/]+)", "{sessionId}")
              .replace("(?P<task_id>[^/]+)", "{taskId}").replace("(?P<port>[^/]+)", "{port}")
              .replace("(?P<path>/.*)?", "/{path}").replace("(?P<path>.+)", "{path}").replace("\\.", ".").replace("/perry/?", "/perry/")
              for pattern, handler, *_ in routes() if handler.__name__ != "NoRouteHandler"}
    sockets = {"/" + "/".join(parts).replace("alpha", "{name}").replace("8000", "{port}") for parts in SOCKETS}
    listed = {_shape("/perry/api/" + path) for _, path in ROUTES} | sockets | PROXIES | PAGES
    assert served == listed
    documented = {_shape(p).replace("{term}", "{term}") for p in openapi_document()["paths"]} | sockets
    assert documented == served


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize("auth", [None, "token wrong-token"])
async def test_rest_route_refuses_missing_or_wrong_credentials(jp_fetch, method, path, auth):
    headers = {"Authorization": auth or ""}
    r = await jp_fetch("perry", "api", *path.split("/"), method=method, headers=headers, raise_error=False,
                       body=b"{}" if method in ("POST", "PATCH") else None, allow_nonstandard_methods=True)
    assert r.code == 403


async def test_rest_route_accepts_the_token(jp_fetch):
    r = await jp_fetch("perry", "api", "openapi.json")
    assert r.code == 200


@pytest.mark.parametrize("parts", SOCKETS)
@pytest.mark.parametrize("auth", [None, "token wrong-token"])
async def test_websockets_refuse_missing_or_wrong_credentials(jp_ws_fetch, parts, auth):
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_ws_fetch(*parts, headers={"Authorization": auth or ""})
    assert e.value.code == 403


def test_extension_is_enabled_through_jupyter_config():
    import re
    import subprocess
    import sys
    from pathlib import Path

    import perry_jupyter

    jupyter = Path(sys.executable).parent / "jupyter"
    r = subprocess.run([str(jupyter), "server", "extension", "list"], capture_output=True, text=True, timeout=60)
    out = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)  # drop the colours
    assert "perry_jupyter enabled" in out
    assert f"perry_jupyter {perry_jupyter.__version__} OK" in out
