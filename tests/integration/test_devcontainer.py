"""A cloned project's devcontainer.json applied to its workspace, and images of one's own built
FROM Perry's workspace image (`perry build --dockerfile`, `perry create --image`)."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from ..conftest import IMAGE_TAG, TEST_PREFIX
from .conftest import until_async
from .test_cli import perry
from .test_clone import TOKEN, USER, GitHttp, network_gateway
from .test_errors import snapshot
from .test_lifecycle import run

pytestmark = pytest.mark.engine

# A Debian image that is not Perry's: the base a bootstrapped workspace image is built on.
PLAIN_DEBIAN = "perry-base:bookworm"

DEVCONTAINER = """// The project's development container (JSON with comments, as editors write it).
{
  "name": "Shop dev", // shown as the workspace's display name
  "containerEnv": {
    "SHOP_MODE": "dev",
    "SHOP_URL": "http://shop.invalid//not-a-comment", /* a comment marker inside a string stays */
  },
  "remoteEnv": {"SHOP_REMOTE": "${containerEnv:SHOP_MODE}-remote"},
  "postCreateCommand": "echo created-$SHOP_MODE-$SHOP_REMOTE > created.txt && echo post-create-said-hello",
  "postStartCommand": ["sh", "-c", "echo started >> started.txt"],
  "forwardPorts": [8123, 9000,],
  "features": {"ghcr.io/devcontainers/features/node:1": {}},
}
"""


def commit_repo(path, files: dict[str, str]):
    path.mkdir()
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@e.invalid",
                    "commit", "-q", "-m", "first"], check=True)
    return str(path)


@pytest.fixture
def test_images(docker_client):
    """Image tags a test builds (under the test prefix), removed afterwards."""
    made: list[str] = []
    yield made
    for tag in made:
        try:
            docker_client.images.remove(tag, force=True)
        except Exception:
            pass


async def progress_messages(events, until_type: str) -> list[str]:
    said = []
    while True:
        msg = await asyncio.wait_for(events.read_message(), 300)
        assert msg is not None, "events socket closed"
        event = json.loads(msg)
        if event["type"] == "workspace.progress":
            said.append(event["data"]["message"])
        if event["type"] == until_type:
            return said


async def test_a_projects_devcontainer_json_sets_the_workspace_up(api, jp_ws_fetch, jp_fetch, tmp_path):
    repo = commit_repo(tmp_path / "shop", {".devcontainer/devcontainer.json": DEVCONTAINER, "README.md": "shop\n"})
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "dev"})
    assert json.loads(await events.read_message())["type"] == "hello"

    code, ws = await api("POST", "workspaces", {"name": "dev", "clone": repo})
    assert code == 201, ws
    assert ws["status"] == "running"
    assert ws["displayName"] == "Shop dev"
    assert ws["devcontainer"] == ".devcontainer/devcontainer.json"
    assert ws["declaredPorts"] == [8123, 9000]
    # `features` is not applied, and it says so (once), naming the key.
    assert len(ws["warnings"]) == 1 and "features" in ws["warnings"][0], ws["warnings"]

    # containerEnv and remoteEnv are in every exec, the ${containerEnv:...} reference resolved.
    env = await run(api, "dev", "sh", "-c", 'echo "$SHOP_MODE|$SHOP_URL|$SHOP_REMOTE"')
    assert env["stdout"] == "dev|http://shop.invalid//not-a-comment|dev-remote\n"

    # postCreateCommand ran once, in the project, as the workspace user, with that environment.
    created = await run(api, "dev", "sh", "-c", "cat shop/created.txt; stat -c %U shop/created.txt")
    assert created["stdout"] == "created-dev-dev-remote\nworkspace\n"
    assert (await run(api, "dev", "cat", "shop/started.txt"))["stdout"] == "started\n"

    # Its output is in the create's progress and in `perry logs`, with the warning.
    said = await progress_messages(events, "workspace.updated")
    assert any("post-create-said-hello" in m for m in said), said
    assert any(m.startswith("warning:") and "features" in m for m in said), said
    code, logs = await api("GET", "workspaces/dev/logs")
    assert "post-create-said-hello" in logs["logs"]
    assert "warning:" in logs["logs"] and "features" in logs["logs"]
    events.close()

    # forwardPorts are the workspace's declared ports, listed before anything listens...
    code, ports = await api("GET", "workspaces/dev/ports")
    declared = {p["port"]: p for p in ports["ports"] if p["declared"]}
    assert set(declared) == {8123, 9000} and not any(p["listening"] for p in declared.values())
    # ... and opened through the proxy once a server listens there.
    await run(api, "dev", "sh", "-c", "cd shop && nohup python3 -m http.server 8123 >/dev/null 2>&1 &")

    async def listening():
        _, now = await api("GET", "workspaces/dev/ports")
        return any(p["port"] == 8123 and p["listening"] and p["declared"] for p in now["ports"])

    await until_async(listening, timeout=60)
    page = await jp_fetch("perry", "proxy", "dev", "8123", "README.md", raise_error=False)
    assert page.code == 200 and page.body == b"shop\n"

    # postStartCommand runs again on every start; postCreateCommand does not.
    assert (await api("POST", "workspaces/dev/stop"))[0] == 200
    code, ws = await api("POST", "workspaces/dev/start")
    assert code == 200 and ws["status"] == "running", ws
    assert (await run(api, "dev", "cat", "shop/started.txt"))["stdout"] == "started\nstarted\n"
    # A start of a running workspace starts nothing, so runs nothing either.
    assert (await api("POST", "workspaces/dev/start"))[0] == 200
    assert (await run(api, "dev", "cat", "shop/started.txt"))["stdout"] == "started\nstarted\n"
    assert (await run(api, "dev", "cat", "shop/created.txt"))["stdout"] == "created-dev-dev-remote\n"
    # And the environment survives the restart.
    assert (await run(api, "dev", "printenv", "SHOP_REMOTE"))["stdout"] == "dev-remote\n"


async def test_a_devcontainer_json_of_a_repository_cloned_over_http_with_a_token(api, tmp_path, docker_client):
    """The file is read where the clone is made, inside the workspace: a URL with a credential works
    as a local path does, and the credential is in no setting the devcontainer gives."""
    work = commit_repo(tmp_path / "shop", {".devcontainer/devcontainer.json": """{
        "containerEnv": {"FROM_URL": "yes"}, // asks for the container to be made again
        "postCreateCommand": "git log --format=%s > ../log.txt",
    }"""})
    subprocess.run(["git", "clone", "-q", "--bare", work, str(tmp_path / "site" / "shop.git")], check=True)
    subprocess.run(["git", "-C", str(tmp_path / "site" / "shop.git"), "update-server-info"], check=True)
    site = GitHttp(tmp_path / "site", network_gateway(docker_client))
    try:
        code, ws = await api("POST", "workspaces", {"name": "remote", "clone": site.url(f"{USER}:{TOKEN}")})
        assert code == 201, ws
        assert ws["devcontainer"] == ".devcontainer/devcontainer.json" and ws["projectDir"] == "/home/workspace/shop"
        assert (await run(api, "remote", "printenv", "FROM_URL"))["stdout"] == "yes\n"
        assert (await run(api, "remote", "cat", "log.txt"))["stdout"] == "first\n"
        container = docker_client.containers.get(f"{TEST_PREFIX}remote")
        assert TOKEN not in json.dumps(container.attrs)
    finally:
        site.httpd.shutdown()
        site.httpd.server_close()


async def test_a_failing_post_create_command_leaves_the_workspace_in_error_with_its_output(
        api, tmp_path, docker_client):
    repo = commit_repo(tmp_path / "broken", {".devcontainer.json": """{
        // the second line is the one that tells what went wrong
        "postCreateCommand": "test -f ~/fixed && echo set-up > ~/done || { echo first-line; echo npm-install-went-wrong >&2; exit 7; }",
        "postStartCommand": "echo started >> ~/started",
    }"""})
    code, err = await api("POST", "workspaces", {"name": "broken", "clone": repo})
    assert code == 422, err
    assert err["error"]["code"] == "setup_failed"
    assert "exit 7" in err["error"]["message"] and "npm-install-went-wrong" in err["error"]["message"]

    # The workspace stays, `error`, the output's tail in its message, for the user to look into.
    code, ws = await api("GET", "workspaces/broken")
    assert code == 200 and ws["status"] == "error", ws
    assert "postCreateCommand failed (exit 7)" in ws["error"]
    assert "first-line\nnpm-install-went-wrong" in ws["error"]
    code, logs = await api("GET", "workspaces/broken/logs")
    assert "npm-install-went-wrong" in logs["logs"]

    # Once what it needed is there (here, by hand in the container), `start` runs it again, then the
    # start command, and the workspace is running.
    container = docker_client.containers.get(f"{TEST_PREFIX}broken")
    assert container.exec_run(["touch", "/home/workspace/fixed"], user="workspace").exit_code == 0
    code, ws = await api("POST", "workspaces/broken/start")
    assert code == 200 and ws["status"] == "running" and ws["error"] is None, ws
    assert (await run(api, "broken", "cat", "done", "started"))["stdout"] == "set-up\nstarted\n"


async def test_a_devcontainer_dockerfile_from_the_workspace_image_is_built_and_used(api, tmp_path, docker_client):
    repo = commit_repo(tmp_path / "built", {
        ".devcontainer/devcontainer.json": '{"build": {"dockerfile": "Dockerfile", "args": {"FLAVOUR": "mint"}}}',
        ".devcontainer/Dockerfile": f"FROM {IMAGE_TAG}\nARG FLAVOUR\nENV FLAVOUR=$FLAVOUR\n"
                                    "COPY greeting.txt /opt/greeting.txt\n",
        ".devcontainer/greeting.txt": "from the build context\n",
    })
    tag = f"{TEST_PREFIX}built-devcontainer:latest"
    try:
        code, ws = await api("POST", "workspaces", {"name": "built", "clone": repo})
        assert code == 201, ws
        assert ws["image"] == tag and ws["warnings"] == []
        assert (await run(api, "built", "printenv", "FLAVOUR"))["stdout"] == "mint\n"
        assert (await run(api, "built", "cat", "/opt/greeting.txt"))["stdout"] == "from the build context\n"
        assert (await run(api, "built", "ls", "built/.devcontainer"))["exitCode"] == 0  # the clone is kept
        # The image is the workspace's own: it goes with it.
        assert (await api("DELETE", "workspaces/built"))[0] == 204
        assert not docker_client.images.list(name=tag)
    finally:
        for image in docker_client.images.list(name=tag):
            docker_client.images.remove(image.id, force=True)


async def test_a_devcontainer_image_not_built_from_perrys_is_refused(api, tmp_path, perry_state_dir, docker_client):
    repo = commit_repo(tmp_path / "plain", {
        ".devcontainer/devcontainer.json": '{"build": {"dockerfile": "Dockerfile"}}',
        ".devcontainer/Dockerfile": f"FROM {PLAIN_DEBIAN}\nENV PLAIN=1\n",
    })
    before = snapshot(perry_state_dir, docker_client)
    code, err = await api("POST", "workspaces", {"name": "plain", "clone": repo})
    assert code == 422, err
    assert err["error"]["code"] == "not_a_workspace_image"
    assert f"FROM {IMAGE_TAG}" in err["error"]["message"]
    # Nothing is left: no workspace, no container or volume, no image.
    assert (await api("GET", "workspaces/plain"))[0] == 404
    assert snapshot(perry_state_dir, docker_client)[1:] == before[1:]
    assert not docker_client.images.list(name=f"{TEST_PREFIX}plain-devcontainer")

    # An `image` key is checked the same way.
    repo = commit_repo(tmp_path / "named", {".devcontainer.json": f'{{"image": "{PLAIN_DEBIAN}"}}'})
    code, err = await api("POST", "workspaces", {"name": "named", "clone": repo})
    assert code == 422 and err["error"]["code"] == "not_a_workspace_image", err

    # A file that is not JSON with comments says where it went wrong; nothing is created either.
    repo = commit_repo(tmp_path / "garbled", {".devcontainer.json": '{"name": "x" "image": 1}'})
    code, err = await api("POST", "workspaces", {"name": "garbled", "clone": repo})
    assert code == 422 and err["error"]["code"] == "invalid_devcontainer", err
    assert err["error"]["message"].startswith(".devcontainer.json is not valid JSON with comments")
    assert snapshot(perry_state_dir, docker_client)[1:] == before[1:]


def test_perry_build_dockerfile_and_create_image(served, tmp_path, test_images):
    env = served
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "Dockerfile").write_text(f"FROM {IMAGE_TAG}\nCOPY tool.sh /usr/local/bin/shop-tool\n")
    (mine / "tool.sh").write_text("#!/bin/sh\necho shop tool here\n")
    (mine / "tool.sh").chmod(0o755)
    tag = f"{TEST_PREFIX}custom:1"
    test_images.append(tag)

    built = perry(env, "build", "--dockerfile", str(mine / "Dockerfile"), "--tag", tag)
    assert f"Image {tag} is built" in built.stdout, built.stdout
    perry(env, "create", "own", "--image", tag)
    assert "shop tool here" in perry(env, "exec", "own", "shop-tool").stdout
    info = json.loads(perry(env, "info", "own", "--json").stdout)
    assert info["image"] == tag
    assert tag in perry(env, "info", "own").stdout

    # An image not built FROM Perry's is refused, by build and by create, saying why.
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "Dockerfile").write_text(f"FROM {PLAIN_DEBIAN}\nENV PLAIN=1\n")
    refused = perry(env, "build", "--dockerfile", str(plain / "Dockerfile"), "--tag", f"{TEST_PREFIX}plain:1",
                    check=False)
    assert refused.returncode != 0
    assert "not built from Perry's workspace image" in refused.stderr + refused.stdout
    refused = perry(env, "create", "plain", "--image", PLAIN_DEBIAN, check=False)
    assert refused.returncode != 0 and f"FROM {IMAGE_TAG}" in refused.stderr + refused.stdout

    # An image the engine does not have names the command that builds it.
    missing = perry(env, "create", "nope", "--image", f"{TEST_PREFIX}missing:1", check=False)
    assert missing.returncode != 0 and "perry build --dockerfile" in missing.stderr + missing.stdout
    listed = perry(env, "list", "--json").stdout
    assert '"plain"' not in listed and '"nope"' not in listed
