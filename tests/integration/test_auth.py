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
    ("GET", "workspaces"), ("POST", "workspaces"), ("GET", "workspaces/alpha"), ("DELETE", "workspaces/alpha"),
    ("POST", "workspaces/alpha/start"), ("POST", "workspaces/alpha/stop"), ("POST", "workspaces/alpha/sync"),
    ("GET", "workspaces/alpha/logs"), ("POST", "workspaces/alpha/exec"),
]


def test_every_route_is_in_this_list_and_in_the_openapi_document():
    served = {pattern.replace("(?P<name>[^/]+)", "{name}") for pattern, _ in routes()}
    served = {p.replace("/(?P<action>start|stop|sync)", "") for p in served}
    listed = {"/perry/api/" + path.replace("alpha", "{name}").rsplit("/start", 1)[0].rsplit("/stop", 1)[0]
              .rsplit("/sync", 1)[0] for _, path in ROUTES} | {"/perry/api/events"}
    assert served == listed
    documented = {p.replace("/start", "").replace("/stop", "").replace("/sync", "")
                  for p in openapi_document()["paths"]} | {"/perry/api/events"}
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


@pytest.mark.parametrize("auth", [None, "token wrong-token"])
async def test_events_websocket_refuses_missing_or_wrong_credentials(jp_ws_fetch, auth):
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_ws_fetch("perry", "api", "events", headers={"Authorization": auth or ""})
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
