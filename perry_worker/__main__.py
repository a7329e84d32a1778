"""`perry-worker` command line: `--version`, `health`, and the agent session commands.

    perry-worker [--home DIR] sessions list [--agent A] [--json]
    perry-worker [--home DIR] sessions get ID [--agent A] [--json]
    perry-worker [--home DIR] sessions messages ID [--limit N] [--offset K] [--agent A] [--json]
    perry-worker [--home DIR] sessions watch [--interval 0.5] [--agent A]
    perry-worker [--home DIR] sessions serve [--idle SECONDS]
    perry-worker [--home DIR] usage [--session ID] [--agent A] [--json]
    perry-worker [--home DIR] search TEXT [--agent A] [--limit N] [--json]
    perry-worker [--home DIR] task start|status|cancel|output|list ...
    perry-worker changes [--dir D] [--commits N] [--json]
    perry-worker changes diff [--dir D] [--file F] [--base REF] [--max-bytes N] [--json]
    perry-worker ports [--json]
    perry-worker connect PORT
    perry-worker activity [--json]

Errors (unknown session, bad argument) exit with status 2; with --json they are printed on
stdout as ``{"error": {"code": "not_found"|"bad_request", "message": ...}}``.
"""

import argparse
import json
import os
import socket
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

from . import __version__, source_digest
from .agents import NAMES

READY_FILE = "/run/perry/ready"
DIND_FILE = "/run/perry/dind"  # the entrypoint's word on the inner engine: "starting" or "ready"
DOCKER_SOCKET = "/var/run/docker.sock"
EXPECT_ENV = "PERRY_WORKER_EXPECT"  # the source digest the calling server has
SSH_ADDRESS = ("127.0.0.1", 22)
SSHD_PID_FILE = "/run/sshd.pid"


def dind_enabled() -> bool:
    return os.environ.get("PERRY_DIND", "1") != "0"


def check_sshd(address=SSH_ADDRESS, timeout: float = 1.0) -> bool:
    """True when sshd answers on the address with an SSH-2.0 banner."""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.settimeout(timeout)
            banner = b""
            while b"\n" not in banner and len(banner) < 256:
                chunk = sock.recv(256)
                if not chunk:
                    break
                banner += chunk
            ok = banner.startswith(b"SSH-2.0")
            if ok:
                # Identify ourselves before closing: sshd then logs one line, not two.
                try:
                    sock.sendall(b"SSH-2.0-perry-worker-health\r\n")
                except OSError:
                    pass
            return ok
    except OSError:
        return False


def _pid1_started() -> Optional[float]:
    """When this PID namespace's init started (epoch seconds), or None if unknown."""
    try:
        with open("/proc/1/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of the line: starttime, in clock ticks since boot
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def check_ready(path: str = READY_FILE) -> bool:
    """True when the entrypoint wrote the ready file during this container start.

    /run survives a container restart: a file older than the container's init is stale
    (the entrypoint removes it, but a probe may come first).
    """
    try:
        written = os.stat(path).st_mtime
    except OSError:
        return False
    started = _pid1_started()
    return started is None or written >= started - 1.0


def check_docker(path: str = DOCKER_SOCKET, timeout: float = 1.0) -> bool:
    """True when the Docker engine on the unix socket answers GET /_ping with 200 OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = b""
            while b"\r\n" not in reply and len(reply) < 1024:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                reply += chunk
            status_line = reply.split(b"\r\n", 1)[0].split()
            return len(status_line) >= 2 and status_line[1] == b"200"
    except OSError:
        return False


def dind_state(state_file: str = DIND_FILE) -> Tuple[str, bool]:
    """The inner Docker engine: "off" (PERRY_DIND=0), "starting" or "ready"; and whether a client
    that comes early waits for it by itself.

    The entrypoint says which in ``state_file``: it made the engine's socket before the engine
    serves, so a probe would only wait in the socket's queue like any client. An entrypoint
    from before that says nothing; its engine makes the socket when it serves, and until then
    a client fails, so readiness waits for the engine there, as it always did."""
    if not dind_enabled():
        return "off", True
    if not check_ready(state_file):
        return ("ready" if check_docker() else "starting"), False
    try:
        with open(state_file) as f:
            said = f.read().strip()
    except OSError:
        said = ""
    return ("ready" if said == "ready" else "starting"), True


def sshd_running(pid_file: str = SSHD_PID_FILE) -> bool:
    """True when the sshd of the pid file runs. sshd writes that file once it listens, and the
    entrypoint removes it before each start: after a fresh ready file this says what a probe
    would, without sshd forking a child for the probe."""
    try:
        with open(pid_file) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, 0)
    except PermissionError:
        return True  # it runs, as root, and we are not root
    except (OSError, ValueError, IndexError):
        return False
    return True


def health(ready_file: str = READY_FILE, dind_file: str = DIND_FILE) -> Dict[str, object]:
    """``ok`` once sshd answers and the entrypoint is done; the inner engine may still be
    starting (``dind``), as `docker` inside waits for it by itself."""
    ready = check_ready(ready_file)
    sshd = sshd_running() if ready else check_sshd()
    dind, waits = dind_state(dind_file)
    return {
        "ok": bool(sshd and ready and (waits or dind != "starting")),
        "sshd": sshd,
        "docker": None if dind == "off" else dind == "ready",
        "dind": dind,
        "ready": ready,
        "version": __version__,
    }


def healthy(report: Dict[str, object], dind: bool) -> bool:
    return bool(report["ok"]) and (not dind or report["dind"] != "starting")


def wait_for_health(
    seconds: float,
    dind: bool = False,
    ready_file: str = READY_FILE,
    dind_file: str = DIND_FILE,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Dict[str, object]:
    """Poll until healthy (with ``dind``, the inner engine ready too) or ``seconds`` have passed;
    the last report. Until the entrypoint's files say so only they are looked at (a stat or
    two): a probe of sshd makes it fork a child."""
    deadline = clock() + max(0.0, seconds)
    interval = 0.01
    while True:
        if check_ready(ready_file) and (not dind or dind_state(dind_file)[0] != "starting"):
            report = health(ready_file, dind_file)
            if healthy(report, dind):
                return report
        left = deadline - clock()
        if left <= 0:
            return health(ready_file, dind_file)
        sleep(min(interval, left))
        interval = min(interval * 1.2, 0.1)


def cmd_health(args: argparse.Namespace) -> int:
    report = wait_for_health(args.wait, args.dind) if args.wait else health()
    if args.json:
        print(json.dumps(report))
    else:
        def word(value: object) -> str:
            return "n/a" if value is None else ("yes" if value else "no")

        print("ok: %s" % word(report["ok"]))
        for key in ("sshd", "ready"):
            print("%s: %s" % (key, word(report[key])))
        print("dind: %s" % report["dind"])
    return 0 if healthy(report, args.dind) else 1


# --------------------------------------------------------------------------- sessions


def _store(args: argparse.Namespace):
    from .sessions import SessionStore

    agents = [args.agent] if getattr(args, "agent", None) else None
    return SessionStore(getattr(args, "home", None), agents)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _session_command(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn NotFound/BadRequest into exit status 2 and a JSON or plain error."""
    def run(args: argparse.Namespace) -> int:
        from .sessions import BadRequest, NotFound

        try:
            return func(args)
        except (NotFound, BadRequest) as e:
            code = "not_found" if isinstance(e, NotFound) else "bad_request"
            if getattr(args, "json", False):
                _print_json({"error": {"code": code, "message": str(e)}})
            else:
                sys.stderr.write("perry-worker: %s\n" % e)
            return 2
    return run


def _short_time(iso: Optional[str]) -> str:
    return (iso or "-")[:19].replace("T", " ")


@_session_command
def cmd_sessions_list(args: argparse.Namespace) -> int:
    sessions = _store(args).list()
    if args.json:
        _print_json(sessions)
        return 0
    if not sessions:
        print("no sessions")
        return 0
    print("%-9s %-38s %5s  %-19s  %s" % ("AGENT", "SESSION", "MSGS", "LAST ACTIVITY", "TITLE"))
    for s in sessions:
        print("%-9s %-38s %5d  %-19s  %s" % (s["agent"], s["sessionId"], s["messageCount"],
                                             _short_time(s["lastActivity"]), s["title"]))
    return 0


@_session_command
def cmd_sessions_get(args: argparse.Namespace) -> int:
    s = _store(args).get(args.id)
    if args.json:
        _print_json(s)
        return 0
    for key in ("sessionId", "agent", "title", "directory", "messageCount", "lastActivity", "cost"):
        print("%s: %s" % (key, s[key]))
    print("tokens: %s" % ", ".join("%s=%d" % kv for kv in s["tokens"].items()))
    return 0


@_session_command
def cmd_sessions_messages(args: argparse.Namespace) -> int:
    page = _store(args).messages(args.id, limit=args.limit, offset=args.offset)
    if args.json:
        _print_json(page)
        return 0
    for m in page["messages"]:
        print("[%s] %s" % (_short_time(m["time"]), m["role"]))
        for p in m["parts"]:
            if p["type"] in ("text", "reasoning"):
                prefix = "" if p["type"] == "text" else "(thinking) "
                print("  " + prefix + p["text"].replace("\n", "\n  "))
            elif p["type"] == "tool":
                print("  [tool %s: %s]" % (p.get("tool"), p.get("status")))
            else:
                print("  [%s]" % p["type"])
    print("(%d-%d of %d)" % (page["offset"] + 1 if page["messages"] else page["offset"],
                             page["offset"] + len(page["messages"]), page["total"]))
    return 0


@_session_command
def cmd_sessions_watch(args: argparse.Namespace) -> int:
    from . import watch

    watch.install_signal_handlers()
    return watch.run(_store(args), interval=args.interval)


def cmd_sessions_serve(args: argparse.Namespace) -> int:
    from .sessions import SERVE_IDLE, serve

    try:
        return serve(_store(args), sys.stdin.fileno(), sys.stdout, idle=args.idle or SERVE_IDLE)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0  # the server went away


@_session_command
def cmd_usage(args: argparse.Namespace) -> int:
    report = _store(args).usage(args.session)
    if args.json:
        _print_json(report)
        return 0
    cols = ("input", "output", "reasoning", "cacheRead", "cacheWrite")
    print("%-9s %-38s %s %10s" % ("AGENT", "SESSION", " ".join("%10s" % c for c in cols), "COST"))
    rows = [(r["agent"], r["sessionId"], r["tokens"], r["cost"]) for r in report["sessions"]]
    rows.append(("", "TOTAL", report["total"]["tokens"], report["total"]["cost"]))
    for agent, sid, tokens, cost in rows:
        print("%-9s %-38s %s %10s" % (agent, sid, " ".join("%10d" % tokens[c] for c in cols),
                                      "-" if cost is None else "%.4f" % cost))
    return 0


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a whole number: %r" % text) from None


# --------------------------------------------------------------------------- tasks


def _home(args: argparse.Namespace) -> str:
    return getattr(args, "home", None) or os.path.expanduser("~")


def _task_command(func: Callable[[argparse.Namespace], object]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            result = func(args)
        except KeyError as e:
            _print_json({"error": {"code": "not_found", "message": "no task %s" % e.args[0]}})
            return 2
        except ValueError as e:
            _print_json({"error": {"code": "bad_request", "message": str(e)}})
            return 2
        if result is not None:
            _print_json(result)
        return 0
    return run


def cmd_search(args: argparse.Namespace) -> int:
    from .search import search

    try:
        text = args.text_option if args.text_option is not None else args.text
        found = search(_home(args), text or "", agent=args.agent, limit=args.limit)
    except ValueError as e:
        _print_json({"error": {"code": "bad_request", "message": str(e)}})
        return 2
    if args.json:
        _print_json(found)
        return 0
    for hit in found["results"]:
        print("%s %-9s %-38s %-9s %s" % (_short_time(hit["time"]), hit["agent"], hit["sessionId"], hit["role"],
                                         hit["snippet"]))
    return 0


def cmd_task_start(args: argparse.Namespace) -> object:
    from . import tasks

    return tasks.start(_home(args), args.id, args.agent, args.prompt, args.dir, args.session, args.model)


def cmd_task_status(args: argparse.Namespace) -> object:
    from . import tasks

    return tasks.status(_home(args), args.id)


def cmd_task_cancel(args: argparse.Namespace) -> object:
    from . import tasks

    return tasks.cancel(_home(args), args.id)


def cmd_task_output(args: argparse.Namespace) -> object:
    from . import tasks

    return tasks.output(_home(args), args.id, args.offset)


def cmd_task_list(args: argparse.Namespace) -> object:
    from . import tasks

    return {"tasks": tasks.list_tasks(_home(args))}


def cmd_task_run(args: argparse.Namespace) -> int:
    from . import tasks

    return tasks.run(_home(args), args.id)


def cmd_chat(args: argparse.Namespace) -> int:
    from .chat import ChatError, continue_session
    from .failures import one_line
    from .sessions import BadRequest, NotFound

    home = _home(args)
    try:
        session = _store(args).get(args.id)
        def stream(part: dict) -> None:  # one line per reply part, ahead of the answer
            print(json.dumps({"event": {"type": "reply.part", "part": part}}), flush=True)

        result = continue_session(home, session, args.text, timeout=args.timeout,
                                  on_part=stream if args.stream else None)
    except (NotFound, BadRequest) as e:
        _print_json({"error": {"code": "not_found" if isinstance(e, NotFound) else "bad_request", "message": str(e)}})
        return 2
    except ChatError as e:  # the agent gave no reply: its reason, in one line
        _print_json({"error": {"code": "agent_failed", "message": one_line(str(e))}})
        return 1
    _print_json(result)
    return 0


# --------------------------------------------------------------------------- changes


def _changes_command(func: Callable[[argparse.Namespace], Dict[str, object]]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from .changes import BadRequest, GitError

        try:
            result = func(args)
        except BadRequest as e:
            _print_json({"error": {"code": "bad_request", "message": str(e)}})
            return 2
        except GitError as e:
            _print_json({"error": {"code": "git_error", "message": str(e)}})
            return 1
        if args.json:
            _print_json(result)
        elif "diff" in result:
            sys.stdout.write(str(result["diff"]) or (str(result["message"] or "") + "\n"))
        else:
            print("%s %s" % (result["root"] or result["directory"], result["branch"] or result["state"]))
            for f in result["files"]:  # type: ignore[union-attr]
                print("%-10s %6s %6s  %s" % (f["status"], f["added"] if f["added"] is not None else "-",
                                             f["removed"] if f["removed"] is not None else "-", f["path"]))
            if result["message"]:
                print(result["message"])
        return 0
    return run


def cmd_changes(args: argparse.Namespace) -> Dict[str, object]:
    from . import changes

    return changes.state(args.dir, commits=args.commits)


def cmd_changes_diff(args: argparse.Namespace) -> Dict[str, object]:
    from . import changes

    return changes.diff(args.dir, file=args.file, base=args.base, max_bytes=args.max_bytes)


def cmd_ports(args: argparse.Namespace) -> int:
    from .ports import listening

    ports = listening()
    if args.json:
        _print_json({"ports": ports})
        return 0
    if not ports:
        print("no listening ports")
    for p in ports:
        print("%-6d %-8s %s" % (p["port"], p["pid"], p["command"]))
    return 0


def cmd_activity(args: argparse.Namespace) -> int:
    from .activity import report

    _print_json(report())
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    from .ports import relay

    return relay(args.port)


def _port(text: str) -> int:
    port = _count(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError("not a TCP port: %s" % text)
    return port


def _add_common(p: argparse.ArgumentParser, agent: bool = True, json_flag: bool = True) -> None:
    # --home is accepted after the command too (default SUPPRESS keeps the global value).
    p.add_argument("--home", default=argparse.SUPPRESS, metavar="DIR",
                   help="home directory whose agent stores are read (default: $HOME)")
    if agent:
        p.add_argument("--agent", metavar="AGENT",
                       help="only this agent's sessions: " + ", ".join(NAMES))
    if json_flag:
        p.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perry-worker", description="Perry's helper inside a workspace container."
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--home", default=None, metavar="DIR",
                        help="home directory whose agent stores are read (default: $HOME)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    sessions = commands.add_parser("sessions", help="the coding agents' sessions in this workspace")
    sub = sessions.add_subparsers(dest="sessions_command", metavar="SUBCOMMAND")
    p = sub.add_parser("list", help="every session, newest first")
    _add_common(p)
    p.set_defaults(func=cmd_sessions_list)
    p = sub.add_parser("get", help="one session")
    p.add_argument("id", metavar="ID")
    _add_common(p)
    p.set_defaults(func=cmd_sessions_get)
    p = sub.add_parser("messages", help="a session's messages, oldest first, paged")
    p.add_argument("id", metavar="ID")
    p.add_argument("--limit", type=_count, default=50, help="messages per page (default 50)")
    p.add_argument("--offset", type=_count, default=0, help="messages to skip from the oldest")
    _add_common(p)
    p.set_defaults(func=cmd_sessions_messages)
    p = sub.add_parser("watch", help="print one JSON line per session change until killed")
    p.add_argument("--interval", type=float, default=0.5, metavar="SECONDS", help="poll interval")
    _add_common(p)
    p.set_defaults(func=cmd_sessions_watch, json=True)
    p = sub.add_parser("serve", help="answer session lists, one JSON line per request line, until stdin ends")
    p.add_argument("--idle", type=float, default=None, metavar="SECONDS",
                   help="end after this long without a request (default 600)")
    p.set_defaults(func=cmd_sessions_serve)
    sessions.set_defaults(func=None, parser=sessions)

    p = commands.add_parser("usage", help="tokens and cost per session and in total")
    p.add_argument("--session", metavar="ID", help="only this session")
    _add_common(p)
    p.set_defaults(func=cmd_usage)

    p = commands.add_parser("search", help="messages of every agent session holding a text (case-insensitive)")
    p.add_argument("text", metavar="TEXT", nargs="?")
    p.add_argument("--text", dest="text_option", metavar="TEXT", help="the text, when it may start with a dash")
    p.add_argument("--limit", type=_count, default=50, help="at most this many messages, newest first (default 50)")
    _add_common(p)
    p.set_defaults(func=cmd_search)

    task = commands.add_parser("task", help="agent tasks dispatched by Perry, run detached in this workspace")
    sub = task.add_subparsers(dest="task_command", metavar="SUBCOMMAND")
    p = sub.add_parser("start", help="start an agent on a prompt in the background")
    p.add_argument("--id", required=True)
    p.add_argument("--agent", required=True, choices=NAMES)
    p.add_argument("--prompt", required=True)
    p.add_argument("--dir", required=True, help="the project directory the agent works in")
    p.add_argument("--session", help="continue this agent session")
    p.add_argument("--model", help="the agent's model name")
    _add_common(p, agent=False)
    p.set_defaults(func=_task_command(cmd_task_start))
    for name, func, text in (("status", cmd_task_status, "a task's state and output tail"),
                             ("cancel", cmd_task_cancel, "end a task's agent process")):
        p = sub.add_parser(name, help=text)
        p.add_argument("id", metavar="ID")
        _add_common(p, agent=False)
        p.set_defaults(func=_task_command(func))
    p = sub.add_parser("output", help="a task's output from a byte offset on, in whole lines")
    p.add_argument("id", metavar="ID")
    p.add_argument("--offset", type=_count, default=0, help="bytes of the output already read")
    _add_common(p, agent=False)
    p.set_defaults(func=_task_command(cmd_task_output))
    p = sub.add_parser("list", help="every task of this workspace")
    _add_common(p, agent=False)
    p.set_defaults(func=_task_command(cmd_task_list))
    p = sub.add_parser("_run", help=argparse.SUPPRESS)
    p.add_argument("id", metavar="ID")
    _add_common(p, agent=False, json_flag=False)
    p.set_defaults(func=cmd_task_run)
    task.set_defaults(func=None, parser=task)

    changes_parser = commands.add_parser("changes", help="the project's git state: branch, changed files, last commits")
    changes_parser.add_argument("--dir", metavar="DIR", help="a directory in the repository (default: $HOME)")
    changes_parser.add_argument("--commits", type=_count, default=10, metavar="N", help="last commits shown (default 10)")
    changes_parser.add_argument("--json", action="store_true", help="print JSON")
    changes_parser.set_defaults(func=_changes_command(cmd_changes))
    sub = changes_parser.add_subparsers(dest="changes_command", metavar="SUBCOMMAND")
    p = sub.add_parser("diff", help="the unified diff of the work tree (untracked files as additions)")
    p.add_argument("--dir", metavar="DIR", default=argparse.SUPPRESS, help="a directory in the repository")
    p.add_argument("--file", metavar="FILE", help="only this file (relative to --dir)")
    p.add_argument("--base", metavar="REF", help="compare with this commit (default: HEAD)")
    p.add_argument("--max-bytes", type=_count, default=512 * 1024, metavar="N",
                   help="cut the diff after N bytes (default 512 KiB)")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    p.set_defaults(func=_changes_command(cmd_changes_diff))

    p = commands.add_parser("chat", help="continue an agent session with one more message")
    p.add_argument("id", metavar="SESSION_ID")
    p.add_argument("--text", required=True)
    p.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS")
    p.add_argument("--stream", action="store_true",
                   help='print {"event": {"type": "reply.part", "part": ...}} lines as the reply grows, then the answer')
    _add_common(p)
    p.set_defaults(func=cmd_chat)

    p = commands.add_parser("ports", help="listening TCP ports and the processes that own them")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_ports)
    p = commands.add_parser("connect", help="relay stdin and stdout to 127.0.0.1:PORT")
    p.add_argument("port", type=_port, metavar="PORT")
    p.set_defaults(func=cmd_connect)

    p = commands.add_parser("activity", help="terminal writes, SSH commands and agents' CPU (for idle checks)")
    p.add_argument("--json", action="store_true", help="print one JSON object (always)")
    p.set_defaults(func=cmd_activity)

    p = commands.add_parser("health", help="report whether sshd, docker and the workspace are up")
    p.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS",
        help="poll until healthy or SECONDS have passed",
    )
    p.add_argument("--dind", action="store_true",
                   help="healthy only once the inner Docker engine is ready too (or off)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_health)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    expected = os.environ.get(EXPECT_ENV)
    if expected and expected != source_digest():
        _print_json({"error": {"code": "stale_worker", "message": "this worker's source is %s, the server's %s"
                               % (source_digest(), expected)}})
        return 3
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        (getattr(args, "parser", None) or parser).print_help(sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
