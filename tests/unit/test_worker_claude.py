"""perry_worker's Claude Code reader on transcripts the real Claude Code 2.1.197 wrote.

The counts are what Claude Code's own `--resume` picker shows in its preview ("N messages"),
checked by hand in tmux against these very sessions: 5, 5 and 3 for the interactive ones
(the `claude -p` session is not offered by the picker; the same rule gives 5).
"""

from __future__ import annotations

import json
import uuid as uuidlib

import pytest

from perry_worker.__main__ import main
from perry_worker.claude import ClaudeReader
from perry_worker.sessions import PROMPT_TITLE_LIMIT, SessionStore
from tests.fixtures.worker_homes import (
    CLAUDE_P,
    CLAUDE_PARALLEL,
    CLAUDE_TITLED,
    CLAUDE_UNTITLED,
    claude_dir,
    make_home,
)


@pytest.fixture
def home(tmp_path):
    return make_home(tmp_path, opencode=False, opencode_json=False, codex=False)


def run_json(capsys, *argv):
    rc = main(list(argv))
    return rc, json.loads(capsys.readouterr().out)


def append(path, *records, raw=None):
    with open(path, "a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
        if raw is not None:
            f.write(raw)


class Conversation:
    """Lines in Claude Code's transcript shape, for the cases the fixtures do not show."""

    def __init__(self, session_id, cwd="/home/workspace/p", day="2026-01-01", last=None):
        self.sid = session_id
        self.cwd = cwd
        self.day = day
        self.last = last
        self.t = 0

    def _base(self, kind, parent):
        self.t += 1
        u = str(uuidlib.uuid4())
        rec = {"parentUuid": parent if parent is not None else self.last, "isSidechain": False, "type": kind,
               "uuid": u, "timestamp": "%sT00:00:%02d.000Z" % (self.day, self.t), "cwd": self.cwd,
               "sessionId": self.sid, "version": "2.1.197", "userType": "external"}
        self.last = u
        return rec

    def user(self, content, parent=None, **extra):
        rec = self._base("user", parent)
        rec["message"] = {"role": "user", "content": content}
        rec.update(extra)
        return rec

    def assistant(self, blocks, mid=None, parent=None, usage=(10, 2)):
        rec = self._base("assistant", parent)
        rec["message"] = {"id": mid or "msg_" + uuidlib.uuid4().hex[:12], "type": "message", "role": "assistant",
                          "model": "claude-x", "content": blocks, "stop_reason": None,
                          "usage": {"input_tokens": usage[0], "output_tokens": usage[1],
                                    "cache_creation_input_tokens": 3, "cache_read_input_tokens": 4}}
        return rec

    def system(self, subtype, parent=None, **extra):
        rec = self._base("system", parent)
        rec.update({"subtype": subtype, **extra})
        return rec


def text(t):
    return [{"type": "text", "text": t}]


# --------------------------------------------------------------------------- the real transcripts


def test_titles_and_counts_match_claude_code(home, capsys):
    rc, sessions = run_json(capsys, "--home", str(home), "sessions", "list", "--json")
    assert rc == 0
    got = {s["sessionId"]: (s["title"], s["messageCount"]) for s in sessions}
    assert got == {
        CLAUDE_P: ("Create hello.txt saying hello world", 5),  # -p writes no ai-title: first prompt
        CLAUDE_TITLED: ("Make notes file", 5),  # the ai-title line
        CLAUDE_UNTITLED: ("Please create two.txt containing two", 3),
        CLAUDE_PARALLEL: ("Write two files", 5),
    }
    assert all(s["agent"] == "claude" and s["directory"] == "/home/workspace/ccproj" for s in sessions)
    assert [s["sessionId"] for s in sessions] == [CLAUDE_PARALLEL, CLAUDE_TITLED, CLAUDE_UNTITLED, CLAUDE_P]


def test_tokens_count_each_api_message_once(home, capsys):
    # The stand-in model server reported 22647/40, 22877/3, 22980/3 for this session's three
    # API messages; the first one is written as four lines that repeat its usage.
    rc, s = run_json(capsys, "--home", str(home), "sessions", "get", CLAUDE_PARALLEL, "--json")
    assert s["tokens"] == {"input": 22647 + 22877 + 22980, "output": 46, "reasoning": 0, "cacheRead": 0,
                           "cacheWrite": 0}
    assert s["cost"] is None  # Claude Code records no cost in transcripts
    assert s["lastActivity"] == "2026-11-25T10:49:02.381Z"


def test_messages_of_parallel_tool_calls(home, capsys):
    rc, page = run_json(capsys, "--home", str(home), "sessions", "messages", CLAUDE_PARALLEL, "--json")
    assert rc == 0 and page["total"] == 5
    msgs = page["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "assistant", "user", "assistant"]
    # The prompt's line follows the reply's first lines in the file: time order puts it first.
    assert msgs[0]["parts"] == [{"type": "text", "text": "Create a.txt and b.txt"}]
    reply = msgs[1]["parts"]
    assert [p["type"] for p in reply] == ["reasoning", "text", "tool", "tool"]
    assert reply[0]["text"] == "Two files are needed."
    assert [(p["tool"], p["status"], p["input"]["file_path"]) for p in reply[2:]] == [
        ("Write", "completed", "/home/workspace/ccproj/a.txt"), ("Write", "completed", "/home/workspace/ccproj/b.txt")]
    assert all(p["output"].startswith("File created successfully") for p in reply[2:])
    assert msgs[2]["parts"] == [{"type": "text", "text": "Both written."}]
    assert msgs[3]["parts"] == [{"type": "text", "text": "thanks"}]  # the /usage command in between is not a message
    times = [m["time"] for m in msgs]
    assert times == sorted(times)


def test_messages_of_a_resumed_print_session(home, capsys):
    rc, page = run_json(capsys, "--home", str(home), "sessions", "messages", CLAUDE_P, "--limit", "2",
                        "--offset", "3", "--json")
    assert page["total"] == 5 and [m["parts"][0]["text"] for m in page["messages"]] == [
        "Now say more", "Second reply from the model."]


def test_bookkeeping_lines_do_not_count(home):
    path = claude_dir(home) / (CLAUDE_TITLED + ".jsonl")
    append(path,
           {"type": "queue-operation", "operation": "enqueue", "timestamp": "2026-11-25T10:41:00.000Z",
            "sessionId": CLAUDE_TITLED, "content": "queued"},
           {"type": "api-request", "uuid": "r1", "timestamp": "2026-11-25T10:41:00.000Z", "requestId": "req_1"},
           {"type": "api-request-blob", "uuid": "r2", "message": {"role": "user", "content": "internal prompt"}},
           {"type": "api-request-blob", "uuid": "r3", "message": {"role": "system", "content": "system prompt"}},
           {"type": "cost-state", "costUSD": 1.5, "sessionId": CLAUDE_TITLED},
           {"type": "last-prompt", "lastPrompt": "x", "sessionId": CLAUDE_TITLED},
           {"type": "summary", "summary": "A summary", "leafUuid": "nowhere"},
           {"type": "brand-new-kind", "whatever": [1, 2, 3]})
    s = SessionStore(str(home), ["claude"]).get(CLAUDE_TITLED)
    assert s["messageCount"] == 5 and s["title"] == "Make notes file"  # ai-title wins over summary


def test_half_written_and_corrupt_lines(home):
    path = claude_dir(home) / (CLAUDE_UNTITLED + ".jsonl")
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(3, "{this is not json\n")
    lines.insert(5, "[1, 2, 3]\n")
    path.write_text("".join(lines))
    leaf = [json.loads(x) for x in lines if x.startswith("{") and '"uuid"' in x][-1]["uuid"]
    c = Conversation(CLAUDE_UNTITLED, day="2027-01-01", last=leaf)
    prompt = c.user("and one more")
    half = json.dumps(prompt)
    append(path, raw=half[: len(half) // 2])
    reader = ClaudeReader(str(home))
    assert reader.summary(CLAUDE_UNTITLED)["messageCount"] == 3
    append(path, raw=half[len(half) // 2:] + "\n")  # the writer finishes the line
    assert reader.summary(CLAUDE_UNTITLED)["messageCount"] == 4
    assert reader.messages(CLAUDE_UNTITLED)[-1]["parts"] == [{"type": "text", "text": "and one more"}]


def test_sub_agent_transcripts_are_not_sessions(home):
    d = claude_dir(home)
    c = Conversation("agent-side")
    side = [dict(c.user("sub task"), isSidechain=True), dict(c.assistant(text("sub answer")), isSidechain=True)]
    for name in ("agent-a1b2c3.jsonl", "0f0f0f0f-1111-2222-3333-444444444444.jsonl"):
        append(d / name, *side)
    (d / CLAUDE_P / "subagents").mkdir(parents=True)
    append(d / CLAUDE_P / "subagents" / "agent-xyz.jsonl", *side)
    ids = set(SessionStore(str(home), ["claude"]).summaries())
    assert ids == {("claude", x) for x in (CLAUDE_P, CLAUDE_TITLED, CLAUDE_UNTITLED, CLAUDE_PARALLEL)}


def test_empty_and_bookkeeping_only_files(home, tmp_path, capsys):
    d = claude_dir(home)
    (d / "11111111-2222-3333-4444-555555555555.jsonl").write_text("")
    append(d / "22222222-2222-3333-4444-555555555555.jsonl",
           {"type": "queue-operation", "operation": "enqueue", "timestamp": "2026-01-01T00:00:00Z", "content": "x"})
    assert len(SessionStore(str(home), ["claude"]).list()) == 4
    rc, out = run_json(capsys, "--home", str(tmp_path / "nobody"), "sessions", "list", "--agent", "claude", "--json")
    assert rc == 0 and out == []


# --------------------------------------------------------------------------- the rules, case by case


def session_file(home, sid):
    d = claude_dir(home)
    d.mkdir(parents=True, exist_ok=True)
    return d / (sid + ".jsonl")


def test_counting_rule(tmp_path):
    sid = "aaaaaaaa-0000-0000-0000-000000000001"
    path = session_file(tmp_path, sid)
    c = Conversation(sid)
    mid = "msg_one"
    append(path,
           c.user("<local-command-caveat>Caveat: ...</local-command-caveat>", isMeta=True),  # meta: no
           c.user("Fix the bug"),  # yes
           c.assistant([{"type": "thinking", "thinking": "hmm", "signature": "s"}], mid=mid),  # thinking only: no
           c.assistant(text("Looking."), mid=mid),  # yes
           c.assistant([{"type": "tool_use", "id": "tu1", "name": "Read", "input": {"file_path": "a"}}], mid=mid),  # no
           c.user([{"type": "tool_result", "tool_use_id": "tu1", "content": "file text"}]),  # tool result: no
           c.assistant([{"type": "tool_use", "id": "tu2", "name": "Bash", "input": {"command": "ls"}}]),  # no
           c.user([{"type": "tool_result", "tool_use_id": "tu2", "content": [{"type": "text", "text": "x"}],
                    "is_error": True}]),
           c.assistant(text("   ")),  # blank text: no
           c.assistant(text("Fixed.")),  # yes
           c.system("turn_duration", durationMs=5),
           c.user([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]),  # yes
           c.assistant(text("Nice picture.")))  # yes
    reader = ClaudeReader(str(tmp_path))
    s = reader.summary(sid)
    assert s["messageCount"] == 5 and s["title"] == "Fix the bug"
    msgs = reader.messages(sid)
    assert len(msgs) == 5
    assert [p["type"] for p in msgs[1]["parts"]] == ["reasoning", "text", "tool"]
    assert msgs[1]["parts"][2]["output"] == "file text"
    # The Bash call of a later API message without text waits for the next reply with text.
    assert [p["type"] for p in msgs[2]["parts"]] == ["tool", "text"]
    assert msgs[2]["parts"][0]["status"] == "error" and msgs[2]["parts"][0]["output"] == "x"
    assert msgs[3]["parts"] == [{"type": "file", "mime": "image/png"}]
    # usage: one per API message
    assert s["tokens"] == {"input": 10 * 5, "output": 2 * 5, "reasoning": 0, "cacheRead": 4 * 5, "cacheWrite": 3 * 5}


def test_rewind_counts_the_branch_in_use(tmp_path):
    sid = "aaaaaaaa-0000-0000-0000-000000000002"
    path = session_file(tmp_path, sid)
    c = Conversation(sid)
    first = c.user("first question")
    a1 = c.assistant(text("first answer"))
    abandoned = c.user("abandoned question")
    a2 = c.assistant(text("abandoned answer"))
    retry = c.user("better question", parent=a1["uuid"])
    c2 = c.assistant(text("better answer"))
    append(path, first, a1, abandoned, a2, retry, c2)
    reader = ClaudeReader(str(tmp_path))
    assert reader.summary(sid)["messageCount"] == 4
    assert [m["parts"][0]["text"] for m in reader.messages(sid)] == [
        "first question", "first answer", "better question", "better answer"]


def test_compaction_starts_a_new_conversation(tmp_path):
    sid = "aaaaaaaa-0000-0000-0000-000000000003"
    path = session_file(tmp_path, sid)
    c = Conversation(sid)
    before = [c.user("old prompt"), c.assistant(text("old answer"))]
    boundary = c.system("compact_boundary", parent="", logicalParentUuid=c.last)
    boundary["parentUuid"] = None
    summary = c.user("This session is being continued from a previous conversation...", isCompactSummary=True,
                     isVisibleInTranscriptOnly=True)
    after = [c.user("new prompt"), c.assistant(text("new answer"))]
    append(path, *before, boundary, summary, *after)
    s = ClaudeReader(str(tmp_path)).summary(sid)
    # as Claude Code loads it: the chain from the newest leaf ends at the boundary
    assert s["messageCount"] == 3
    assert s["title"] == "new prompt"  # the compact summary is not a prompt


@pytest.mark.parametrize("lines,title", [
    ([{"type": "custom-title", "customTitle": "My name"}, {"type": "ai-title", "aiTitle": "AI name"}], "My name"),
    ([{"type": "ai-title", "aiTitle": "First"}, {"type": "ai-title", "aiTitle": "Second"}], "Second"),
    ([{"type": "summary", "summary": "Old style summary", "leafUuid": "x"}], "Old style summary"),
    ([], "/review the auth PR"),
])
def test_title_sources(tmp_path, lines, title):
    sid = "aaaaaaaa-0000-0000-0000-000000000004"
    path = session_file(tmp_path, sid)
    c = Conversation(sid)
    append(path, *lines,
           c.user("<command-name>/clear</command-name>\n<command-message>clear</command-message>\n<command-args></command-args>"),
           c.user("<command-name>/review</command-name>\n<command-args>the auth PR</command-args>"),
           c.assistant(text("Reviewing.")))
    assert ClaudeReader(str(tmp_path)).summary(sid)["title"] == title


def test_first_prompt_title_is_one_line_and_short(tmp_path):
    sid = "aaaaaaaa-0000-0000-0000-000000000005"
    path = session_file(tmp_path, sid)
    c = Conversation(sid)
    append(path, c.user("[Request interrupted by user]"),
           c.user("Line one\nline two " + "x" * 300), c.assistant(text("ok")))
    title = ClaudeReader(str(tmp_path)).summary(sid)["title"]
    assert title.startswith("Line one line two xxx") and title.endswith("\u2026") and len(title) == PROMPT_TITLE_LIMIT + 1


def test_file_rewritten_in_place_is_read_again(home):
    reader = ClaudeReader(str(home))
    assert reader.summary(CLAUDE_UNTITLED)["messageCount"] == 3
    path = claude_dir(home) / (CLAUDE_UNTITLED + ".jsonl")
    c = Conversation(CLAUDE_UNTITLED)
    big = [c.user("rewritten %d" % i) for i in range(3)] + [c.assistant(text("ok")) for _ in range(20)]
    with open(path, "w") as f:  # same inode, different content, larger
        for r in big:
            f.write(json.dumps(r) + "\n")
    s = reader.summary(CLAUDE_UNTITLED)
    assert s["title"] == "rewritten 0" and s["messageCount"] == 23
