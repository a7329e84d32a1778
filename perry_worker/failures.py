"""When an agent fails: its own error, reduced to one line a person can read.

The agents say why they failed in their event streams, each in its own words:
OpenCode (`opencode run --format json`) prints ``{"type": "error", "error": {"name",
"data": {"message", "statusCode", ...}}}``; Claude Code (`--output-format stream-json`)
ends with a ``result`` event whose ``is_error`` is true; Codex (`exec --json`) prints
``error`` events and ``turn.failed``. A :class:`Watch` reads those lines as they come.

When the model cannot be reached the agents retry, each for its own time: OpenCode five
times over about 65 s (fixed in its code), Claude Code ten times over about three minutes
(``CLAUDE_CODE_MAX_RETRIES``, which Perry lowers), Codex without end ("Reconnecting...
waiting for network"). The agent says so while it waits (OpenCode in its ``stream error``
log lines, Claude Code in ``api_retry`` events, Codex in ``Reconnecting...`` errors), so a
watch gives up once the agent has been retrying for ``RETRY_SECONDS`` without a word of
reply, with the agent's own last complaint as the reason.

Standard library only: this runs inside workspaces.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any, Callable, Dict, Optional

RETRY_SECONDS = 20.0  # how long an agent may keep retrying a model that does not answer
RETRY_ENV = "PERRY_AGENT_RETRY_SECONDS"  # set in the workspace (Perry's `env` setting) to change it
LINE_LIMIT = 300  # characters in a failure line
# Claude Code's own default is 10 retries over about three minutes; 2 end within seconds.
# Defaults only: a value in the workspace's environment (Perry's `env` setting) wins.
AGENT_ENV = {"claude": {"CLAUDE_CODE_MAX_RETRIES": "2"}}

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
URL = re.compile(r"\S+://\S+")
# OpenCode's log line for a failed request of the main agent (`--print-logs --log-level ERROR`);
# its title requests (small=true) may fail without harm.
OPENCODE_STREAM_ERROR = re.compile(r'message="stream error".*?\bsmall=false\b.*?\berror\.error="((?:[^"\\]|\\.)*)"')
# ... and for an error it reports only as "Unexpected server error" with a ref: the reason.
OPENCODE_FAILED = re.compile(r'message=failed ref=(\S+) error="((?:[^"\\]|\\.)*)"')
ERROR_CLASS = re.compile(r"^(?:AI_)?[A-Za-z]*Error:\s*")
CAUSE = re.compile(r"\s*\(cause: .*\)\s*$")
CODEX_RETRY = re.compile(r"^Reconnecting\.\.\.\s*(?:\d+/\d+\s*)?(?:waiting for network\s*)?(?:\((.*)\))?\s*$",
                         re.DOTALL)


def one_line(text: Any, limit: int = LINE_LIMIT) -> str:
    """``text`` as one line of at most ``limit`` characters, cut between words, never in a URL."""
    if not isinstance(text, str):
        text = json.dumps(text) if text is not None else ""
    text = " ".join(ANSI.sub("", text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    for url in URL.finditer(text):  # a URL cut in half leads nowhere: end before it
        if url.start() < len(cut) < url.end():
            cut = cut[:url.start()]
            break
    else:
        if " " in cut:
            cut = cut[:cut.rindex(" ")]
    return cut.rstrip(" ,;:(") + "…"


def _opencode_error(error: Dict[str, Any]) -> str:
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    message = data.get("message") if isinstance(data.get("message"), str) else ""
    message = message or str(error.get("name") or "unknown error")
    status = data.get("statusCode")
    url = (data.get("metadata") or {}).get("url") if isinstance(data.get("metadata"), dict) else None
    if status:
        message += " (HTTP %s)" % status
    elif url and url not in message:
        message += " (%s)" % url
    return message


def opencode_error_line(error: Dict[str, Any]) -> str:
    """The reason OpenCode stored with a failed message (its ``error`` object), as one line."""
    return one_line(_opencode_error(error))


def event_error(event: Dict[str, Any]) -> Optional[str]:
    """The failure an agent states in one JSON event, or None (also for retry notices)."""
    kind = event.get("type")
    if kind == "error" and isinstance(event.get("error"), dict):  # OpenCode
        return one_line(_opencode_error(event["error"]))
    if kind == "result" and event.get("is_error"):  # Claude Code
        text = event.get("result") if isinstance(event.get("result"), str) else None
        errors = event.get("errors")
        if not text and isinstance(errors, list) and errors:
            text = "; ".join(str(e) for e in errors)
        return one_line(text or event.get("subtype") or "Claude Code reported an error")
    if kind == "turn.failed":  # Codex
        error = event.get("error")
        return one_line(error.get("message") if isinstance(error, dict) else error or "the turn failed")
    if kind == "error" and isinstance(event.get("message"), str) and not CODEX_RETRY.match(event["message"]):
        return one_line(event["message"])  # Codex, outside a turn
    return None


def _logged(text: str) -> str:
    """A reason from an OpenCode log line, without its quoting, error class and cause."""
    return one_line(CAUSE.sub("", ERROR_CLASS.sub("", text.replace('\\"', '"'))))


def retry_notice(line: str) -> Optional[str]:
    """What an agent complains of in a line that says it will try the model again, or None."""
    match = OPENCODE_STREAM_ERROR.search(line)
    if match:
        return _logged(match.group(1))
    if not line.lstrip().startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    if event.get("type") == "system" and event.get("subtype") == "api_retry":  # Claude Code
        what = str(event.get("error") or "unknown").replace("_", " ")
        what = "the model API did not answer" if what == "unknown" else what
        status = event.get("error_status")
        return one_line(what + (" (HTTP %s)" % status if status else ""))
    message = event.get("message")
    if event.get("type") == "error" and isinstance(message, str):  # Codex
        match = CODEX_RETRY.match(message)
        if match:
            return one_line(match.group(1) or message)
    return None


def _retry_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(RETRY_ENV, RETRY_SECONDS)))
    except ValueError:
        return RETRY_SECONDS


class Watch:
    """Follows one agent run's output lines and says whether, and why, it failed."""

    def __init__(self, agent: str, retry_seconds: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.agent = agent
        self.retry_seconds = retry_seconds if retry_seconds is not None else _retry_seconds()
        self.clock = clock
        self.stated: Optional[str] = None  # the failure the agent stated
        self.stated_ref: Optional[str] = None  # OpenCode: where its log says more
        self.logged: Dict[str, str] = {}  # OpenCode: the reasons its log gives, by ref
        self.notice: Optional[str] = None  # its last complaint while retrying
        self.retrying_since: Optional[float] = None

    def retrying(self, notice: str) -> None:
        """The agent says it will try the model again, because of ``notice``."""
        self.notice = notice
        if self.retrying_since is None:
            self.retrying_since = self.clock()

    def progress(self) -> None:
        """The model answered: whatever the agent retried got through."""
        self.retrying_since = None

    @property
    def error(self) -> Optional[str]:
        """The failure the agent stated, in the most telling words it gave for it."""
        return self.logged.get(self.stated_ref or "") or self.stated

    def feed(self, line: str) -> None:
        notice = retry_notice(line)
        if notice is not None:
            self.retrying(notice)
            return
        logged = OPENCODE_FAILED.search(line)
        if logged:
            self.logged[logged.group(1)] = _logged(logged.group(2))
            return
        if not line.lstrip().startswith("{"):
            return
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        error = event_error(event)
        if error is not None:
            self.stated = error
            data = (event.get("error") or {}).get("data") if isinstance(event.get("error"), dict) else None
            self.stated_ref = data.get("ref") if isinstance(data, dict) else None
        else:
            self.progress()  # any other event of the agent

    def overdue(self) -> Optional[str]:
        """The reason to give up now: the agent has been retrying too long; else None."""
        if self.retrying_since is None or self.clock() - self.retrying_since < self.retry_seconds:
            return None
        return "%s (still failing after %.0f s of retries)" % (self.notice, self.retry_seconds)

    def verdict(self, exit_code: Optional[int], output_tail: str = "", text: str = "") -> Optional[str]:
        """Why the run failed, in one line, or None when it answered."""
        if self.error:
            return self.error
        if exit_code not in (0, None):
            lines = [x for x in (ANSI.sub("", y).strip() for y in output_tail.splitlines())
                     if x and not x.startswith("{")]  # its words, not its event records
            last = lines[-1] if lines else ""
            if self.notice:
                return self.notice
            return one_line("%s exited with status %d%s" % (self.agent, exit_code, ": " + last if last else ""))
        if not text.strip():
            return one_line("%s ended without a reply%s" % (self.agent, ": " + self.notice if self.notice else ""))
        return None
