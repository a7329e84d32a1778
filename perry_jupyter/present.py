"""The presenter: records from the server (workspaces, sessions, messages, tasks, usage...)
turned into rows and fields that every Python face draws the same way.

A face only draws the few view types below: the CLI with rich (perry_jupyter.cli.draw),
the ``%perry`` magics and the widgets as HTML (perry_jupyter.notebook.html). What a record
shows, in which order and with which emphasis, is decided here once. Cells carry a style
word (``strong``, ``code``, ``muted``, ``error``, ``warn``, or a status tone ``good``,
``busy``, ``bad``), never markup: what the server says is text.

Standard library only: the CLI imports this on its fast path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# -- texts ------------------------------------------------------------------------------


def age(when: Any) -> str:
    """How long ago an ISO time was: ``3d``, ``5h``, ``2m``, ``9s``; ``-`` when unknown."""
    if not isinstance(when, str) or not when:
        return "-"
    try:
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = max(0, int((datetime.now(timezone.utc) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def tokens_text(tokens: Any) -> str:
    if not isinstance(tokens, dict):
        return "-"
    return f"{tokens.get('input', 0):,} in / {tokens.get('output', 0):,} out"


def cost_text(cost: Any) -> str:
    """``$0.0123``; ``-`` when the cost is unknown (null: the agent does not report one)."""
    return f"${cost:.4f}" if isinstance(cost, (int, float)) and not isinstance(cost, bool) else "-"


def one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


# -- the view types the faces draw ------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    text: str
    style: str = ""


Line = tuple  # of Cells (or plain strings), drawn side by side


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    empty: str = ""  # said (on stderr in a terminal) when there are no rows
    wrap: tuple[str, ...] = ()  # columns whose text may wrap; the others stay on one line
    kind: str = ""
    exit_code: int = 0


@dataclass
class Fields:
    """A title line, key/value rows and note lines. ``terse``: a terminal shows no rows."""

    title: Line = ()
    rows: list[tuple[str, Cell]] = field(default_factory=list)
    notes: list[Line] = field(default_factory=list)
    terse: bool = False
    kind: str = ""
    exit_code: int = 0


@dataclass
class Part:
    kind: str  # text, reasoning, tool, file, error (why the turn failed), or another part type shown by its name
    text: str
    title: str = ""


@dataclass
class Message:
    role: str
    time: str
    parts: list[Part]


@dataclass
class Conversation:
    title: Line
    earlier: int
    messages: list[Message]
    exit_code: int = 0


@dataclass
class Output:
    """A program's output, drawn as it is: stdout, stderr and the exit code."""

    stdout: str = ""
    stderr: str = ""
    code: int | None = None  # the program's exit code; None for text that has none (logs)

    @property
    def exit_code(self) -> int:
        """The CLI's exit status: the program's, or 1 where a process cannot pass it on."""
        if not self.code:
            return 0
        return self.code if 0 < self.code < 256 else 1


@dataclass
class Diff:
    """A unified diff: each line coloured by its first characters; notes said apart (stderr in a terminal)."""

    text: str
    notes: list[Line] = field(default_factory=list)
    exit_code: int = 0


@dataclass
class Stack:
    """Views shown one after the other."""

    views: list
    exit_code: int = 0


def diff_line_style(line: str) -> str:
    """The style word of one diff line: what a terminal and a notebook colour it with."""
    if line.startswith(("+++", "---", "diff --git", "index ", "new file", "deleted file", "rename ", "similarity ",
                        "old mode", "new mode", "Binary files")):
        return "strong"
    if line.startswith("@@"):
        return "busy"
    if line.startswith("+"):
        return "good"
    if line.startswith("-"):
        return "bad"
    return ""


STATUS_TONE = {"running": "good", "succeeded": "good", "stopped": "warn", "cancelled": "warn",
               "creating": "busy", "queued": "busy", "error": "bad", "failed": "bad", "deleted": "muted",
               "unreachable": "bad"}
TASK_TONE = {**STATUS_TONE, "running": "busy"}


def status(word: Any, tones: dict[str, str] = STATUS_TONE) -> Cell:
    word = str(word or "?")
    return Cell(word, tones.get(word, "muted"))


def _text(value: Any, default: str = "-") -> str:
    return default if value is None or value == "" else str(value)


# -- workspaces -------------------------------------------------------------------------

def ssh_line(ws: dict) -> str | None:
    """The server's ``sshCommand``: one rule, so the CLI, the notebooks and the panel agree."""
    command = ws.get("sshCommand")
    return command if isinstance(command, str) and command else None


def _several_engines(found: list[dict]) -> bool:
    """Whether the engine is worth a column: more than one, or one other than the implicit `local`."""
    engines = {ws.get("engine") for ws in found if ws.get("engine")}
    return len(engines) > 1 or bool(engines - {"local"})


def size_text(value: Any) -> str:
    """Bytes as a person reads them (1.5 GiB, 300 MiB)."""
    if not isinstance(value, (int, float)):
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f} {unit}" if value < 10 * size else f"{value / size:.0f} {unit}"
    return f"{value:.0f} B"


def limits_text(limits: Any) -> str:
    """A workspace's limits in one line: `2 CPUs, 4.0 GiB, 512 processes` (`none` without any)."""
    limits = limits if isinstance(limits, dict) else {}
    parts = []
    if limits.get("cpus"):
        parts.append(f"{limits['cpus']:g} CPU{'s' if limits['cpus'] != 1 else ''}")
    if limits.get("memory"):
        parts.append(size_text(limits["memory"]))
    if limits.get("pids"):
        parts.append(f"{limits['pids']} processes")
    return ", ".join(parts) or "none"


def cpu_text(use: Any) -> str:
    """CPU use as `docker stats` shows it (100% is one CPU busy); `-` when not running or not yet known."""
    value = use.get("cpuPercent") if isinstance(use, dict) else None
    return f"{value:.0f}%" if isinstance(value, (int, float)) else "-"


def memory_use_text(use: Any) -> str:
    if not isinstance(use, dict) or not isinstance(use.get("memoryUsed"), (int, float)):
        return "-"
    return f"{size_text(use['memoryUsed'])} / {size_text(use.get('memoryLimit'))}"


def workspaces(found: list[dict], prog: str = "perry") -> Table:
    several = _several_engines(found)
    rows = [[Cell(str(ws.get("name")), "strong"), status(ws.get("status")),
             *([Cell(_text(ws.get("engine")))] if several else []),
             Cell(ssh_line(ws) or "-", "code" if ssh_line(ws) else ""),
             Cell(cpu_text(ws.get("use"))), Cell(memory_use_text(ws.get("use"))), Cell(age(ws.get("created"))),
             Cell(_text(ws.get("image")))]
            for ws in sorted(found, key=lambda w: str(w.get("name")))]
    return Table(["name", "status", *(["engine"] if several else []), "ssh", "cpu", "memory", "age", "image"], rows,
                 empty=f"No workspaces yet; create one with `{prog} create NAME`.", wrap=("image",), kind="workspaces")


def engines(found: list[dict]) -> Table:
    def memory(value: Any) -> str:
        return f"{value / 2**30:.1f} GiB" if isinstance(value, (int, float)) else "-"

    rows = [[Cell(str(e.get("name")), "strong"), Cell(str(e.get("address"))),
             Cell("yes", "good") if e.get("reachable") else Cell("no", "bad"),
             Cell(_text(e.get("version"))), Cell(_text(e.get("cpus"))), Cell(memory(e.get("memory"))),
             Cell(f"{(e.get('workspaces') or {}).get('running', 0)}/{(e.get('workspaces') or {}).get('total', 0)}"),
             Cell(f"{e['rttMs']:.0f} ms" if isinstance(e.get("rttMs"), (int, float)) else "-"),
             Cell(_text(e.get("error"), ""), "error" if e.get("error") else "")]
            for e in found]
    return Table(["name", "address", "reachable", "version", "cpus", "memory", "workspaces", "rtt", "error"], rows,
                 empty="No engines.", wrap=("address", "error"), kind="engines")


def engine_removed(name: str) -> Fields:
    return Fields(title=("Removed engine ", Cell(str(name), "strong")))


def engine_added(engine: dict) -> Fields:
    return Fields(title=("Added engine ", Cell(str(engine.get("name")), "strong"), f" at {engine.get('address')}"),)


def workspace(ws: dict, verb: str = "") -> Fields:
    """One workspace: with ``verb`` (Created, Started, Stopped) the answer to that action,
    which a terminal shows as its title line alone."""
    if ws.get("status") == "deleted" and set(ws) <= {"name", "status"}:
        return Fields(title=("Deleted workspace ", Cell(str(ws.get("name")), "strong")), kind="workspace")
    volumes = ws.get("volumes") or {}
    container = ws.get("containerName") or "-"
    if ws.get("containerId"):
        container += f" ({str(ws['containerId'])[:12]})"
    created = ws.get("created")
    ssh = ssh_line(ws)
    rows = [
        ("name", Cell(str(ws.get("name")), "strong")),
        ("status", status(ws.get("status"))),
        *([("engine", Cell(str(ws["engine"])))] if ws.get("engine") else []),
        ("ssh", Cell(ssh, "code") if ssh else Cell("-")),
        ("created", Cell(f"{created} ({age(created)} ago)" if created else "-")),
        ("image", Cell(_text(ws.get("image")))),
        ("agents", Cell(" ".join(ws["agents"]) if ws.get("agents") is not None else "-")),
        ("container", Cell(container)),
        ("home volume", Cell(_text(volumes.get("home")))),
        ("docker volume", Cell(_text(volumes.get("docker")))),
        ("docker-in-docker", Cell(_text(ws.get("dind")) + (f" ({ws['dindStatus']})" if ws.get("dindStatus")
                                                            in ("starting", "ready") else ""))),
        ("clone", Cell(_text(ws.get("clone")))),
        *_devcontainer_rows(ws),
        ("limits", Cell(limits_text(ws.get("limits")))),
        *([("cpu", Cell(cpu_text(ws["use"]))), ("memory", Cell(memory_use_text(ws["use"])))] if ws.get("use") else []),
        *idle_rows(ws),
    ]
    if not verb:
        if ws.get("error"):
            rows.append(("error", Cell(str(ws["error"]), "error")))
        return Fields(rows=rows, kind="workspace")
    title: list = [f"{verb} workspace ", Cell(str(ws.get("name")), "strong"), ": ", status(ws.get("status"))]
    if ssh and ws.get("status") == "running":
        title.append(f"  ({ssh})")
    notes = [(Cell(f"error: {ws['error']}", "error"),)] if ws.get("error") else []
    notes += [(Cell(f"warning: {w}", "warn"),) for w in ws.get("warnings") or []]
    return Fields(title=tuple(title), rows=rows, notes=notes, terse=True, kind="workspace")


def _devcontainer_rows(ws: dict) -> list:
    """What the project's devcontainer.json gave the workspace, when it had one."""
    if not ws.get("devcontainer"):
        return []
    return [
        ("devcontainer", Cell(str(ws["devcontainer"]))),
        *([("display name", Cell(str(ws["displayName"])))] if ws.get("displayName") else []),
        ("declared ports", Cell(", ".join(map(str, ws.get("declaredPorts") or [])) or "-")),
        *[("warning", Cell(str(w), "warn")) for w in ws.get("warnings") or []],
    ]


def idle_words(seconds: Any) -> str:
    """An idle timeout as people say it: 90s, 30 min, 2 h."""
    if not isinstance(seconds, int) or seconds <= 0:
        return "off"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds}s"


def idle_rows(ws: dict) -> list:
    """The idle timeout, and why a stopped workspace stopped (an idle one wakes when used)."""
    if "idleTimeout" not in ws:
        return []  # a server from before idle stop
    rows = [("idle stop", Cell(f"after {idle_words(ws['idleTimeout'])} unused"
                               if ws.get("idleTimeout") else "off"))]
    if ws.get("stopReason") == "idle":
        rows.append(("stopped", Cell(f"after {idle_words(ws.get('idleTimeout'))} idle; it starts again "
                                     "when used", "muted")))
    elif ws.get("stopReason") == "user":
        rows.append(("stopped", Cell("by a user", "muted")))
    return rows


def deleted(name: str) -> Fields:
    return workspace({"name": name, "status": "deleted"})


def synced(result: dict, name: str) -> Fields:
    copied = result.get("copied") or []
    return Fields(title=(f"Synced workspace {name}: " + (", ".join(map(str, copied)) if copied else "nothing to copy"),))


def image_built(image: dict) -> Fields:
    details = ", ".join(x for x in (
        f"id {str(image['id'])[:19]}" if image.get("id") else "",
        f"created {image['created']}" if image.get("created") else "",
        "up to date" if image.get("upToDate") else "") if x)
    return Fields(title=(f"Image {image.get('tag') or '(unknown tag)'} is built" + (f" ({details})" if details else ""),))


def checks(data: dict) -> Fields:
    """``perry doctor``: the server, then each check; fails (exit 1) when one does."""
    ok, bad = Cell("✓", "good"), Cell("✗", "bad")
    url = str(data.get("url") or "")
    if data.get("unreachable"):
        return Fields(title=(bad, " server: ", str(data["unreachable"])), exit_code=1, kind="checks")
    notes: list[Line] = []
    failed = 0
    for check in data.get("checks") or []:
        passed = bool(check.get("ok"))
        failed += not passed
        notes.append((ok if passed else bad, f" {check.get('name', '?')}: ", str(check.get("message") or "")))
        if not passed and check.get("fix"):
            notes.append((Cell(f"    fix: {check['fix']}", "warn"),))
    return Fields(title=(ok, f" server: Perry {data.get('version', '?')} at {url}"), notes=notes,
                  exit_code=1 if failed else 0, kind="checks")


def exec_result(result: dict) -> Output:
    code = result.get("exitCode")
    return Output(str(result.get("stdout") or ""), str(result.get("stderr") or ""),
                  code if isinstance(code, int) else None)


def logs(text: str) -> Output:
    text = text or ""
    return Output(stdout=text if not text or text.endswith("\n") else text + "\n")


# -- agents: sessions, conversations, usage, tasks -------------------------------------

def ports(found: list[dict], workspace: str = "", prog: str = "perry") -> Table:
    rows = [[Cell(str(p.get("port")), "strong"), Cell(_text(p.get("pid"))), Cell(_text(p.get("command")), "code"),
             Cell(", ".join(p.get("addresses") or []) or ("not listening yet" if p.get("declared") else "-")),
             Cell("yes" if p.get("declared") else "")] for p in found]
    return Table(["port", "pid", "command", "addresses", "declared"], rows,
                 empty=f"Nothing listens on a TCP port in {workspace or 'the workspace'}.", wrap=("command",),
                 kind="ports")


def sessions(found: list[dict], workspace: str = "") -> Table:
    rows = [[Cell(str(s.get("sessionId")), "code"), Cell(str(s.get("agent"))), Cell(_text(s.get("title"))),
             Cell(str(s.get("messageCount", "-"))), Cell(f"{age(s.get('lastActivity'))} ago"),
             Cell(tokens_text(s.get("tokens")))] for s in found]
    where = f"in {workspace}" if workspace else "in this workspace"
    return Table(["id", "agent", "title", "messages", "last activity", "tokens"], rows,
                 empty=f"No agent sessions {where} yet.", wrap=("title",), kind="sessions")


def search_results(found: dict) -> Table:
    """Session search: one row per message holding the text, newest first."""
    rows = [[Cell(str(h.get("workspace"))), Cell(str(h.get("agent"))), Cell(str(h.get("sessionId")), "code"),
             Cell(str(h.get("role"))), Cell(f"{age(h.get('time'))} ago" if h.get("time") else "-"),
             Cell(str(h.get("snippet") or ""))] for h in found.get("results", [])]
    unread = "; ".join(f"{e.get('workspace')}: {e.get('message')}" for e in found.get("errors", []))
    return Table(["workspace", "agent", "session", "role", "when", "snippet"], rows, wrap=("snippet",),
                 kind="search", empty=f"No session message holds {found.get('query')!r}"
                                      + (f" (not searched: {unread})" if unread else "") + ".")


def part(data: dict) -> Part:
    kind = str(data.get("type"))
    if kind in ("text", "reasoning", "error"):
        return Part(kind, str(data.get("text") or ""))
    if kind == "tool":
        body = json.dumps(data.get("input"), indent=2, ensure_ascii=False) if data.get("input") is not None else ""
        output = data.get("output")
        if output not in (None, ""):
            body += "\n── output ──\n" + (output if isinstance(output, str) else json.dumps(output, indent=2))
        return Part("tool", body.strip(), f"tool: {data.get('tool')} ({data.get('status') or '?'})")
    if kind == "file":
        return Part("file", f"file: {data.get('filename') or data.get('url') or data.get('mime')}")
    return Part("other", kind)


def message(data: dict) -> Message:
    return Message(str(data.get("role", "?")), str(data.get("time") or ""),
                   [part(p) for p in data.get("parts", []) if isinstance(p, dict)])


def conversation(data: dict) -> Conversation:
    """A session and a page of its messages (``{"session", "messages", "offset"}``)."""
    session = data.get("session") or {}
    title = (Cell(str(session.get("title") or session.get("sessionId")), "strong"),
             f"  ({session.get('agent')}, {session.get('messageCount') or 0} messages, "
             f"{tokens_text(session.get('tokens'))}, cost {cost_text(session.get('cost'))})")
    return Conversation(title, int(data.get("offset") or 0), [message(m) for m in data.get("messages", [])])


def reply(data: dict) -> Conversation:
    """A continued conversation's answer: the reply's parts (or its text)."""
    answer = data.get("reply")
    if isinstance(answer, dict):
        return Conversation((), 0, [message(answer)])
    return Conversation((), 0, [Message("assistant", "", [Part("text", str(data.get("text") or ""))])])


def usage(data: dict) -> Table:
    """Per session of one workspace (``sessions``), or per workspace; a total row last."""
    total = data.get("total") or {}
    if "sessions" in data:
        rows = [[Cell(str(r.get("sessionId")), "code"), Cell(str(r.get("agent"))), Cell(tokens_text(r.get("tokens"))),
                 Cell(cost_text(r.get("cost")))] for r in data.get("sessions") or []]
        rows.append([Cell("total", "strong"), Cell(""), Cell(tokens_text(total.get("tokens"))),
                     Cell(cost_text(total.get("cost")))])
        return Table(["session", "agent", "tokens", "cost"], rows, kind="usage")
    rows = [[Cell(str(name)), Cell(str(row.get("error") or tokens_text(row.get("tokens")))),
             Cell(cost_text(row.get("cost")))] for name, row in sorted((data.get("workspaces") or {}).items())]
    rows.append([Cell("total", "strong"), Cell(tokens_text(total.get("tokens"))), Cell(cost_text(total.get("cost")))])
    return Table(["workspace", "tokens", "cost"], rows, kind="usage")


FINAL_TASK_STATES = ("succeeded", "failed", "cancelled")


def task(data: dict, output: bool = False, must_succeed: bool = False) -> Fields:
    """One task: a title line, the summary and error as notes; ``output`` adds its last
    lines; ``must_succeed`` (``dispatch --wait``) fails unless it succeeded."""
    word = str(data.get("status"))
    title: list = [f"task {data.get('id')} in {data.get('workspace')} ({data.get('agent')}): ", status(word, TASK_TONE)]
    if data.get("sessionId"):
        title.append(f"  session {data['sessionId']}")
    if data.get("exitCode") not in (None, 0):
        title.append(f"  exit {data['exitCode']}")
    rows = [("task", Cell(str(data.get("id")), "code")), ("workspace", Cell(str(data.get("workspace")))),
            ("agent", Cell(str(data.get("agent")))), ("status", status(word, TASK_TONE)),
            ("prompt", Cell(_text(data.get("prompt"), "")))]
    if data.get("sessionId"):
        rows.append(("session", Cell(str(data["sessionId"]), "code")))
    if data.get("exitCode") is not None:
        rows.append(("exit code", Cell(str(data["exitCode"]))))
    notes: list[Line] = []
    if data.get("summary"):
        notes.append((f"  {data['summary']}",))
    if data.get("error"):
        notes.append((Cell(f"  error: {data['error']}", "error"),))
    if output:
        notes.extend((Cell(f"  │ {line}", "muted"),) for line in data.get("outputTail") or [])
    return Fields(title=tuple(title), rows=rows, notes=notes, terse=True, kind="task",
                  exit_code=1 if must_succeed and word != "succeeded" else 0)


def _task_result(task: dict) -> Cell:
    """A failed task's reason (the agent's own line), else what the agent said last."""
    if task.get("status") == "failed" and task.get("error"):
        return Cell(str(task["error"]), "error")
    return Cell(str(task.get("summary") or ""))


def tasks(found: list[dict], workspace: str = "", prog: str = "perry") -> Table:
    rows = [[Cell(str(t.get("id")), "code"), Cell(str(t.get("agent"))), status(t.get("status"), TASK_TONE),
             Cell(age(t.get("created"))), Cell(str(t.get("prompt"))[:80]), _task_result(t)] for t in found]
    return Table(["id", "agent", "status", "age", "prompt", "result"], rows, kind="tasks", wrap=("prompt", "result"),
                 empty=f"No tasks in {workspace or 'this workspace'} yet; hand one over with "
                       f"`{prog} dispatch {workspace or 'NAME'} \"...\"`.")


def resumed(term: dict) -> Fields:
    """A terminal opened on a session where there is no terminal to attach it to (a notebook)."""
    resumes = term.get("resumes") or {}
    command = " ".join(resumes.get("command") or [])
    return Fields(title=(f"Resumed session {resumes.get('sessionId')} ({resumes.get('agent')}) in terminal ",
                         Cell(str(term.get("name")), "strong")),
                  rows=[("terminal", Cell(str(term.get("name")), "code")), ("runs", Cell(command, "code")),
                        ("directory", Cell(str(resumes.get("directory")))), ("workspace", Cell(str(term.get("workspace"))))],
                  notes=[(Cell("  Open it from JupyterLab's Running Terminals, or the session's Resume in terminal "
                               "button in the Perry panel.", "muted"),)],
                  kind="terminal")


def session_label(session: dict) -> str:
    """A session in one line, for pickers."""
    title = str(session.get("title") or session.get("sessionId"))
    if len(title) > 60:
        title = title[:57] + "…"
    return f"{title} · {session.get('agent')} · {session.get('messageCount', 0)} messages"



# -- changes ----------------------------------------------------------------------------

CHANGE_TONE = {"modified": "warn", "added": "good", "untracked": "good", "deleted": "bad", "renamed": "busy",
               "copied": "busy", "conflicted": "bad"}


def _counts(f: dict) -> tuple[Cell, Cell]:
    if f.get("binary"):
        return Cell("binary", "muted"), Cell("", "muted")
    added, removed = f.get("added"), f.get("removed")
    return (Cell("-" if added is None else f"+{added}", "good" if added else "muted"),
            Cell("-" if removed is None else f"-{removed}", "bad" if removed else "muted"))


def changes(data: dict, workspace: str = "", prog: str = "perry") -> Stack:
    """`perry status`: where the project stands, its changed files with +/- lines, the last commits."""
    where = data.get("root") or data.get("directory")
    branch = data.get("branch")
    title: list = [Cell(str(workspace or ""), "strong"), f" {where}" if where else ""]
    rows: list[tuple[str, Cell]] = []
    if data.get("repository"):
        state = data.get("state")
        rows.append(("branch", Cell(branch, "strong") if branch else Cell(f"({state})", "warn")))
        if data.get("upstream"):
            ahead, behind = data.get("ahead") or 0, data.get("behind") or 0
            rows.append(("upstream", Cell(f"{data['upstream']}  ↑{ahead} ↓{behind}",
                                          "warn" if ahead or behind else "")))
        head = data.get("head") or {}
        if head:
            rows.append(("HEAD", Cell(f"{str(head.get('sha'))[:12]} {head.get('subject') or ''}", "code")))
        totals = data.get("totals") or {}
        rows.append(("changes", Cell(f"{totals.get('files', 0)} files, +{totals.get('added', 0)} "
                                     f"-{totals.get('removed', 0)}")))
    notes: list[Line] = [(Cell(str(data["message"]), "muted"),)] if data.get("message") else []
    views: list = [Fields(title=tuple(title), rows=rows, notes=notes, kind="changes")]
    files = data.get("files") or []
    if files:
        views.append(Table(["status", "+", "-", "file"], [
            [Cell(str(f.get("status")), CHANGE_TONE.get(str(f.get("status")), "")), *_counts(f),
             Cell(f"{f['oldPath']} → {f.get('path')}" if f.get("oldPath") else str(f.get("path")))]
            for f in files], kind="changed-files", wrap=("file",)))
    commits = data.get("commits") or []
    if commits:
        views.append(Table(["commit", "age", "author", "subject"], [
            [Cell(str(c.get("sha"))[:10], "code"), Cell(age(c.get("date"))), Cell(str(c.get("author"))),
             Cell(str(c.get("subject")))] for c in commits], kind="commits", wrap=("subject",)))
    if files and workspace:
        views.append(Fields(notes=[(Cell(f"{prog} diff {workspace} [FILE]", "code"), Cell(" shows the lines", "muted"))]))
    return Stack(views)


def diff(data: dict) -> Diff:
    """`perry diff`: the unified diff; binary files, a cut and an empty diff said in notes."""
    notes: list[Line] = []
    for path in data.get("binary") or []:
        notes.append((Cell(f"binary file {path} changed (not shown)", "muted"),))
    if data.get("truncated"):
        notes.append((Cell(f"truncated: {data.get('message') or 'the diff was cut'}", "warn"),))
    elif data.get("message") and not data.get("diff"):
        notes.append((Cell(str(data["message"]), "muted"),))
    return Diff(str(data.get("diff") or ""), notes)
