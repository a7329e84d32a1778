"""`perry-worker changes [diff]` with real git in temporary repositories."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from perry_worker.__main__ import main

GIT_ENV = {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.org", "GIT_COMMITTER_NAME": "Ada",
           "GIT_COMMITTER_EMAIL": "ada@example.org", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


@pytest.fixture(autouse=True)
def git_identity(monkeypatch):
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=str(repo), check=True, capture_output=True, text=True).stdout


def write(repo, path, text):
    full = repo / path
    full.parent.mkdir(parents=True, exist_ok=True)
    (full.write_bytes if isinstance(text, bytes) else full.write_text)(text)


def worker(capsys, *argv):
    rc = main(["changes", *argv, "--json"])
    return rc, json.loads(capsys.readouterr().out)


@pytest.fixture
def repo(tmp_path):
    """A repository with one commit of each kind of file, then one change of each kind."""
    r = tmp_path / "project"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    write(r, "keep.txt", "".join(f"line {i}\n" for i in range(10)))
    write(r, "edit.py", "a = 1\nb = 2\nc = 3\n")
    write(r, "gone.txt", "one\ntwo\n")
    write(r, "old_name.md", "".join(f"text {i}\n" for i in range(20)))
    write(r, "logo.bin", b"\x89PNG\0\0\x01\x02")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "first commit")
    write(r, "keep.txt", "".join(f"line {i}\n" for i in range(10)) + "line 10\n")
    git(r, "commit", "-q", "-am", "second: one more line")
    write(r, "edit.py", "a = 1\nb = 20\nc = 3\nd = 4\n")          # +2 -1
    (r / "gone.txt").unlink()                                    # -2
    (r / "docs").mkdir()
    git(r, "mv", "old_name.md", "docs/new_name.md")              # renamed, 0/0
    write(r, "added.txt", "new\nfile\nthree\n")                   # staged addition, +3
    git(r, "add", "added.txt")
    write(r, "notes/untracked.txt", "u1\nu2\n")                   # untracked, +2
    write(r, "logo.bin", b"\x89PNG\0\0\x03\x04\x05")              # binary
    write(r, "new.bin", b"\0\1\2\3")                               # untracked binary
    return r


def by_path(answer):
    return {f["path"]: f for f in answer["files"]}


def test_state_of_a_repository_with_every_kind_of_change(repo, capsys):
    rc, answer = worker(capsys, "--dir", str(repo / "notes"))
    assert rc == 0
    assert answer["repository"] is True and answer["state"] == "branch"
    assert answer["root"] == str(repo) and answer["directory"] == str(repo / "notes")
    assert answer["branch"] == "main" and answer["upstream"] is None and answer["ahead"] is None
    assert answer["head"]["subject"] == "second: one more line" and len(answer["head"]["sha"]) == 40
    assert [c["subject"] for c in answer["commits"]] == ["second: one more line", "first commit"]
    assert answer["commits"][0]["author"] == "Ada"
    files = by_path(answer)
    assert set(files) == {"edit.py", "gone.txt", "docs/new_name.md", "added.txt", "notes/untracked.txt",
                          "logo.bin", "new.bin"}
    assert (files["edit.py"]["status"], files["edit.py"]["added"], files["edit.py"]["removed"]) == ("modified", 2, 1)
    assert (files["gone.txt"]["status"], files["gone.txt"]["added"], files["gone.txt"]["removed"]) == ("deleted", 0, 2)
    assert files["docs/new_name.md"]["status"] == "renamed" and files["docs/new_name.md"]["oldPath"] == "old_name.md"
    assert (files["docs/new_name.md"]["added"], files["docs/new_name.md"]["removed"]) == (0, 0)
    assert (files["added.txt"]["status"], files["added.txt"]["added"], files["added.txt"]["staged"]) == ("added", 3, True)
    assert (files["notes/untracked.txt"]["status"], files["notes/untracked.txt"]["added"]) == ("untracked", 2)
    assert files["logo.bin"]["binary"] is True and files["logo.bin"]["added"] is None
    assert files["new.bin"]["binary"] is True and files["new.bin"]["status"] == "untracked"
    assert files["edit.py"]["binary"] is False
    assert answer["totals"] == {"files": 7, "added": 7, "removed": 3}


def test_upstream_ahead_and_behind(repo, tmp_path, capsys):
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "fetch", "-q", "origin")
    git(repo, "branch", "-q", "--set-upstream-to=origin/main")
    git(repo, "commit", "-q", "-m", "local only")  # the staged rename and addition
    rc, answer = worker(capsys, "--dir", str(repo), "--commits", "1")
    assert rc == 0
    assert (answer["upstream"], answer["ahead"], answer["behind"]) == ("origin/main", 1, 0)
    assert [c["subject"] for c in answer["commits"]] == ["local only"]


def test_no_repository_is_a_state(tmp_path, capsys):
    rc, answer = worker(capsys, "--dir", str(tmp_path))
    assert rc == 0
    assert answer["repository"] is False and answer["state"] == "no_repository"
    assert "not in a git repository" in answer["message"] and answer["files"] == []
    rc, answer = worker(capsys, "diff", "--dir", str(tmp_path))
    assert rc == 0 and answer["diff"] == "" and "not in a git repository" in answer["message"]


def test_empty_repository_shows_its_files_as_new(tmp_path, capsys):
    git(tmp_path, "init", "-q", "-b", "main")
    write(tmp_path, "staged.txt", "a\nb\n")
    git(tmp_path, "add", "staged.txt")
    write(tmp_path, "loose.txt", "c\n")
    rc, answer = worker(capsys, "--dir", str(tmp_path))
    assert rc == 0
    assert answer["state"] == "empty" and answer["head"] is None and answer["commits"] == []
    assert "no commits yet" in answer["message"]
    files = by_path(answer)
    assert (files["staged.txt"]["status"], files["staged.txt"]["added"]) == ("added", 2)
    assert (files["loose.txt"]["status"], files["loose.txt"]["added"]) == ("untracked", 1)
    rc, answer = worker(capsys, "diff", "--dir", str(tmp_path))
    assert rc == 0
    assert "+++ b/staged.txt" in answer["diff"] and "+++ b/loose.txt" in answer["diff"]


def test_detached_head(repo, capsys):
    git(repo, "stash", "-q", "--include-untracked")
    first = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    git(repo, "checkout", "-q", first)
    rc, answer = worker(capsys, "--dir", str(repo))
    assert rc == 0
    assert answer["state"] == "detached" and answer["branch"] is None
    assert answer["head"]["sha"] == first and first[:12] in answer["message"]
    assert answer["files"] == [] and answer["commits"][0]["subject"] == "first commit"


def test_diff_of_the_work_tree(repo, capsys):
    rc, answer = worker(capsys, "diff", "--dir", str(repo))
    assert rc == 0 and answer["truncated"] is False and answer["base"] == "HEAD"
    text = answer["diff"]
    assert "-b = 2\n+b = 20\n" in text and "+d = 4\n" in text
    assert "deleted file mode" in text and "-one\n-two\n" in text
    assert "rename from old_name.md\nrename to docs/new_name.md" in text
    assert "--- /dev/null\n+++ b/notes/untracked.txt\n@@ -0,0 +1,2 @@\n+u1\n+u2\n" in text
    assert sorted(answer["binary"]) == ["logo.bin", "new.bin"]
    assert "PNG" not in text and answer["bytes"] == len(text.encode())


def test_diff_of_one_file_and_against_a_base(repo, capsys):
    rc, answer = worker(capsys, "diff", "--dir", str(repo), "--file", "edit.py")
    assert rc == 0 and answer["file"] == "edit.py"
    assert answer["diff"].startswith("diff --git a/edit.py b/edit.py") and "keep.txt" not in answer["diff"]
    rc, answer = worker(capsys, "diff", "--dir", str(repo / "notes"), "--file", "untracked.txt")
    assert rc == 0 and "+u1\n" in answer["diff"] and answer["files"] == 1
    rc, answer = worker(capsys, "diff", "--dir", str(repo), "--file", "keep.txt", "--base", "HEAD~1")
    assert rc == 0 and "+line 10\n" in answer["diff"] and answer["base"] == "HEAD~1"


def test_huge_diff_is_cut_and_says_so(repo, capsys):
    write(repo, "big.txt", "".join(f"a long line of generated text number {i}\n" for i in range(50000)))
    rc, answer = worker(capsys, "diff", "--dir", str(repo), "--max-bytes", "10000")
    assert rc == 0 and answer["truncated"] is True
    assert len(answer["diff"].encode()) <= 10000 and answer["diff"].endswith("\n")
    assert answer["bytes"] > 2_000_000 and "the first" in answer["message"]


@pytest.mark.parametrize("argv, words", [
    (("--file", "../outside.txt"), "outside the repository"),
    (("--file", "/etc/passwd"), "outside the repository"),
    (("--file", "no/such/file.txt"), "not in the repository"),
    (("--base", "no-such-branch"), "not a commit"),
    (("--base=--output=/tmp/x",), "not a revision"),
    (("--max-bytes", "0"), "more than 0"),
])
def test_bad_file_or_base_is_a_bad_request(repo, capsys, argv, words):
    rc, answer = worker(capsys, "diff", "--dir", str(repo), *argv)
    assert rc == 2
    assert answer["error"]["code"] == "bad_request" and words in answer["error"]["message"]


def test_missing_directory_is_a_bad_request(tmp_path, capsys):
    rc, answer = worker(capsys, "--dir", str(tmp_path / "nope"))
    assert rc == 2 and "does not exist" in answer["error"]["message"]


def test_thousands_of_untracked_files_are_counted_and_the_list_is_cut(tmp_path, capsys, monkeypatch):
    from perry_worker import changes

    monkeypatch.setattr(changes, "MAX_FILES", 50)
    git(tmp_path, "init", "-q", "-b", "main")
    for i in range(120):
        write(tmp_path, f"node_modules/pkg{i}/index.js", "x\n")
    rc, answer = worker(capsys, "--dir", str(tmp_path))
    assert rc == 0 and len(answer["files"]) == 50
    assert answer["totals"] == {"files": 120, "added": 120, "removed": 0}
    assert answer["message"] == "120 changed files; the first 50 are listed"
