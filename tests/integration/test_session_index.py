"""The session list from the workspace's long-lived lister, against a new `perry-worker sessions list`.

The lister (`perry-worker sessions serve`, one exec kept open per listed workspace) answers
from what its readers remember; these tests check with real OpenCode writes and appended
JSONL transcripts that what it answers is what a fresh read of the stores gives, before and
after the stores change.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from ..conftest import TEST_PREFIX
from .agents import add_replies, opencode, start_model

pytestmark = pytest.mark.engine

FIXTURES = Path(__file__).parent.parent / "fixtures"


def fresh_list(container) -> list:
    """The list a new worker process reads from the stores, remembering nothing."""
    r = container.exec_run(["perry-worker", "sessions", "list", "--json"], user="workspace",
                           environment={"HOME": "/home/workspace"}, workdir="/home/workspace", demux=True)
    assert r.exit_code == 0, r.output
    return json.loads(r.output[0])


def listers(container) -> list[str]:
    out = container.exec_run(["ps", "-o", "args=", "-u", "workspace"]).output.decode()
    return [line for line in out.splitlines() if "sessions serve" in line]


async def listed(api, name: str, agent: str | None = None) -> list:
    code, answer = await api("GET", f"workspaces/{name}/sessions", params={"agent": agent} if agent else None)
    assert code == 200, answer
    return answer["sessions"]


async def test_opencode_list_from_the_lister_follows_real_writes(api, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "index"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}index")
    start_model(container, ["First answer."], title="First session")
    assert opencode(container, "one").exit_code == 0

    first = await listed(api, "index")
    assert [s["title"] for s in first] == ["First session"]
    assert first == fresh_list(container)
    assert len(listers(container)) == 1  # the list came from the long-lived lister
    assert await listed(api, "index") == first  # unchanged: the same answer from memory

    # A new message in the session, then a new session: both real OpenCode writes.
    add_replies(container, ["Second answer."])
    assert opencode(container, "--session", first[0]["sessionId"], "two").exit_code == 0
    after_message = await listed(api, "index")
    assert after_message[0]["messageCount"] == first[0]["messageCount"] + 2
    assert after_message[0]["lastActivity"] > first[0]["lastActivity"]
    assert after_message == fresh_list(container)

    add_replies(container, ["Third answer."])
    assert opencode(container, "three").exit_code == 0
    after_session = await listed(api, "index")
    assert len(after_session) == 2 and after_session[1] == after_message[0]
    assert after_session == fresh_list(container)
    assert await listed(api, "index", agent="opencode") == after_session
    assert await listed(api, "index", agent="claude") == []
    assert len(listers(container)) == 1  # one lister served every list

    # OpenCode keeps each session's token and cost totals on its row; they are the sums
    # over its assistant messages (what the list shows).
    check = container.exec_run(["python3", "-c", SUMS], user="workspace", environment={"HOME": "/home/workspace"})
    rows = json.loads(check.output)
    assert len(rows) == 2
    for row in rows:
        assert row["columns"] == row["sums"] and row["columns"][0] > 0, row
        shown = next(s for s in after_session if s["sessionId"] == row["id"])
        assert [shown["tokens"][k] for k in ("input", "output", "reasoning", "cacheRead", "cacheWrite")] \
            == row["columns"][:5]


# The session row's totals next to the sums over its messages, read with python3's sqlite3.
SUMS = """
import json, sqlite3
db = sqlite3.connect('file:/home/workspace/.local/share/opencode/opencode.db?mode=ro', uri=True)
rows = []
for sid, *cols in db.execute('SELECT id, tokens_input, tokens_output, tokens_reasoning, tokens_cache_read, '
                             'tokens_cache_write, cost FROM session'):
    sums = [0, 0, 0, 0, 0, 0.0]
    for (data,) in db.execute('SELECT data FROM message WHERE session_id = ?', (sid,)):
        m = json.loads(data)
        if m.get('role') != 'assistant':
            continue
        t = m.get('tokens') or {}
        c = t.get('cache') or {}
        for i, v in enumerate((t.get('input'), t.get('output'), t.get('reasoning'), c.get('read'), c.get('write'),
                               m.get('cost'))):
            sums[i] += v or 0
    rows.append({'id': sid, 'columns': [*cols[:5], round(cols[5], 10)], 'sums': [*sums[:5], round(sums[5], 10)]})
print(json.dumps(rows))
"""


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o644, 1000, 1000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def test_jsonl_transcripts_appended_and_added_show_in_the_list(api, docker_client):
    code, ws = await api("POST", "workspaces", {"name": "jsonl"})
    assert code == 201, ws
    container = docker_client.containers.get(f"{TEST_PREFIX}jsonl")
    claude = sorted((FIXTURES / "claude" / "projects" / "-home-workspace-ccproj").glob("*.jsonl"))
    codex = sorted((FIXTURES / "codex" / "sessions").rglob("*.jsonl"))
    project = ".claude/projects/-home-workspace-ccproj"
    container.exec_run(["mkdir", "-p", f"/home/workspace/{project}", "/home/workspace/.codex/sessions/2026/11/25"],
                       user="workspace")
    container.put_archive("/home/workspace", _tar({f"{project}/{claude[0].name}": claude[0].read_bytes()}))
    first = await listed(api, "jsonl")
    assert first == fresh_list(container) and len(first) == 1
    assert len(listers(container)) == 1

    # The same transcript grows: a real Claude Code line appended (its next user turn).
    lines = [json.loads(line) for line in claude[0].read_text().splitlines() if line.strip()]
    turn = next(line for line in lines if line.get("type") == "user" and isinstance(line["message"].get("content"), str))
    leaf = [line["uuid"] for line in lines if line.get("uuid")][-1]
    appended = dict(turn, uuid="0a0a0a0a-0000-4000-8000-000000000001", parentUuid=leaf,
                    timestamp="2027-01-01T00:00:00.000Z", message=dict(turn["message"], content="one more question"))
    container.exec_run(["python3", "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')",
                        f"/home/workspace/{project}/{claude[0].name}", json.dumps(appended)], user="workspace")
    grown = await listed(api, "jsonl")
    assert grown[0]["messageCount"] == first[0]["messageCount"] + 1
    assert grown[0]["lastActivity"] == "2027-01-01T00:00:00.000Z"
    assert grown == fresh_list(container)

    # New files: another Claude transcript and a Codex rollout.
    container.put_archive("/home/workspace", _tar({
        f"{project}/{claude[1].name}": claude[1].read_bytes(),
        f".codex/sessions/2026/11/25/{codex[0].name}": codex[0].read_bytes(),
    }))
    more = await listed(api, "jsonl")
    assert len(more) == 3 and {s["agent"] for s in more} == {"claude", "codex"}
    assert more == fresh_list(container)
    assert await listed(api, "jsonl", agent="codex") == [s for s in more if s["agent"] == "codex"]
    assert len(listers(container)) == 1
