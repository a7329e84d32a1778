"""perry_worker's Codex reader: a rollout codex-cli 0.169.0 wrote (run offline against
tests/modelserver.py's Responses API), and rollouts in the 2025 layouts."""

from __future__ import annotations

import json

import pytest

from perry_worker.__main__ import main
from perry_worker.codex import CodexReader
from perry_worker.sessions import PROMPT_TITLE_LIMIT, SessionStore
from tests.fixtures.worker_homes import CODEX_2025, CODEX_LEGACY, CODEX_REAL, CODEX_SUBAGENT, make_home


@pytest.fixture
def home(tmp_path):
    return make_home(tmp_path, opencode=False, opencode_json=False, claude=False)


def run_json(capsys, *argv):
    rc = main(list(argv))
    return rc, json.loads(capsys.readouterr().out)


def rollout(home, sid):
    return next((home / ".codex" / "sessions").rglob("rollout-*%s.jsonl" % sid))


def test_list(home, capsys):
    rc, sessions = run_json(capsys, "--home", str(home), "sessions", "list", "--json")
    assert rc == 0
    assert [(s["sessionId"], s["title"], s["messageCount"]) for s in sessions] == [
        (CODEX_REAL, "make hi.txt", 5),
        (CODEX_2025, "List the files and add a README line", 4),
        (CODEX_LEGACY, "hello from an old codex", 2),
    ]  # the review sub-agent's rollout is not a session
    real = sessions[0]
    assert real["agent"] == "codex" and real["directory"] == "/home/workspace/cxproj"
    assert real["lastActivity"] == "2026-11-25T10:42:06.584Z"
    # "tokens used 31,408" said codex; the server reported 10219+17, 10417+3 and 10747+5.
    assert real["tokens"] == {"input": 31383, "output": 25, "reasoning": 0, "cacheRead": 0, "cacheWrite": 0}
    assert real["cost"] is None


def test_tokens_split_cached_and_reasoning(home, capsys):
    rc, s = run_json(capsys, "--home", str(home), "sessions", "get", CODEX_2025, "--json")
    # total_token_usage: input 15900 (12000 cached), output 210 (64 reasoning)
    assert s["tokens"] == {"input": 3900, "output": 146, "reasoning": 64, "cacheRead": 12000, "cacheWrite": 0}
    assert sum(s["tokens"].values()) == 15900 + 210


def test_messages_of_the_real_rollout(home, capsys):
    rc, page = run_json(capsys, "--home", str(home), "sessions", "messages", CODEX_REAL, "--json")
    assert rc == 0 and page["total"] == 5
    msgs = page["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "assistant", "user", "assistant"]
    assert msgs[0]["parts"] == [{"type": "text", "text": "make hi.txt"}]  # not the injected context
    parts = msgs[1]["parts"]
    assert [p["type"] for p in parts] == ["reasoning", "text", "tool"]
    assert parts[0]["text"] == "Need a file." and parts[1]["text"] == "Creating the file."
    assert parts[2]["tool"] == "exec_command" and parts[2]["input"] == {"cmd": "echo hi > hi.txt"}
    assert parts[2]["status"] == "completed" and "Process exited with code 0" in parts[2]["output"]
    assert msgs[2]["parts"] == [{"type": "text", "text": "Created hi.txt."}]
    assert msgs[3]["parts"] == [{"type": "text", "text": "and again"}]
    assert msgs[0]["time"] == "2026-11-25T10:41:33.496Z"


def test_tool_calls_join_the_reply_they_led_to(home, capsys):
    rc, page = run_json(capsys, "--home", str(home), "sessions", "messages", CODEX_2025, "--json")
    msgs = page["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    parts = msgs[1]["parts"]
    assert [(p["type"], p.get("tool")) for p in parts] == [
        ("reasoning", None), ("tool", "shell"), ("tool", "apply_patch"), ("text", None)]
    assert parts[1]["input"] == {"command": ["bash", "-lc", "ls"], "workdir": "/home/workspace/app"}
    assert parts[2]["input"].startswith("*** Begin Patch") and parts[2]["status"] == "completed"


def test_legacy_bare_layout(home, capsys):
    rc, page = run_json(capsys, "--home", str(home), "sessions", "messages", CODEX_LEGACY, "--json")
    assert [(m["role"], m["parts"][0]["text"], m["time"]) for m in page["messages"]] == [
        ("user", "hello from an old codex", "2025-04-20T10:00:00.000Z"),
        ("assistant", "Hi!", "2025-04-20T10:00:00.000Z")]


def test_sub_agent_is_found_by_id_only_when_asked(home, capsys):
    assert CODEX_SUBAGENT not in {s["sessionId"] for s in SessionStore(str(home)).list()}
    rc, err = run_json(capsys, "--home", str(home), "sessions", "get", CODEX_SUBAGENT, "--json")
    assert rc == 2 and err["error"]["code"] == "not_found"


def test_renamed_thread_title(home):
    (home / ".codex" / "session_index.jsonl").write_text(
        json.dumps({"id": CODEX_REAL, "thread_name": "Greeting file", "updated_at": "2026-11-25T11:00:00Z"}) + "\n"
        + '{"id": "broken\n')
    assert SessionStore(str(home), ["codex"]).get(CODEX_REAL)["title"] == "Greeting file"


def test_growing_rollout_with_half_line(home):
    path = rollout(home, CODEX_REAL)
    reader = CodexReader(str(home))
    assert reader.summary(CODEX_REAL)["messageCount"] == 5
    user = {"timestamp": "2026-11-25T11:00:00.000Z", "type": "response_item",
            "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "third"}]}}
    answer = {"timestamp": "2026-11-25T11:00:01.000Z", "type": "response_item",
              "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "3"}],
                          "unknown_new_field": True}}
    line = json.dumps(answer)
    with open(path, "a") as f:
        f.write(json.dumps(user) + "\n{corrupt\n" + line[:20])
    s = reader.summary(CODEX_REAL)
    assert s["messageCount"] == 6 and s["lastActivity"] == "2026-11-25T11:00:00.000Z"
    with open(path, "a") as f:
        f.write(line[20:] + "\n")
    s = reader.summary(CODEX_REAL)
    assert s["messageCount"] == 7 and s["lastActivity"] == "2026-11-25T11:00:01.000Z"
    assert reader.messages(CODEX_REAL)[-1]["parts"] == [{"type": "text", "text": "3"}]


def test_turn_ending_in_a_tool_call_without_text(tmp_path):
    sid = "01990000-0000-7000-8000-000000000001"
    d = tmp_path / ".codex" / "sessions" / "2025" / "10" / "01"
    d.mkdir(parents=True)
    lines = [
        {"timestamp": "2025-10-01T00:00:00Z", "type": "session_meta", "payload": {"id": sid, "cwd": "/w"}},
        {"timestamp": "2025-10-01T00:00:01Z", "type": "response_item",
         "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run it"}]}},
        {"timestamp": "2025-10-01T00:00:02Z", "type": "response_item",
         "payload": {"type": "function_call", "name": "shell", "arguments": "not json", "call_id": "c1"}},
    ]
    (d / ("rollout-2025-10-01T00-00-00-%s.jsonl" % sid)).write_text("".join(json.dumps(x) + "\n" for x in lines))
    reader = CodexReader(str(tmp_path))
    assert reader.summary(sid)["messageCount"] == 2
    msgs = reader.messages(sid)
    assert msgs[1]["parts"] == [{"type": "tool", "tool": "shell", "input": "not json", "output": None,
                                 "status": "pending", "callId": "c1"}]


def test_codex_home_env_and_empty_home(tmp_path, monkeypatch, capsys):
    rc, out = run_json(capsys, "--home", str(tmp_path), "sessions", "list", "--agent", "codex", "--json")
    assert rc == 0 and out == []
    home = make_home(tmp_path / "other", opencode=False, opencode_json=False, claude=False)
    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    monkeypatch.setenv("CODEX_HOME", str(home / ".codex"))
    rc, out = run_json(capsys, "sessions", "list", "--agent", "codex", "--json")
    assert len(out) == 3


def test_an_unnamed_thread_is_titled_by_its_first_prompt_cut_short(tmp_path):
    sid = "01990000-0000-7000-8000-000000000002"
    d = tmp_path / ".codex" / "sessions" / "2025" / "10" / "02"
    d.mkdir(parents=True)
    prompt = "Port the build\nto meson, keeping " + "every target " * 20
    lines = [
        {"timestamp": "2025-10-02T00:00:00Z", "type": "session_meta", "payload": {"id": sid, "cwd": "/w"}},
        {"timestamp": "2025-10-02T00:00:01Z", "type": "response_item",
         "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}},
        {"timestamp": "2025-10-02T00:00:02Z", "type": "response_item",
         "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}},
    ]
    (d / ("rollout-2025-10-02T00-00-00-%s.jsonl" % sid)).write_text("".join(json.dumps(x) + "\n" for x in lines))
    title = CodexReader(str(tmp_path)).summary(sid)["title"]
    assert title.startswith("Port the build to meson, keeping every target") and title.endswith("\u2026")
    assert len(title) <= PROMPT_TITLE_LIMIT + 1
