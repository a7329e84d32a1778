"""Session search (``perry-worker search``) against the plain ways, on generated stores.

    .venv/bin/python bench/search.py [--messages M] [--rounds R]

A benchmark, not a test: it prints figures and asserts nothing about them. In a temporary
home it writes three stores of M messages each (default 50,000): an OpenCode database
(``opencode.db``: OpenCode's ``session``/``message``/``part`` tables and columns, one text
part and one tool part per message, JSON ``data`` of OpenCode's shape), Claude Code
transcripts and Codex rollouts (100 JSONL files each, lines of their real shapes). A rare
phrase is in 20 messages of each store, a common word in every tenth. It times, R rounds
each (median, min):

- Perry's search in-process (``perry_worker.search.search``, limit 50) and as the process
  the server runs in a workspace (``python3 -m perry_worker search TEXT --json``);
- the plain ways over the same data: ``grep -ri TEXT`` over the JSONL folders (lines, not
  messages: no role, time or snippet), and SQLite's ``LIKE`` over every part's data (rows
  that hold the text anywhere, keys and tool output included).

Nothing outside the temporary directory is touched; it is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from perry_worker.search import search  # noqa: E402

WORDS = ("the build passes now and the tests are green again after the refactor of the parser module "
         "which had grown too large to read comfortably").split()
RARE = "quartz flamingo"
COMMON = "kumquat"
FILES = 100


def sentence(i: int, *, rare: bool) -> str:
    words = [WORDS[(i * 7 + k) % len(WORDS)] for k in range(30)]
    if i % 10 == 0:
        words.insert(5, COMMON)
    if rare:
        words.insert(12, RARE.split()[0].capitalize() + " " + RARE.split()[1])
    return " ".join(words) + "."


def rare_at(m: int) -> set[int]:
    return {m * k // 20 + 3 for k in range(20)}


def write_opencode(home: Path, m: int) -> None:
    base = home / ".local" / "share" / "opencode"
    base.mkdir(parents=True)
    db = sqlite3.connect(base / "opencode.db")
    db.executescript("""
        CREATE TABLE session (id TEXT PRIMARY KEY, project_id TEXT, parent_id TEXT, slug TEXT, directory TEXT,
            title TEXT, version TEXT, time_created INTEGER, time_updated INTEGER, time_archived INTEGER);
        CREATE TABLE message (id TEXT PRIMARY KEY, session_id TEXT, time_created INTEGER, time_updated INTEGER,
            data TEXT);
        CREATE TABLE part (id TEXT PRIMARY KEY, message_id TEXT, session_id TEXT, time_created INTEGER,
            time_updated INTEGER, data TEXT);
        CREATE INDEX message_session_idx ON message (session_id);
        CREATE INDEX part_message_idx ON part (message_id);
    """)
    rare, t0 = rare_at(m), 1_760_000_000_000
    per = m // FILES
    sessions, messages, parts = [], [], []
    for s in range(FILES):
        sid = f"ses_{s:012x}bench{s:05d}"
        sessions.append((sid, "proj", None, f"s{s}", "/home/workspace", f"Session {s}", "1.18.0", t0, t0, None))
        for j in range(per):
            i = s * per + j
            mid, when = f"msg_{i:012x}bench{i:05d}", t0 + i * 1000
            role = "user" if j % 2 == 0 else "assistant"
            messages.append((mid, sid, when, when, json.dumps({"id": mid, "sessionID": sid, "role": role,
                                                               "time": {"created": when}})))
            parts.append((f"prt_{i:012x}a", mid, sid, when, when, json.dumps(
                {"id": f"prt_{i:012x}a", "messageID": mid, "sessionID": sid, "type": "text",
                 "text": sentence(i, rare=i in rare)})))
            parts.append((f"prt_{i:012x}b", mid, sid, when, when, json.dumps(
                {"id": f"prt_{i:012x}b", "messageID": mid, "sessionID": sid, "type": "tool", "tool": "bash",
                 "state": {"status": "completed", "input": {"command": "ls"}, "output": "README.md src tests"}})))
    db.executemany("INSERT INTO session VALUES (?,?,?,?,?,?,?,?,?,?)", sessions)
    db.executemany("INSERT INTO message VALUES (?,?,?,?,?)", messages)
    db.executemany("INSERT INTO part VALUES (?,?,?,?,?,?)", parts)
    db.commit()
    db.close()


def write_claude(home: Path, m: int) -> Path:
    folder = home / ".claude" / "projects" / "-home-workspace-project"
    folder.mkdir(parents=True)
    rare, per = rare_at(m), m // FILES
    for s in range(FILES):
        sid = f"00000000-0000-4000-8000-{s:012d}"
        with open(folder / f"{sid}.jsonl", "w") as f:
            parent = None
            for j in range(per):
                i = s * per + j
                uuid = f"10000000-0000-4000-8000-{i:012d}"
                when = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1_760_000_000 + i))
                text = sentence(i, rare=i in rare)
                if j % 2 == 0:
                    message = {"role": "user", "content": text}
                    kind = "user"
                else:
                    message = {"id": f"msg_{i}", "type": "message", "role": "assistant", "model": "m",
                               "content": [{"type": "text", "text": text}],
                               "usage": {"input_tokens": 10, "output_tokens": 20}}
                    kind = "assistant"
                f.write(json.dumps({"parentUuid": parent, "isSidechain": False, "type": kind, "message": message,
                                    "uuid": uuid, "timestamp": when, "sessionId": sid,
                                    "cwd": "/home/workspace/project", "version": "2.1.197"}) + "\n")
                parent = uuid
    return folder.parent


def write_codex(home: Path, m: int) -> Path:
    folder = home / ".codex" / "sessions" / "2026" / "11" / "30"
    folder.mkdir(parents=True)
    rare, per = rare_at(m), m // FILES
    for s in range(FILES):
        sid = f"20000000-0000-4000-8000-{s:012d}"
        with open(folder / f"rollout-2026-11-30T00-00-{s:02d}-{sid}.jsonl", "w") as f:
            f.write(json.dumps({"timestamp": "2026-11-30T00:00:00.000Z", "type": "session_meta",
                                "payload": {"id": sid, "timestamp": "2026-11-30T00:00:00.000Z",
                                            "cwd": "/home/workspace/project", "cli_version": "0.169.0"}}) + "\n")
            for j in range(per):
                i = s * per + j
                when = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1_760_000_000 + i))
                role = "user" if j % 2 == 0 else "assistant"
                kind = "input_text" if role == "user" else "output_text"
                f.write(json.dumps({"timestamp": when, "type": "response_item", "payload": {
                    "type": "message", "role": role,
                    "content": [{"type": kind, "text": sentence(i, rare=i in rare)}]}}) + "\n")
    return home / ".codex"


def timed(fn, rounds: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    m, rounds = args.messages, args.rounds
    with tempfile.TemporaryDirectory(prefix="perry-bench-search-") as tmp:
        home = Path(tmp)
        start = time.perf_counter()
        write_opencode(home, m)
        claude_dir = write_claude(home, m)
        codex_dir = write_codex(home, m)
        print(f"stores: {m:,} messages each for OpenCode, Claude Code, Codex "
              f"(written in {time.perf_counter() - start:.1f} s)")
        db = home / ".local" / "share" / "opencode" / "opencode.db"
        worker = [sys.executable, "-m", "perry_worker", "--home", str(home), "search"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def sqlite_like(text):
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                return conn.execute("SELECT COUNT(*) FROM part WHERE data LIKE ?", (f"%{text}%",)).fetchone()[0]

        def grep(text, folder):
            out = subprocess.run(["grep", "-ri", text, str(folder)], capture_output=True, text=True).stdout
            return out.count("\n")

        rows = []
        for label, text in (("rare phrase (20 per store)", RARE), (f"common word ({m // 10:,} per store)", COMMON)):
            for agent in ("opencode", "claude", "codex"):
                perry, perry_min, found = timed(lambda: search(str(home), text, agent=agent, limit=50), rounds)
                proc, _, _ = timed(lambda: subprocess.run([*worker, text, "--agent", agent, "--json"], env=env,
                                                          capture_output=True, check=True), rounds)
                if agent == "opencode":
                    plain_name, (plain, _, plain_found) = "sqlite LIKE", timed(lambda: sqlite_like(text), rounds)
                else:
                    folder = claude_dir if agent == "claude" else codex_dir
                    plain_name, (plain, _, plain_found) = "grep -ri", timed(lambda: grep(text, folder), rounds)
                rows.append((label, agent, len(found["results"]), perry, perry_min, proc, plain_name, plain,
                             plain_found))
        print(f"\nmedian of {rounds} rounds; Perry's search stops at 50 results (newest first)\n")
        print(f"{'query':30} {'agent':9} {'hits':>5} {'perry':>9} {'(min)':>9} {'process':>9}  "
              f"{'plain way':12} {'plain':>9} {'matches':>8} {'perry/plain':>11}")
        for label, agent, hits, perry, perry_min, proc, plain_name, plain, plain_found in rows:
            print(f"{label:30} {agent:9} {hits:5d} {perry * 1000:7.1f}ms {perry_min * 1000:7.1f}ms "
                  f"{proc * 1000:7.1f}ms  {plain_name:12} {plain * 1000:7.1f}ms {plain_found:8d} "
                  f"{perry / plain:10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
