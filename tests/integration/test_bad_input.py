"""Bad input of any shape is a short 4xx JSON answer, never a 500, a traceback, HTML or a socket that opens."""

from __future__ import annotations

import json

import pytest
import tornado.httpclient

DEEP = b"[" * 100_000 + b"]" * 100_000


def error_of(status: int, data) -> dict:
    assert 400 <= status < 500, (status, data)
    assert isinstance(data, dict), data  # JSON, not Jupyter's HTML page
    return data["error"]


@pytest.mark.parametrize("method, path", [
    ("POST", "workspaces"), ("POST", "workspaces/alpha/exec"), ("POST", "workspaces/alpha/tasks"),
    ("POST", "workspaces/alpha/sessions/ses_1/messages"), ("PATCH", "config"), ("POST", "image/build"),
])
async def test_deeply_nested_json_is_a_400(api, method, path):
    for raw in (DEEP, b'{"name": ' + DEEP + b"}"):
        status, data = await api(method, path, raw=raw)
        err = error_of(status, data)
        assert status == 400 and "nested too deeply" in err["message"]
        assert "Traceback" not in json.dumps(data)


async def test_an_oversized_body_is_a_413_and_long_values_are_cut_short(api):
    status, data = await api("POST", "workspaces", {"name": "a" * 10_000_000})
    assert status == 413 and error_of(status, data)["code"] == "too_large"
    assert len(json.dumps(data)) < 300
    for method, path, body in [
        ("POST", "workspaces", {"name": "A" * 100_000}),
        ("GET", "workspaces/" + "A" * 5000, None),
        ("POST", "workspaces", {"name": "ok", "x" * 100_000: 1}),
        ("POST", "workspaces/alpha/tasks", {"prompt": "hi", "model": "?" * 100_000}),
        ("GET", "workspaces/alpha/terminals/" + "t" * 5000, None),
    ]:
        status, data = await api(method, path, body)
        assert status == 400 and len(error_of(status, data)["message"]) < 2100, (path, len(json.dumps(data)))
    status, data = await api("POST", "workspaces", {"name": "A" * 100_000})
    message = data["error"]["message"]
    assert message.startswith("invalid workspace name 'AAAA") and "100002 characters" in message
    assert len(message) < 300


async def test_terminal_names_and_unknown_addresses_get_json(api, jp_fetch):
    status, data = await api("GET", "workspaces/alpha/terminals/bad-name!")
    assert status == 400 and "invalid terminal name" in error_of(status, data)["message"]
    status, data = await api("DELETE", "workspaces/alpha/terminals/perry.alpha.1")
    assert status == 400 and "invalid terminal name" in error_of(status, data)["message"]
    status, data = await api("GET", "workspaces/alpha/terminals/perry_alpha_9")
    assert status == 404 and error_of(status, data)["code"] == "not_found"
    for method, path in [("GET", "nope"), ("POST", "workspaces/alpha/nope"), ("DELETE", "workspaces/alpha/logs/x")]:
        status, data = await api(method, path)
        assert status in (404, 405) and error_of(status, data)["code"] in ("not_found", "method_not_allowed")
    r = await jp_fetch("perry", "terminal", "alpha", "extra", raise_error=False)
    assert r.code == 404 and json.loads(r.body)["error"]["code"] == "not_found"


async def test_every_field_of_the_wrong_type_is_a_400_naming_it(api):
    cases = [
        ("POST", "workspaces/alpha/exec", {"command": ["ls"], "workdir": 5}, "workdir"),
        ("POST", "workspaces/alpha/exec", {"command": ["ls"], "workdir": "tmp"}, "workdir"),
        ("POST", "workspaces/alpha/exec", {"command": ["ls"], "user": 0}, "user"),
        ("POST", "workspaces/alpha/exec", {"command": ["ls"], "user": "root; rm -rf /"}, "user"),
        ("POST", "workspaces/alpha/exec", {"command": ["ls", "a\0b"]}, "NUL"),
        ("POST", "workspaces/alpha/exec", {"command": "ls"}, "command"),
        ("POST", "workspaces/alpha/tasks", {"prompt": "hi", "agent": ["opencode"]}, "agent"),
        ("POST", "workspaces/alpha/tasks", {"prompt": 5}, "prompt"),
        ("POST", "workspaces/alpha/tasks", {"prompt": "hi", "model": 5}, "model"),
        ("POST", "workspaces/alpha/tasks", {"prompt": "hi", "sessionId": {"a": 1}}, "session id"),
        ("POST", "workspaces/alpha/tasks", {"prompt": "hi", "callback": "http://x"}, "callback"),
        ("POST", "workspaces/alpha/sessions/ses_1/messages", {"text": 5}, "text"),
        ("POST", "workspaces/alpha/sessions/ses_1/messages", {"text": "hi", "colour": 1}, "unknown field"),
        ("POST", "workspaces", {"name": 5}, "name"),
        ("POST", "workspaces", {"name": "ok", "clone": 5}, "clone"),
        ("POST", "workspaces", {"name": "ok", "env": {"A": ["x"]}}, "env"),
        ("PATCH", "config", {"readyTimeout": "soon"}, "readyTimeout"),
        ("PATCH", "config", {"terminalShell": 5}, "terminalShell"),
        ("PATCH", "config", {"env": "A=1"}, "env"),
        ("POST", "image/build", {"agents": "opencode"}, "imageAgents"),
        ("POST", "image/build", {"bootstrap": "yes"}, "bootstrap"),
        ("POST", "image/build", {"colour": "blue"}, "unknown field"),
    ]
    for method, path, body, words in cases:
        status, data = await api(method, path, body)
        assert status == 400 and words in error_of(status, data)["message"], (path, body, data)


async def test_socket_parameters_are_refused_before_the_upgrade(jp_ws_fetch):
    for parts, params, code in [
        (("perry", "api", "events"), {"workspace": "../x"}, 400),
        (("perry", "api", "events"), {"workspace": ""}, 400),
        (("perry", "terminal", "Bad_Name"), {}, 400),
        (("perry", "terminal", "alpha"), {"terminal": "../x"}, 400),
        (("perry", "terminal", "alpha"), {"terminal": "perry_alpha_1"}, 404),
    ]:
        with pytest.raises(tornado.httpclient.HTTPClientError) as e:
            ws = await jp_ws_fetch(*parts, params=params)
            ws.close()  # only reached when the server wrongly accepted
        assert e.value.code == code, (parts, params)
        assert "error" in json.loads(e.value.response.body)


async def test_texts_for_agents_and_callback_tokens_that_cannot_be_passed_on_are_400s(api):
    # Found by the fuzz run: a NUL in a message reached the worker's argv (502 "invalid argument"),
    # and a token outside ASCII made every callback delivery fail with a traceback in the log.
    for method, path, body, field in [
        ("POST", "workspaces/alpha/sessions/ses_1/messages", {"text": "a\u0000b"}, "text"),
        ("POST", "workspaces/alpha/tasks", {"prompt": "a\u0000b"}, "prompt"),
        ("POST", "workspaces/alpha/tasks",
         {"prompt": "hi", "callback": {"url": "http://127.0.0.1:9/cb", "token": "t\U0002a0f5"}}, "token"),
        ("POST", "workspaces/alpha/tasks",
         {"prompt": "hi", "callback": {"url": "http://127.0.0.1:9/cb", "token": "a\r\nX-Injected: 1"}}, "token"),
    ]:
        status, data = await api(method, path, body)
        err = error_of(status, data)
        assert status == 400 and field in err["message"], (path, body, data)
