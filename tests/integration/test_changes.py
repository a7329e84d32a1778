"""See the changes: a workspace's git state and diff through the REST API, the CLI, and after a task."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest
import requests

from perry_jupyter.client import PerryClient
from perry_jupyter.notebook.magics import run as magic

from ..conftest import TEST_PREFIX
from .agents import start_model
from .conftest import PERRY, next_event
from .test_cli import perry

pytestmark = pytest.mark.engine

HOME = "/home/workspace"


def make_repo(tmp_path, name="proj"):
    repo = tmp_path / name
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "app.py").write_text("def main():\n    return 1\n")
    (repo / "README.md").write_text("# proj\n\nold words\n")
    (repo / "old.txt").write_text("to be removed\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    (repo / "CHANGES").write_text("v1\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "second commit"], check=True)
    return repo


def edit(container, script: str, project: str) -> None:
    """Change the project as an agent would: as the workspace user, in the workspace."""
    r = container.exec_run(["sh", "-ec", script], user="workspace", workdir=project)
    assert r.exit_code == 0, r.output


EDITS = ("printf 'def main():\\n    return 2\\n\\n\\nprint(main())\\n' > app.py; rm old.txt; "
         "mkdir -p src; printf 'a\\nb\\nc\\n' > src/new.py; printf 'PNG\\0\\1\\2' > logo.png")


async def test_changes_and_diff_through_the_api_and_after_a_task(api, docker_client, jp_ws_fetch, tmp_path):
    repo = make_repo(tmp_path)
    code, ws = await api("POST", "workspaces", {"name": "changer", "clone": str(repo)})
    assert code == 201, ws
    project = ws["projectDir"]
    assert project.startswith(HOME + "/")
    container = docker_client.containers.get(f"{TEST_PREFIX}changer")

    code, clean = await api("GET", "workspaces/changer/changes")
    assert code == 200, clean
    assert clean["state"] == "branch" and clean["branch"] == "main" and clean["root"] == project
    assert clean["files"] == [] and clean["message"] == "nothing changed since the last commit"
    assert clean["head"]["subject"] == "second commit"
    assert [c["subject"] for c in clean["commits"]] == ["second commit", "first"]
    assert clean["upstream"] == "origin/main" and (clean["ahead"], clean["behind"]) == (0, 0)

    edit(container, EDITS, project)
    code, changed = await api("GET", "workspaces/changer/changes")
    assert code == 200, changed
    files = {f["path"]: f for f in changed["files"]}
    assert set(files) == {"app.py", "old.txt", "src/new.py", "logo.png"}
    assert (files["app.py"]["status"], files["app.py"]["added"], files["app.py"]["removed"]) == ("modified", 4, 1)
    assert (files["old.txt"]["status"], files["old.txt"]["removed"]) == ("deleted", 1)
    assert (files["src/new.py"]["status"], files["src/new.py"]["added"]) == ("untracked", 3)
    assert files["logo.png"]["binary"] is True

    code, whole = await api("GET", "workspaces/changer/changes/diff")
    assert code == 200, whole
    assert "-    return 1\n+    return 2\n" in whole["diff"] and "+++ b/src/new.py" in whole["diff"]
    assert whole["binary"] == ["logo.png"] and whole["truncated"] is False
    code, one = await api("GET", "workspaces/changer/changes/diff", params={"file": "app.py"})
    assert code == 200 and one["diff"].startswith("diff --git a/app.py b/app.py") and "new.py" not in one["diff"]
    code, older = await api("GET", "workspaces/changer/changes/diff", params={"file": "CHANGES", "base": "HEAD~1"})
    assert code == 200 and "+v1\n" in older["diff"]
    code, cut = await api("GET", "workspaces/changer/changes/diff", params={"maxBytes": "100"})
    assert code == 200 and cut["truncated"] is True and len(cut["diff"].encode()) <= 100

    # The home is no repository: a state, not an error.
    code, home = await api("GET", "workspaces/changer/changes", params={"dir": HOME})
    assert code == 200 and home["state"] == "no_repository" and "not in a git repository" in home["message"]

    for params, words in (({"file": "../../../etc/passwd"}, "outside the repository"),
                          ({"file": "nowhere.txt"}, "not in the repository"),
                          ({"base": "no-such-ref"}, "not a commit"),
                          ({"base": "--output=/tmp/x"}, "not a git revision"),
                          ({"dir": "/etc"}, "outside the workspace's home"),
                          ({"dir": "missing"}, "does not exist"),
                          ({"maxBytes": "0"}, "maxBytes")):
        code, err = await api("GET", "workspaces/changer/changes/diff", params=params)
        assert code == 400, (params, err)
        assert err["error"]["code"] == "invalid" and words in err["error"]["message"], (params, err)
    code, err = await api("GET", "workspaces/nobody/changes")
    assert code == 404

    # A task's end tells listeners the project changed, with the new totals.
    start_model(container, [
        {"tool": "write", "input": {"filePath": f"{project}/notes.md", "content": "one\ntwo\n"}},
        "Wrote the notes.",
    ])
    events = await jp_ws_fetch("perry", "api", "events", params={"workspace": "changer"})
    try:
        code, task = await api("POST", "workspaces/changer/tasks", {"prompt": "write notes.md"})
        assert code == 201, task
        event, _ = await next_event(events, lambda e: e["type"] == "changes.updated", timeout=180)
    finally:
        events.close()
    assert event["workspace"] == "changer" and event["data"]["taskId"] == task["id"]
    assert event["data"]["directory"] == project and event["data"]["branch"] == "main"
    assert event["data"]["totals"]["files"] == 5
    code, done = await api("GET", f"workspaces/changer/tasks/{task['id']}")
    assert done["status"] == "succeeded", done
    code, after = await api("GET", "workspaces/changer/changes")
    notes = next(f for f in after["files"] if f["path"] == "notes.md")
    assert (notes["status"], notes["added"]) == ("untracked", 2)


async def test_changes_of_an_empty_repository_and_a_detached_head(api, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "states"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}states")
    edit(container, "git init -q -b main fresh && printf 'x\\n' > fresh/a.txt", HOME)
    code, empty = await api("GET", "workspaces/states/changes", params={"dir": "fresh"})
    assert code == 200 and empty["state"] == "empty" and "no commits yet" in empty["message"]
    assert [(f["path"], f["status"], f["added"]) for f in empty["files"]] == [("a.txt", "untracked", 1)]
    edit(container, "cd fresh && git add a.txt && git -c user.name=t -c user.email=t@e.invalid commit -qm one && "
                    "git -c user.name=t -c user.email=t@e.invalid commit -q --allow-empty -m two && "
                    "git checkout -q HEAD~1", HOME)
    code, detached = await api("GET", "workspaces/states/changes", params={"dir": f"{HOME}/fresh"})
    assert code == 200 and detached["state"] == "detached" and detached["branch"] is None
    assert detached["head"]["subject"] == "one" and "detached" in detached["message"]


def test_perry_status_and_diff(served, server, tmp_path, docker_client):
    repo = make_repo(tmp_path)
    perry(served, "create", "clidiff", "--clone", str(repo))
    project = requests.get(f"{server.url}/perry/api/workspaces/clidiff", headers=server.headers,
                           timeout=30).json()["projectDir"]
    edit(docker_client.containers.get(f"{TEST_PREFIX}clidiff"), EDITS, project)

    out = perry(served, "status", "clidiff").stdout
    assert "main" in out and "origin/main" in out and "second commit" in out
    lines = {line.split()[-1]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["app.py"][:3] == ["modified", "+4", "-1"]
    assert lines["src/new.py"][:2] == ["untracked", "+3"]
    assert lines["old.txt"][:3] == ["deleted", "+0", "-1"]
    assert lines["logo.png"][:2] == ["untracked", "binary"]
    data = json.loads(perry(served, "status", "clidiff", "--json").stdout)
    assert data["totals"]["files"] == 4

    # Piped: a plain patch that git applies, with no colour codes.
    patch = perry(served, "diff", "clidiff", "app.py").stdout
    assert patch.startswith("diff --git a/app.py b/app.py") and "\x1b[" not in patch
    assert "+    return 2\n" in patch
    check = subprocess.run(["git", "-C", str(repo), "apply", "--check", "-"], input=patch, text=True,
                           capture_output=True)
    assert check.returncode == 0, check.stderr
    r = perry(served, "diff", "clidiff")
    assert "+++ b/src/new.py" in r.stdout and "binary file logo.png changed" in r.stderr

    # On a terminal the same diff is coloured: additions green, deletions red.
    main, child = pty.openpty()
    proc = subprocess.run([PERRY, "diff", "clidiff", "app.py"], env={**served, "NO_COLOR": ""}, stdout=child,
                          stderr=subprocess.PIPE, timeout=120)
    os.close(child)
    coloured = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the pty's other end is closed: everything was read
            break
        if not chunk:
            break
        coloured += chunk
    os.close(main)
    assert proc.returncode == 0, proc.stderr
    assert b"\x1b[32m+    return 2" in coloured and b"\x1b[31m-    return 1" in coloured

    # %perry status / %perry diff: the same commands, their data with an HTML view.
    client = PerryClient(server.url, token=server.token_file.read_text().strip())
    try:
        shown = magic("status clidiff", client=client)
        assert shown["totals"]["files"] == 4
        page = shown._repr_html_()
        assert "perry-changed-files" in page and "src/new.py" in page and "second commit" in page
        shown = magic("diff clidiff app.py", client=client)
        assert shown["diff"] == patch
        page = shown._repr_html_()
        assert '<div class="perry-diff-good" style="background:#e6ffec;color:#1a7f37;">+    return 2</div>' in page
        assert '<div class="perry-diff-bad"' in page
    finally:
        client.close()

    r = perry(served, "diff", "clidiff", "../../etc/passwd", check=False)
    assert r.returncode == 1 and "outside the repository" in r.stderr and "Traceback" not in r.stderr
    r = perry(served, "diff", "clidiff", "--base", "nope", check=False)
    assert r.returncode == 1 and "not a commit" in r.stderr
    perry(served, "delete", "clidiff", "--yes")
