"""Dispatched agent tasks, run inside the workspace so they outlive any server.

`task start` writes ~/.perry/tasks/ID/task.json and spawns a detached runner
(`task _run ID`, its own session and process group) that runs the agent
non-interactively, streams its output to output.log, and records the exit code,
the agent's session id and a one-line summary when it ends. `task status` reads
that back (and notices a runner that vanished, e.g. the container restarted);
`task cancel` ends the runner and every process it started.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

from . import failures, procs

FINAL = ("succeeded", "failed", "cancelled")
SESSION_ID = re.compile(r'"(?:sessionID|session_id|thread_id)"\s*:\s*"([A-Za-z0-9_.:-]+)"')
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TAIL_LINES = 20


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tasks_dir(home: str) -> str:
    return os.path.join(home, ".perry", "tasks")


def _task_dir(home: str, task_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", task_id):
        raise ValueError(f"invalid task id {task_id!r}")
    return os.path.join(tasks_dir(home), task_id)


def _read(home: str, task_id: str) -> dict | None:
    try:
        with open(os.path.join(_task_dir(home, task_id), "task.json"), encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def _write(home: str, task: dict) -> None:
    folder = _task_dir(home, task["id"])
    os.makedirs(folder, mode=0o700, exist_ok=True)
    tmp = os.path.join(folder, "task.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(task, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(folder, "task.json"))


def agent_command(task: dict) -> list[str]:
    """The agent's own non-interactive command line for a task; the prompt goes to its stdin.

    On the command line a prompt is not safe: `opencode run` wraps an argument holding a space
    in literal quotes, and a leading dash reads as an option. All three CLIs take the prompt
    from stdin as it is, byte for byte."""
    agent, session, model = task["agent"], task.get("sessionId"), task.get("model")
    if agent == "opencode":
        # The log lines at ERROR level are how OpenCode tells that it retries the model.
        return ["opencode", "run", "--format", "json", "--auto", "--print-logs", "--log-level", "ERROR",
                *(["--session", session] if session else []), *(["--model", model] if model else [])]
    if agent == "claude":
        return ["claude", "-p", "--output-format", "stream-json", "--verbose",
                "--permission-mode", "bypassPermissions",
                *(["--resume", session] if session else []), *(["--model", model] if model else [])]
    if agent == "codex":
        # The workspace is the sandbox: Codex' own bubblewrap sandbox does not nest in containers.
        base = ["codex", "exec", "--json", "--skip-git-repo-check", "--sandbox", "danger-full-access",
                *(["--model", model] if model else [])]
        return [*base, "resume", session, "-"] if session else [*base, "-"]  # "-": the prompt is on stdin
    raise ValueError(f"unknown agent {agent!r}")


def prompt_input(prompt: str):
    """An open file holding ``prompt``, for an agent's stdin (a pipe could fill before it reads)."""
    stdin = tempfile.TemporaryFile()
    stdin.write(prompt.encode("utf-8"))
    stdin.seek(0)
    return stdin


def agent_env(agent: str, home: str, directory: str) -> dict:
    # OpenCode takes its project from $PWD, not from the working directory. Perry's settings for
    # the agent are defaults: the workspace's own environment wins.
    return {**failures.AGENT_ENV.get(agent, {}), **os.environ, "HOME": home, "PWD": directory, "NO_COLOR": "1"}


def start(home: str, task_id: str, agent: str, prompt: str, directory: str,
          session: str | None = None, model: str | None = None) -> dict:
    if _read(home, task_id) is not None:
        raise ValueError(f"task {task_id} exists already")
    task = {"id": task_id, "agent": agent, "prompt": prompt, "directory": directory, "sessionId": session,
            "model": model, "status": "running", "started": _now(), "ended": None, "exitCode": None,
            "summary": None, "runnerPid": None, "error": None}
    agent_command(task)  # unknown agents fail here, before anything runs
    _write(home, task)
    runner = subprocess.Popen(
        [sys.executable, "-m", "perry_worker", "--home", home, "task", "_run", task_id],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, cwd="/", env={**os.environ, "PYTHONPATH": _package_root()})
    task["runnerPid"] = runner.pid
    _write(home, task)
    return status(home, task_id)


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(home: str, task_id: str) -> int:
    """The runner: run the agent, record how it ended. Its process group is the task."""
    task = _read(home, task_id)
    folder = _task_dir(home, task_id)
    cancelled = {"flag": False}
    child: subprocess.Popen | None = None

    def on_term(signum, frame):
        cancelled["flag"] = True
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    watch = failures.Watch(task["agent"])
    gave_up = None
    with open(os.path.join(folder, "output.log"), "ab") as out:
        try:
            directory = task["directory"] or home
            with prompt_input(task["prompt"]) as stdin:
                child = subprocess.Popen(agent_command(task), cwd=directory, stdin=stdin, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, env=agent_env(task["agent"], home, directory))
            gave_up = _follow(child, out, watch)
            code = child.wait()
        except OSError as e:
            out.write(f"perry: could not start {task['agent']}: {e}\n".encode())
            code = 127
    task = _read(home, task_id) or task
    output = _output(folder)
    cancelled = cancelled["flag"] or os.path.exists(os.path.join(folder, "cancel"))
    text = final_text(output)
    error = None if cancelled else (gave_up or watch.verdict(code, output, text))
    task.update(exitCode=code, ended=_now(),
                status="cancelled" if cancelled else ("failed" if error else "succeeded"))
    found = SESSION_ID.findall(output)
    if found and not task.get("sessionId"):
        task["sessionId"] = found[0]
    task["summary"] = failures.one_line(text, 280) if text else None
    task["error"] = error
    _write(home, task)
    return 0


def _follow(child: subprocess.Popen, out, watch: failures.Watch) -> str | None:
    """Copy the agent's output to the log, line by line, through ``watch``; ends the agent when
    the watch gives up on it (the reason is returned)."""
    fd, pending = child.stdout.fileno(), b""
    while True:
        try:
            ready = select.select([fd], [], [], 1.0)[0]
        except InterruptedError:
            continue
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out.write(chunk)
            out.flush()
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                watch.feed(line.decode("utf-8", "replace"))
        reason = watch.overdue()
        if reason:
            procs.end_tree(child.pid)
            out.write(f"perry: gave up: {reason}\n".encode())
            return reason
    if pending:
        watch.feed(pending.decode("utf-8", "replace"))
    return None


def _output(folder: str, limit: int = 2_000_000) -> str:
    try:
        with open(os.path.join(folder, "output.log"), "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def json_events(output: str):
    """The JSON objects an agent printed one per line (`--format json`, `stream-json`, `--json`)."""
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def final_text(output: str) -> str:
    """The agent's last words in its JSON event stream ("" when it said nothing)."""
    last_text = ""
    for event in json_events(output):
        if event.get("type") == "result" and isinstance(event.get("result"), str):
            if not event.get("is_error"):
                last_text = event["result"]  # Claude Code's final answer
        elif event.get("type") == "text":
            part = event.get("part") if isinstance(event.get("part"), dict) else event
            if isinstance(part.get("text"), str) and part["text"].strip():
                last_text = part["text"]
        elif event.get("type") in ("item.completed",) and isinstance(event.get("item"), dict):
            item = event["item"]
            if item.get("type") in ("agent_message", "assistant_message") and isinstance(item.get("text"), str):
                last_text = item["text"]
    return last_text


def _runner_running(task: dict) -> bool:
    # The runner's command line ends with its task id (`task _run ID`): a pid reused after a
    # workspace restart is somebody else.
    return procs.running(task.get("runnerPid"), task["id"])


def status(home: str, task_id: str) -> dict:
    task = _read(home, task_id)
    if task is None:
        raise KeyError(task_id)
    folder = _task_dir(home, task_id)
    if task["status"] not in FINAL and task.get("runnerPid") and not _runner_running(task):
        # Give a runner that just finished a moment to write its record.
        time.sleep(0.2)
        task = _read(home, task_id) or task
        if task["status"] not in FINAL:
            task.update(status="failed", ended=_now(), error="the task's process ended without a result "
                        "(was the workspace stopped?)")
            _write(home, task)
    output = _output(folder, 64_000)
    if not task.get("sessionId"):
        found = SESSION_ID.findall(output)  # known as soon as the agent prints it
        task["sessionId"] = found[0] if found else None
    task["outputTail"] = [ANSI.sub("", x) for x in output.splitlines()][-TAIL_LINES:]
    return task


def output(home: str, task_id: str, offset: int = 0, limit: int = 1_000_000) -> dict:
    """The task's output from byte ``offset`` on, in whole lines (a line still being written
    waits for its end, unless the task has ended), the offset to read from next and the status."""
    task = status(home, task_id)
    ended = task["status"] in FINAL
    try:
        with open(os.path.join(_task_dir(home, task_id), "output.log"), "rb") as f:
            f.seek(offset)
            chunk = f.read(limit)
    except FileNotFoundError:
        chunk = b""
    if not ended or len(chunk) == limit:
        chunk = chunk[:chunk.rfind(b"\n") + 1]
    text = ANSI.sub("", chunk.decode("utf-8", "replace"))
    return {"output": text, "offset": offset + len(chunk), "status": task["status"],
            "ended": ended and len(chunk) < limit}


def cancel(home: str, task_id: str) -> dict:
    task = status(home, task_id)
    if task["status"] in FINAL:
        return task
    open(os.path.join(_task_dir(home, task_id), "cancel"), "w").close()
    if _runner_running(task):
        procs.end_tree(task["runnerPid"])
    task = _read(home, task_id) or task
    if task["status"] not in FINAL:
        task.update(status="cancelled", ended=_now())
        _write(home, task)
    return status(home, task_id)


def list_tasks(home: str) -> list[dict]:
    try:
        ids = sorted(os.listdir(tasks_dir(home)))
    except FileNotFoundError:
        return []
    out = []
    for task_id in ids:
        try:
            out.append(status(home, task_id))
        except (KeyError, ValueError):
            continue
    return out
