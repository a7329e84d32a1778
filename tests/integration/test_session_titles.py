"""Sessions tell themselves apart: a session OpenCode could not name is titled by its first prompt.

The real OpenCode CLI against the stand-in model, whose title answer is blank (as when the
title request fails): OpenCode keeps its default title, `New session - <time>`.
"""

from __future__ import annotations

import json
import re

import pytest

from ..conftest import TEST_PREFIX
from .agents import opencode, start_model

pytestmark = pytest.mark.engine

PROMPT = "Refactor the configuration loader so that every setting is read once, validated and then frozen"


async def test_an_untitled_opencode_session_shows_its_first_prompt(api, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "titles"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}titles")
    start_model(container, [], title=" ", default="Will do.")  # blank: nothing to name it by
    r = opencode(container, PROMPT)
    assert r.exit_code == 0, r.output
    listed = json.loads(container.exec_run(["opencode", "session", "list", "--format", "json"], user="workspace",
                                           workdir="/home/workspace", environment={"HOME": "/home/workspace"}).output)
    [own] = listed
    assert re.fullmatch(r"New session - \d{4}-\d\d-\d\dT[\d:.]+Z", own["title"]), own  # OpenCode's default

    code, answer = await api("GET", "workspaces/titles/sessions")
    [session] = answer["sessions"]
    code, page = await api("GET", f"workspaces/titles/sessions/{session['sessionId']}/messages")
    stored = page["messages"][0]["parts"][0]["text"]  # the prompt as OpenCode stored it
    assert PROMPT in stored
    assert session["title"] == stored[:72].rstrip() + "\u2026", session
    code, one = await api("GET", f"workspaces/titles/sessions/{session['sessionId']}")
    assert one["title"] == session["title"]
