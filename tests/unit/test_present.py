"""The presenter: records into rows and fields, and both faces drawing the same ones."""

from __future__ import annotations

import re

from click.testing import CliRunner

from perry_jupyter import present
from perry_jupyter.cli import draw as terminal
from perry_jupyter.core.workspaces import as_reached, ssh_command
from perry_jupyter.notebook import draw as notebook

WS = {"name": "alpha", "status": "running", "containerId": "0123456789abcdef", "containerName": "workspace-alpha",
      "created": "2026-01-01T00:00:00Z", "image": "perry-workspace:latest", "ports": {"ssh": 2201},
      "sshHost": "0.0.0.0", "sshCommand": "ssh -p 2201 workspace@perry.example", "agents": ["opencode"],
      "volumes": {"home": "workspace-alpha-home", "docker": "workspace-alpha-docker"}, "dind": "capabilities",
      "clone": None, "error": None}
SESSION = {"sessionId": "ses_1", "agent": "claude", "title": "Fix it", "messageCount": 2,
           "lastActivity": "2026-01-01T00:00:00Z", "tokens": {"input": 1200, "output": 30}, "cost": None}
TASK = {"id": "tsk_1", "workspace": "alpha", "agent": "opencode", "status": "failed", "prompt": "p",
        "summary": "half done", "error": "the agent exited with 2", "sessionId": "ses_1", "exitCode": 2,
        "outputTail": ["last line"]}


def texts(cells) -> list[str]:
    return [c.text if isinstance(c, present.Cell) else c for c in cells]


def drawn_in_terminal(view) -> tuple[str, int]:
    """What the CLI prints for ``view`` (stdout and stderr) and the exit status it asks for."""
    codes = []
    result = CliRunner().invoke(_draw_command(view, codes), [], env={"NO_COLOR": "1", "COLUMNS": "200"})
    assert result.exception is None, result.exception
    return result.output, codes[0]


def _draw_command(view, codes):
    import click

    @click.command()
    def command():
        codes.append(terminal.draw(view))

    return command


def test_the_ssh_line_is_the_servers_rule():
    assert ssh_command(2201, "127.0.0.1") == "ssh -p 2201 workspace@127.0.0.1"
    assert ssh_command(2201, "10.0.0.5", reached_as="perry.example") == "ssh -p 2201 workspace@10.0.0.5"
    # A wildcard bind answers on every address: the client hears the host it reached the server at.
    for wildcard in ("0.0.0.0", "::"):
        assert ssh_command(2201, wildcard) == "ssh -p 2201 workspace@127.0.0.1"
        assert ssh_command(2201, wildcard, reached_as="perry.example") == "ssh -p 2201 workspace@perry.example"
    assert ssh_command(None, "127.0.0.1") is None and ssh_command(0, "127.0.0.1") is None
    described = {"ports": {"ssh": 2201}, "sshHost": "0.0.0.0", "sshCommand": ssh_command(2201, "0.0.0.0")}
    assert as_reached(described, "box.lan")["sshCommand"] == "ssh -p 2201 workspace@box.lan"
    assert as_reached(described, "[::1]")["sshCommand"] == "ssh -p 2201 workspace@::1"  # as tornado names it
    assert described["sshCommand"] == "ssh -p 2201 workspace@127.0.0.1"  # the record itself is not changed
    concrete = {"ports": {"ssh": 2201}, "sshHost": "127.0.0.1", "sshCommand": "ssh -p 2201 workspace@127.0.0.1"}
    assert as_reached(concrete, "box.lan") is concrete
    assert as_reached({"message": "pulling"}, "box.lan") == {"message": "pulling"}  # other event data


def test_workspaces_rows_use_the_servers_ssh_command():
    stopped = {"name": "beta", "status": "stopped", "ports": {"ssh": None}, "sshCommand": None}
    view = present.workspaces([WS, stopped])
    assert view.columns == ["name", "status", "ssh", "cpu", "memory", "age", "image"]
    [alpha, beta] = view.rows  # sorted by name
    assert texts(alpha)[:3] == ["alpha", "running", "ssh -p 2201 workspace@perry.example"]
    assert alpha[1].style == "good" and alpha[2].style == "code"
    assert texts(beta)[:3] == ["beta", "stopped", "-"] and beta[1].style == "warn"
    # Never a host of its own making: a wildcard sshHost is not shown.
    assert "0.0.0.0" not in str(view)
    assert present.workspaces([], prog="%perry").empty == "No workspaces yet; create one with `%perry create NAME`."


def test_workspace_fields_and_the_answer_to_an_action():
    fields = dict(present.workspace(WS).rows)
    assert fields["ssh"].text == "ssh -p 2201 workspace@perry.example"
    assert fields["container"].text == "workspace-alpha (0123456789ab)"
    assert fields["agents"].text == "opencode" and fields["clone"].text == "-"
    assert "error" not in fields
    broken = present.workspace({**WS, "status": "error", "error": "container missing"})
    assert dict(broken.rows)["error"] == present.Cell("container missing", "error")

    created = present.workspace(WS, verb="Created")
    assert "".join(texts(created.title)) == "Created workspace alpha: running  (ssh -p 2201 workspace@perry.example)"
    assert created.terse  # a terminal says the one line; a notebook also shows the fields
    stopped = present.workspace({**WS, "status": "stopped", "error": "it stopped"}, verb="Stopped")
    assert "ssh" not in "".join(texts(stopped.title))
    assert [texts(n) for n in stopped.notes] == [["error: it stopped"]] and "error" not in dict(stopped.rows)
    assert "".join(texts(present.deleted("alpha").title)) == "Deleted workspace alpha"


def test_workspace_fields_say_how_far_its_own_docker_engine_is():
    assert dict(present.workspace(WS).rows)["docker-in-docker"].text == "capabilities"
    starting = present.workspace({**WS, "dindStatus": "starting"})
    assert dict(starting.rows)["docker-in-docker"].text == "capabilities (starting)"
    off = present.workspace({**WS, "dind": "off", "dindStatus": "off"})
    assert dict(off.rows)["docker-in-docker"].text == "off"


def test_sessions_conversation_and_a_null_cost():
    view = present.sessions([SESSION], "alpha")
    assert texts(view.rows[0])[:4] == ["ses_1", "claude", "Fix it", "2"]
    assert texts(view.rows[0])[5] == "1,200 in / 30 out"
    assert present.sessions([], "alpha").empty == "No agent sessions in alpha yet."

    talk = present.conversation({"session": SESSION, "offset": 5, "messages": [
        {"role": "user", "time": "t1", "parts": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "time": "t2", "parts": [
            {"type": "reasoning", "text": "thinking"},
            {"type": "tool", "tool": "write", "status": "completed", "input": {"a": 1}, "output": "ok"},
            {"type": "file", "filename": "a.txt"}, {"type": "step-start"}]}]})
    # The agent reports no cost (null): shown as unknown, never as $0.
    assert "".join(texts(talk.title)) == "Fix it  (claude, 2 messages, 1,200 in / 30 out, cost -)"
    assert talk.earlier == 5 and [m.role for m in talk.messages] == ["user", "assistant"]
    kinds = [(p.kind, p.title) for p in talk.messages[1].parts]
    assert kinds == [("reasoning", ""), ("tool", "tool: write (completed)"), ("file", ""), ("other", "")]
    assert talk.messages[1].parts[1].text == '{\n  "a": 1\n}\n── output ──\nok'
    assert present.cost_text(None) == "-" and present.cost_text(0) == "$0.0000" and present.cost_text(True) == "-"

    reply = present.reply({"reply": {"role": "assistant", "parts": [{"type": "text", "text": "done"}]}})
    assert reply.title == () and reply.messages[0].parts[0].text == "done"


def test_usage_rows_with_a_total_and_null_costs():
    per_workspace = present.usage({"workspaces": {"b": {"tokens": {"input": 1, "output": 2}, "cost": None},
                                                  "a": {"error": "workspace a is stopped"}},
                                   "total": {"tokens": {"input": 1, "output": 2}, "cost": None}})
    assert per_workspace.columns == ["workspace", "tokens", "cost"]
    assert [texts(r) for r in per_workspace.rows] == [
        ["a", "workspace a is stopped", "-"], ["b", "1 in / 2 out", "-"], ["total", "1 in / 2 out", "-"]]
    per_session = present.usage({"sessions": [{"sessionId": "s", "agent": "codex", "tokens": None, "cost": 0.25}],
                                 "total": {"tokens": {"input": 0, "output": 0}, "cost": 0.25}})
    assert [texts(r) for r in per_session.rows] == [["s", "codex", "-", "$0.2500"],
                                                    ["total", "", "0 in / 0 out", "$0.2500"]]


def test_tasks_and_what_a_task_signals():
    view = present.task(TASK, output=True)
    assert "".join(texts(view.title)) == "task tsk_1 in alpha (opencode): failed  session ses_1  exit 2"
    assert [texts(n) for n in view.notes] == [["  half done"], ["  error: the agent exited with 2"], ["  │ last line"]]
    assert view.exit_code == 0  # `perry task` reports; only `dispatch --wait` fails with the task
    assert present.task(TASK, must_succeed=True).exit_code == 1
    assert present.task({**TASK, "status": "succeeded"}, must_succeed=True).exit_code == 0
    assert present.task({**TASK, "status": "running"}).title[1] == present.Cell("running", "busy")
    listed = present.tasks([TASK], "alpha")
    assert texts(listed.rows[0])[:3] == ["tsk_1", "opencode", "failed"]
    # A failed task's row gives its reason, a finished one what the agent said last.
    assert listed.rows[0][-1] == present.Cell("the agent exited with 2", "error") and "result" in listed.wrap
    assert texts(present.tasks([{**TASK, "status": "succeeded", "error": None}]).rows[0])[-1] == "half done"
    assert present.tasks([], "alpha").empty == 'No tasks in alpha yet; hand one over with `perry dispatch alpha "..."`.'


def test_checks_exec_and_logs_signal_their_outcome():
    ok = present.checks({"version": "0.1", "url": "http://h:1", "checks": [{"name": "engine", "ok": True,
                                                                           "message": "up"}]})
    assert ok.exit_code == 0 and "".join(texts(ok.title)) == "✓ server: Perry 0.1 at http://h:1"
    bad = present.checks({"checks": [{"name": "image", "ok": False, "message": "missing", "fix": "run `perry build`"}]})
    assert bad.exit_code == 1 and [texts(n) for n in bad.notes] == [["✗", " image: ", "missing"],
                                                                   ["    fix: run `perry build`"]]
    down = present.checks({"url": "http://h:1", "unreachable": "no Perry server answered at http://h:1"})
    assert down.exit_code == 1 and "".join(texts(down.title)) == "✗ server: no Perry server answered at http://h:1"
    assert present.exec_result({"exitCode": 3, "stdout": "o", "stderr": "e"}).exit_code == 3
    assert present.exec_result({"exitCode": 300}).exit_code == 1  # beyond what a process can exit with
    assert present.exec_result({"exitCode": 0}).exit_code == 0
    assert present.logs("a\nb").stdout == "a\nb\n" and present.logs("").stdout == ""


def test_both_faces_draw_the_same_rows():
    views = [present.workspaces([WS]), present.workspace(WS), present.sessions([SESSION], "alpha"),
             present.task(TASK, output=True), present.usage({"workspaces": {"alpha": {"cost": None}}, "total": {}})]
    for view in views:
        printed, _ = drawn_in_terminal(view)
        page = notebook.html(view)
        rows = view.rows if isinstance(view, present.Table) else [[c for _, c in view.rows]]
        if isinstance(view, present.Fields) and view.terse:
            rows = [list(view.title)] + [list(n) for n in view.notes]
        for row in rows:
            for cell in row:
                text = cell.text if isinstance(cell, present.Cell) else cell
                assert text.strip() in printed, (text, printed)
                assert notebook.escape(text.strip()) in page, (text, page)


def test_the_terminal_draws_tables_fields_and_output():
    printed, code = drawn_in_terminal(present.workspaces([WS]))
    assert re.search(r"NAME\s+STATUS\s+SSH\s+CPU\s+MEMORY\s+AGE\s+IMAGE", printed) and code == 0
    printed, code = drawn_in_terminal(present.workspaces([]))
    assert printed == "No workspaces yet; create one with `perry create NAME`.\n"
    printed, _ = drawn_in_terminal(present.workspace(WS))
    assert re.search(r"ssh\s+ssh -p 2201 workspace@perry.example", printed)
    printed, _ = drawn_in_terminal(present.workspace(WS, verb="Started"))
    assert printed == "Started workspace alpha: running  (ssh -p 2201 workspace@perry.example)\n"
    printed, code = drawn_in_terminal(present.exec_result({"exitCode": 4, "stdout": "out\n", "stderr": "err\n"}))
    assert printed == "out\nerr\n" and code == 4
    printed, code = drawn_in_terminal(present.checks({"checks": [{"name": "image", "ok": False, "message": "x"}]}))
    assert "✗ image: x" in printed and code == 1


def test_the_notebook_escapes_what_the_server_says():
    page = notebook.html(present.workspace({**WS, "error": "<script>alert(1)</script>"}))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '<code>perry create NAME</code>' in notebook.html(present.workspaces([]))


def test_a_resumed_session_names_its_terminal_and_what_runs_there():
    term = {"name": "perry_alpha_Resume_claude_1", "workspace": "alpha",
            "resumes": {"sessionId": "ses_1", "agent": "claude", "directory": "/home/workspace/proj",
                        "command": ["claude", "--resume", "ses_1"]}}
    view = present.resumed(term)
    printed, code = drawn_in_terminal(view)
    assert printed.startswith("Resumed session ses_1 (claude) in terminal perry_alpha_Resume_claude_1\n") and code == 0
    page = notebook.html(view)
    assert "claude --resume ses_1" in page and "/home/workspace/proj" in page and "Running Terminals" in page


def test_the_engine_is_a_column_once_there_is_more_than_the_local_one():
    local = {**WS, "engine": "local"}
    assert present.workspaces([local]).columns == ["name", "status", "ssh", "cpu", "memory", "age", "image"]
    far = {**WS, "name": "far", "engine": "gpu", "status": "unreachable"}
    view = present.workspaces([local, far])
    assert view.columns == ["name", "status", "engine", "ssh", "cpu", "memory", "age", "image"]
    assert texts(view.rows[1])[:3] == ["far", "unreachable", "gpu"] and view.rows[1][1].style == "bad"


def test_engines_show_health_and_counts_without_credentials():
    view = present.engines([
        {"name": "local", "address": "unix:///var/run/docker.sock", "reachable": True, "version": "20.10",
         "cpus": 2, "memory": 8 << 30, "rttMs": 1.4, "workspaces": {"running": 1, "total": 2}, "error": None},
        {"name": "gpu", "address": "tcp://u:***@gpu:2376", "reachable": False, "version": None, "cpus": None,
         "memory": None, "rttMs": None, "workspaces": {"running": 0, "total": 1}, "error": "not reachable"}])
    assert texts(view.rows[0]) == ["local", "unix:///var/run/docker.sock", "yes", "20.10", "2", "8.0 GiB", "1/2",
                                   "1 ms", ""]
    assert texts(view.rows[1])[2:] == ["no", "-", "-", "-", "0/1", "-", "not reachable"]
    assert view.rows[1][2].style == "bad" and view.rows[1][8].style == "error"


def test_limits_and_live_use_as_a_person_reads_them():
    ws = {**WS, "limits": {"cpus": 2.0, "memory": 4 << 30, "pids": 512},
          "use": {"cpuPercent": 37.4, "memoryUsed": 300 << 20, "memoryLimit": 4 << 30}}
    row = texts(present.workspaces([ws]).rows[0])
    assert row[3:5] == ["37%", "300 MiB / 4.0 GiB"]
    fields = dict((k, c.text) for k, c in present.workspace(ws).rows)
    assert fields["limits"] == "2 CPUs, 4.0 GiB, 512 processes" and fields["cpu"] == "37%"
    stopped = {**WS, "status": "stopped", "limits": {"cpus": None, "memory": None, "pids": None}, "use": None}
    assert texts(present.workspaces([stopped]).rows[0])[3:5] == ["-", "-"]
    assert dict((k, c.text) for k, c in present.workspace(stopped).rows)["limits"] == "none"
