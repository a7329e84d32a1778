"""The Changes view: a workspace's changed files with +/- lines, a file's coloured diff, a reload
when a task ends, and a follow-up that continues the last task's session."""

from __future__ import annotations

import re
import secrets
import subprocess

import pytest

from .conftest import E2E_PREFIX
from .test_sessions import HOME, expect, run, serve_model

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(300)]

NAME = f"chg-{secrets.token_hex(2)}"
REPLIES = {
    "title": "Add a changelog",
    "default": "OK.",
    "replies": [
        {"text": "Adding it.", "tool": "write",
         "input": {"filePath": f"{HOME}/proj/CHANGELOG.md", "content": "# Changes\n\n- a greeting\n"}},
        "Added CHANGELOG.md.",
        "Followed up.",
    ],
}


@pytest.fixture(scope="module")
def project(lab, docker_client, tmp_path_factory):
    """A workspace whose project is a clone with a change of each kind, and OpenCode on the stand-in model."""
    repo = tmp_path_factory.mktemp("src") / "proj"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "greet.py").write_text("def greet():\n    return 'hi'\n\n\nprint(greet())\n")
    (repo / "old.txt").write_text("obsolete\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    r = lab.api("POST", "workspaces", json={"name": NAME, "clone": str(repo)})
    assert r.status_code == 201, r.text
    project_dir = r.json()["projectDir"]
    container = docker_client.containers.get(f"{E2E_PREFIX}{NAME}")
    run(container, "sh", "-ec", f"cd {project_dir}; printf \"def greet():\\n    return 'hello'\\n\\n\\n"
                                "print(greet())\\n\" > greet.py; rm old.txt; printf 'x\\ny\\n' > notes.txt")
    serve_model(container, REPLIES)
    return container, project_dir


def test_changed_files_and_a_coloured_diff(page, lab, project):
    page.locator('.jp-SideBar [data-id="perry-panel"]').click()
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    expect()(item).to_have_attribute("data-status", "running")
    item.locator(".perry-ws-toggle").click()
    changes = item.locator(".perry-changes")
    expect()(changes.locator(".perry-branch")).to_have_text("main")
    files = changes.locator(".perry-changed-files li")
    expect()(files).to_have_count(3)
    greet = changes.locator('li[data-path="greet.py"]')
    expect()(greet).to_have_attribute("data-status", "modified")
    expect()(greet.locator(".perry-added")).to_have_text("+1")
    expect()(greet.locator(".perry-removed")).to_have_text("−1")
    expect()(changes.locator('li[data-path="old.txt"]')).to_have_attribute("data-status", "deleted")
    expect()(changes.locator('li[data-path="notes.txt"] .perry-added')).to_have_text("+2")

    greet.locator("button").click()
    diff = changes.locator(".perry-diff")
    expect()(diff.locator(".perry-diff-del")).to_have_text("-    return 'hi'")
    expect()(diff.locator(".perry-diff-add")).to_have_text("+    return 'hello'")
    expect()(diff.locator(".perry-diff-hunk")).to_have_count(1)
    # Coloured: additions green on green, deletions red on red.
    add_bg = diff.locator(".perry-diff-add").evaluate("el => getComputedStyle(el).backgroundColor")
    del_bg = diff.locator(".perry-diff-del").evaluate("el => getComputedStyle(el).backgroundColor")
    assert re.fullmatch(r"rgba\(46, 160, 67, 0\.\d+\)", add_bg), add_bg
    assert re.fullmatch(r"rgba\(248, 81, 73, 0\.\d+\)", del_bg), del_bg
    expect()(changes.locator(".perry-diff-truncated")).to_have_count(0)
    changes.scroll_into_view_if_needed()
    page.shot("changes-diff")
    assert not page.perry_errors


def test_a_task_end_reloads_the_view_and_the_follow_up_continues_its_session(page, lab, project):
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    changes = item.locator(".perry-changes")
    # No task yet: nothing to follow up.
    expect()(changes.locator(".perry-follow-up")).to_have_count(0)
    r = lab.api("POST", f"workspaces/{NAME}/tasks", json={"prompt": "add a changelog"})
    assert r.status_code == 201, r.text
    # The task's end (changes.updated) brings the new file in without a click.
    expect()(changes.locator('li[data-path="CHANGELOG.md"] .perry-added')).to_have_text("+3", timeout=120_000)
    first = lab.api("GET", f"workspaces/{NAME}/tasks/{r.json()['id']}").json()
    assert first["status"] == "succeeded" and first["sessionId"], first

    box = changes.locator(".perry-follow-up textarea")
    box.fill("Also mention the date")
    changes.locator(".perry-follow-up button[type=submit]").click()
    expect()(box).to_have_value("")
    tasks = lab.api("GET", f"workspaces/{NAME}/tasks").json()["tasks"]
    assert len(tasks) == 2 and tasks[0]["prompt"] == "Also mention the date"
    assert tasks[0]["sessionId"] == first["sessionId"] and tasks[0]["agent"] == first["agent"]
    page.shot("changes-follow-up")
    assert not page.perry_errors


def test_a_huge_diff_says_it_was_cut(page, lab, project):
    container, project_dir = project
    run(container, "sh", "-ec", f"cd {project_dir}; seq 1 200000 > big.txt")
    item = page.locator(f'.perry-workspace[data-workspace="{NAME}"]')
    changes = item.locator(".perry-changes")
    changes.get_by_role("button", name="Refresh").click()
    big = changes.locator('li[data-path="big.txt"]')
    expect()(big.locator(".perry-added")).to_have_text("+200000")
    big.locator("button").click()
    expect()(changes.locator(".perry-diff-truncated")).to_contain_text("Truncated")
    expect()(changes.locator(".perry-diff-truncated")).to_contain_text("the first")
    page.shot("changes-truncated")
    assert not page.perry_errors
