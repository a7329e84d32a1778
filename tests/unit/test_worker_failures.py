"""perry_worker.failures: an agent's failure reduced to one line, from the real CLIs' own output.

The files in agent_output/ are what OpenCode 1.18, Claude Code 2.1 and Codex 0.171 printed
(`opencode run --format json --print-logs --log-level ERROR`, `claude -p --output-format
stream-json --verbose`, `codex exec --json`) against tests/modelserver.py answering 401
(`--refuse-auth`) and against a port nobody listens on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perry_worker.failures import Watch, event_error, one_line, retry_notice

OUTPUT = Path(__file__).parent / "agent_output"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def watched(name: str, clock=None) -> Watch:
    watch = Watch(name.split("-")[0], retry_seconds=20, **({"clock": clock} if clock else {}))
    for line in (OUTPUT / name).read_text().splitlines():
        watch.feed(line)
    return watch


@pytest.mark.parametrize("name, line", [
    ("opencode-401.jsonl", "Incorrect API key provided: sk-te***st. (HTTP 401)"),
    ("opencode-down.jsonl", "Cannot connect to API: Unable to connect. Is the computer able to access the url? "
                            "(http://127.0.0.1:18089/v1/chat/completions)"),
    ("claude-401.jsonl", "Invalid API key · Fix external API key"),
    ("claude-down.jsonl", "API Error: Connection refused — a firewall or proxy may be blocking it (ECONNREFUSED)"),
    ("codex-401.jsonl", "unexpected status 401 Unauthorized: Incorrect API key provided: sk-te***st., "
                        "url: http://127.0.0.1:18089/v1/responses"),
])
def test_the_agents_own_error_in_one_line(name, line):
    watch = watched(name)
    assert watch.error == line
    assert watch.verdict(1, (OUTPUT / name).read_text()) == line


def test_opencode_unexpected_server_error_is_told_by_its_log():
    # `--model nope/x`: the event says only "Unexpected server error" and a ref; the log line
    # with that ref says what went wrong.
    watch = watched("opencode-no-model.log")
    assert watch.stated == "Unexpected server error. Check server logs for details."
    assert watch.verdict(1) == "Model not found: nope/x. Did you mean: standardcompute?"


def test_retry_notices_in_each_agents_words():
    said = "Cannot connect to API: Unable to connect. Is the computer able to access the url?"
    assert [retry_notice(x) for x in (OUTPUT / "opencode-down.log").read_text().splitlines()] == [
        said, said, None, said]  # the third is its title request
    codex = [retry_notice(x) for x in (OUTPUT / "codex-down.jsonl").read_text().splitlines()]
    assert codex[:3] == [None, None, None]  # thread.started, a warning item, turn.started
    assert set(codex[3:]) == {"Connection failed: error sending request"}
    assert retry_notice((OUTPUT / "codex-401.jsonl").read_text().splitlines()[3]) == \
        "unexpected status 401 Unauthorized: Incorrect API key provided: sk-te***st., url: " \
        "http://127.0.0.1:18089/v1/responses"
    claude = [retry_notice(x) for x in (OUTPUT / "claude-401.jsonl").read_text().splitlines()]
    assert "authentication failed (HTTP 401)" in claude
    claude = [retry_notice(x) for x in (OUTPUT / "claude-down.jsonl").read_text().splitlines()]
    assert claude.count("the model API did not answer") == 10


def test_an_agent_retrying_without_end_is_given_up_on_with_its_own_words():
    clock = Clock()
    watch = watched("codex-down.jsonl", clock)  # Codex reconnects forever when nothing listens
    assert watch.error is None and watch.overdue() is None
    clock.now += 19.9
    assert watch.overdue() is None
    clock.now += 0.2
    assert watch.overdue() == "Connection failed: error sending request (still failing after 20 s of retries)"


def test_a_retry_that_got_through_is_forgotten():
    clock = Clock()
    watch = Watch("opencode", retry_seconds=20, clock=clock)
    watch.feed((OUTPUT / "opencode-down.log").read_text().splitlines()[0])
    clock.now += 10
    watch.feed('{"type":"step_start","part":{"type":"step-start"}}')  # the model answered
    clock.now += 30
    assert watch.overdue() is None
    assert watch.verdict(0, "", "Hello.") is None


def test_opencode_title_requests_may_fail_without_harm():
    [title] = [x for x in (OUTPUT / "opencode-down.log").read_text().splitlines() if "agent=title" in x]
    assert "small=true" in title and retry_notice(title) is None


def test_exit_codes_and_silence():
    watch = Watch("codex")
    assert watch.verdict(2, '{"type":"thread.started"}\nerror: unexpected argument \x1b[1m--x\x1b[0m found\n{"a":1}') \
        == "codex exited with status 2: error: unexpected argument --x found"
    assert watch.verdict(0, "", "") == "codex ended without a reply"
    assert watch.verdict(0, "", "  Done.  ") is None


def test_events_that_are_not_failures():
    assert event_error({"type": "result", "is_error": False, "result": "Fine."}) is None
    assert event_error({"type": "item.completed", "item": {"type": "error", "message": "Model metadata for `gpt-5` "
                                                                                        "not found."}}) is None
    assert event_error({"type": "error", "message": "Reconnecting... 2/5 (stream closed)"}) is None
    assert event_error({"type": "error", "error": {"name": "ProviderAuthError", "data": {"providerID": "x"}}}) == \
        "ProviderAuthError"


def test_one_line_cuts_between_words_and_never_inside_a_url():
    assert one_line("first\n  second\tthird") == "first second third"
    assert one_line('{"error": 1}'[:0] or None) == ""
    text = "The provider said no. See https://example.com/a/very/long/path/to/the/docs/page for why."
    cut = one_line(text, 40)
    assert cut == "The provider said no. See…"
    assert one_line("word " * 100, 30) == ("word " * 5).strip() + "…"
    assert len(one_line("x" * 1000)) == 300


def test_the_retry_time_is_the_workspaces_to_choose(monkeypatch):
    monkeypatch.setenv("PERRY_AGENT_RETRY_SECONDS", "90")
    assert Watch("codex").retry_seconds == 90
    monkeypatch.setenv("PERRY_AGENT_RETRY_SECONDS", "soon")
    assert Watch("codex").retry_seconds == 20
