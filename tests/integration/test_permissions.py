"""Per-workspace permissions: Jupyter's authorizer is asked with a resource per kind of action
and the workspace's name (handler.perry_workspace). The README's example authorizer, configured
on a real Jupyter server, gives a user read-only access to one workspace: what it refuses is a
403 that changes nothing, on REST routes and WebSockets alike."""

from __future__ import annotations

import json

import pytest
from jupyter_server.auth import Authorizer
from traitlets.config import Config

from ..conftest import TEST_PREFIX
from .test_socket_auth import exec_processes, refused, terminals  # noqa: F401 (a fixture)

pytestmark = pytest.mark.engine


class OneWorkspaceReadOnly(Authorizer):
    """The README's example, as it is there: the users in ``viewers`` may look at workspace
    ``demo`` (and the list of workspaces), nothing else of Perry; everyone else may do anything."""

    viewers = {"viewer"}
    readable = {"perry:workspaces", "perry:sessions", "perry:tasks"}

    def is_authorized(self, handler, user, action, resource):
        if user.username not in self.viewers:
            return True
        if not resource.startswith("perry"):
            return action == "read"  # Jupyter's own routes: read-only too
        workspace = getattr(handler, "perry_workspace", None)
        if workspace is None:  # the server's own information, the list of workspaces, its events
            return action == "read" and resource in ("perry", "perry:workspaces")
        return action == "read" and resource in self.readable and workspace == "demo"


class Switch:
    """Every user is a viewer while ``on``: the test sets up as an admin, then checks as a viewer."""

    on = False

    def __contains__(self, username) -> bool:
        return self.on


class ReadOnlyDemoForTests(OneWorkspaceReadOnly):
    viewers = Switch()


@pytest.fixture
def jp_server_config(perry_config):
    return Config({
        "ServerApp": {"jpserver_extensions": {"perry_jupyter": True}, "authorizer_class": ReadOnlyDemoForTests},
        "PerryApp": perry_config,
    })


async def test_a_read_only_viewer_of_one_workspace(api, jp_ws_fetch, terminals, docker_client):  # noqa: F811
    for name in ("demo", "other"):
        code, ws = await api("POST", "workspaces", {"name": name})
        assert code == 201 and ws["status"] == "running", ws
    demo = docker_client.containers.get(f"{TEST_PREFIX}demo")

    Switch.on = True
    try:
        for path in ("workspaces", "workspaces/demo", "workspaces/demo/logs", "workspaces/demo/sessions",
                     "workspaces/demo/tasks", "info"):
            code, body = await api("GET", path)
            assert code == 200, (path, body)
        for path in ("workspaces/other", "workspaces/other/logs", "workspaces/other/sessions", "usage",
                     "workspaces/demo/ports", "workspaces/demo/terminals"):
            code, body = await api("GET", path)
            assert code == 403, (path, body)
            assert body["error"]["code"] == "forbidden"
        code, body = await api("GET", "workspaces/other")
        assert "not authorized to read on resource: perry:workspaces" in body["error"]["message"]

        refusals = [("POST", "workspaces/demo/stop", None), ("DELETE", "workspaces/demo", None),
                    ("POST", "workspaces/demo/exec", {"command": ["touch", "/tmp/ran"]}),
                    ("POST", "workspaces/demo/tasks", {"prompt": "do something"}),
                    ("POST", "workspaces/demo/terminals", None), ("POST", "workspaces", {"name": "intruder"}),
                    ("POST", "workspaces/other/stop", None), ("PATCH", "config", {"readyTimeout": 5})]
        for method, path, body in refusals:
            code, answer = await api(method, path, body)
            assert code == 403, (method, path, answer)

        # WebSockets: the events of the one workspace (or of all: their names only), nothing that acts.
        ws = await jp_ws_fetch("perry", "api", "events", params={"workspace": "demo"})
        assert json.loads(await ws.read_message()) == {"type": "hello", "workspace": "demo"}
        ws.close()
        code, body = await refused(jp_ws_fetch, "perry", "api", "events", headers={}, params={"workspace": "other"})
        assert code == 403 and "perry:workspaces" in json.loads(body)["error"]["message"]
        code, _ = await refused(jp_ws_fetch, "perry", "terminal", "demo", headers={})
        assert code == 403
        code, _ = await refused(jp_ws_fetch, "perry", "api", "workspaces", "demo", "ports", "8000", "connect",
                                headers={})
        assert code == 403
    finally:
        Switch.on = False

    # Nothing that was refused happened.
    code, listing = await api("GET", "workspaces")
    assert sorted((w["name"], w["status"]) for w in listing["workspaces"]) == [("demo", "running"),
                                                                               ("other", "running")]
    code, tasks = await api("GET", "workspaces/demo/tasks")
    assert tasks["tasks"] == []
    assert terminals() == [] and exec_processes(demo.name) == []
    assert demo.exec_run(["test", "-e", "/tmp/ran"]).exit_code == 1
    code, config = await api("GET", "config")
    assert config.get("readyTimeout") != 5


class Recorder(Authorizer):
    """Allows everything and remembers what it was asked."""

    asked: list = []

    def is_authorized(self, handler, user, action, resource):
        self.asked.append((action, resource, getattr(handler, "perry_workspace", None)))
        return True


class TestWhatTheAuthorizerIsAsked:
    @pytest.fixture
    def jp_server_config(self, perry_config):
        return Config({
            "ServerApp": {"jpserver_extensions": {"perry_jupyter": True}, "authorizer_class": Recorder},
            "PerryApp": perry_config,
        })

    async def test_resources_name_the_action_and_the_workspace(self, api):
        cases = [("GET", "workspaces/ghost", ("read", "perry:workspaces", "ghost")),
                 ("POST", "workspaces/ghost/exec", ("write", "perry:exec", "ghost")),
                 ("GET", "workspaces/ghost/sessions", ("read", "perry:sessions", "ghost")),
                 ("POST", "workspaces/ghost/tasks", ("write", "perry:tasks", "ghost")),
                 ("GET", "workspaces/ghost/terminals", ("read", "perry:terminals", "ghost")),
                 ("GET", "workspaces/ghost/ports", ("read", "perry:ports", "ghost")),
                 ("GET", "workspaces", ("read", "perry:workspaces", None)),
                 ("DELETE", "engines/ghost", ("write", "perry", None)),
                 ("GET", "info", ("read", "perry", None))]
        for method, path, expected in cases:
            Recorder.asked.clear()
            await api(method, path, {} if method == "POST" else None)
            assert expected in Recorder.asked, (path, Recorder.asked)
