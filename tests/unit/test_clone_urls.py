"""Redacting credentials in clone URLs, and splitting them off for git's credential helper."""

from __future__ import annotations

import pytest

from perry_jupyter.core.clone import redact, split_credentials


@pytest.mark.parametrize("text, shown", [
    ("https://user:tok@host/r.git", "https://***@host/r.git"),
    ("https://ghp_tok@github.com/o/r.git", "https://***@github.com/o/r.git"),  # a token as the user
    ("https://u:p@ss@host:8443/r", "https://***@host:8443/r"),  # a raw "@" in the password
    ("fatal: from http://a:b@h/x and HTTPS://c:d@h/y.", "fatal: from http://***@h/x and HTTPS://***@h/y."),
    ("ssh://git@host/r.git", "ssh://git@host/r.git"),  # an SSH login name is no secret
    ("ssh://git:pw@host/r.git", "ssh://***@host/r.git"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ("https://host/r.git", "https://host/r.git"),
    ("/home/me/repo", "/home/me/repo"),
])
def test_redact(text, shown):
    assert redact(text) == shown


def test_split_credentials():
    assert split_credentials("https://us%40er:p%3Ass@host:8443/r.git?x=1") == (
        "https://host:8443/r.git?x=1", "us@er", "p:ss")
    assert split_credentials("https://tok@host/r") == ("https://host/r", "tok", None)
    assert split_credentials("https://host/r") == ("https://host/r", None, None)
    assert split_credentials("ssh://git@host/r") == ("ssh://git@host/r", None, None)
