"""The changes views: `perry status` / `perry diff` and their `%perry` HTML, drawn from one record."""

from __future__ import annotations

import re

from click.testing import CliRunner

from perry_jupyter import present
from perry_jupyter.notebook import draw as notebook
from tests.unit.test_present import _draw_command, drawn_in_terminal

CHANGES = {"directory": "/home/workspace/proj", "repository": True, "root": "/home/workspace/proj",
           "state": "branch", "message": None, "branch": "main", "upstream": "origin/main", "ahead": 2, "behind": 0,
           "head": {"sha": "0123456789abcdef0123", "subject": "fix <b>it</b>"},
           "files": [{"path": "app.py", "status": "modified", "added": 3, "removed": 1, "binary": False},
                     {"path": "new.py", "oldPath": "old.py", "status": "renamed", "added": 0, "removed": 0},
                     {"path": "logo.png", "status": "untracked", "added": None, "removed": None, "binary": True}],
           "totals": {"files": 3, "added": 3, "removed": 1},
           "commits": [{"sha": "0123456789abcdef0123", "author": "Ada", "date": "2026-01-01T00:00:00Z",
                        "subject": "fix <b>it</b>"}]}
DIFF = {"diff": "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-a <x>\n+b\n",
        "binary": ["logo.png"], "truncated": True, "message": "the diff is 9000 bytes; the first 60 are shown"}


def test_status_in_a_terminal():
    printed, code = drawn_in_terminal(present.changes(CHANGES, "alpha"))
    assert code == 0
    assert re.search(r"branch\s+main", printed) and re.search(r"upstream\s+origin/main\s+↑2 ↓0", printed)
    assert re.search(r"HEAD\s+0123456789ab fix <b>it</b>", printed)
    assert re.search(r"modified\s+\+3\s+-1\s+app.py", printed)
    assert re.search(r"renamed\s+\+0\s+-0\s+old.py → new.py", printed)
    assert re.search(r"untracked\s+binary\s+logo.png", printed)
    assert re.search(r"0123456789\s+\S+\s+Ada\s+fix <b>it</b>", printed)
    assert "perry diff alpha [FILE] shows the lines" in printed


def test_no_repository_is_said():
    data = {**CHANGES, "repository": False, "root": None, "state": "no_repository", "files": [], "commits": [],
            "message": "/home/workspace is not in a git repository", "head": None}
    printed, code = drawn_in_terminal(present.changes(data, "alpha"))
    assert code == 0 and "/home/workspace is not in a git repository" in printed and "branch" not in printed


def test_diff_coloured_on_a_terminal_and_its_notes_apart():
    result = CliRunner().invoke(_draw_command(present.diff(DIFF), []), [], color=True)
    assert result.exception is None
    assert "\x1b[32m+b\x1b[0m\n" in result.stdout and "\x1b[31m-a <x>\x1b[0m\n" in result.stdout
    assert "\x1b[36m@@ -1 +1 @@" in result.stdout and "\x1b[1m+++ b/app.py" in result.stdout
    assert "truncated: the diff is 9000 bytes" in result.stderr and "binary file logo.png" in result.stderr
    plain = CliRunner().invoke(_draw_command(present.diff(DIFF), []), [], color=False)
    assert plain.stdout == DIFF["diff"]


def test_the_notebook_draws_the_same_escaped():
    page = notebook.html(present.changes(CHANGES, "alpha", prog="%perry"))
    assert "<b>it</b>" not in page and "fix &lt;b&gt;it&lt;/b&gt;" in page
    assert "perry-changed-files" in page and "perry-commits" in page and "<code>%perry diff alpha [FILE]</code>" in page
    page = notebook.html(present.diff(DIFF))
    assert '<div class="perry-diff-bad" style="background:#ffebe9;color:#cf222e;">-a &lt;x&gt;</div>' in page
    assert 'class="perry-diff-good"' in page and 'class="perry-diff-busy"' in page
    assert "truncated: the diff is 9000 bytes" in page and "binary file logo.png" in page
