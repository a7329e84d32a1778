"""Perry's agent-session reads against OpenCode's own CLI, on a big OpenCode store.

    .venv/bin/python bench/sessions.py [--sessions N] [--messages M] [--rounds R]

A benchmark, not a test: it prints figures and asserts nothing about them. In one real
workspace (made by Perry's core, the real workspace image, DinD off) it builds an OpenCode
1.18 store of N sessions and M messages (default 1,000 and 50,000) and times, R rounds
each (median, p95, min):

- Perry's session list end to end: ``Perry.sessions.list(name)`` (a workspace lookup, a JSON
  line to the workspace's lister, a `perry-worker sessions serve` exec kept open, and its
  answer parsed on the host) on the first call (no lister yet: it starts one, which reads the
  whole store), when nothing changed since the last call, and after one new message (written
  as OpenCode writes one: its row, the session's totals); the one-shot ``perry-worker sessions
  list`` exec the list used before the lister; and the unchanged list through a real ``perry
  serve``: ``GET .../workspaces/{name}/sessions``;
- a 50-message page of the biggest session, its last and its first page:
  ``Perry.sessions.messages(name, id, limit=50, offset=...)``, and the last page over HTTP;
- the plain way: ``opencode session list --format json`` run by ``docker exec`` in the
  same workspace as the workspace user (the same exec calls Perry's ``_exec`` makes:
  create, start with demuxed output, inspect; its JSON parsed too). OpenCode lists its
  100 newest by default, so it is timed with ``-n N`` (all) too, written to a file and
  cat: OpenCode 1.18 cuts JSON of more than 64 kB that it writes to a pipe (how often is
  counted, piped the plain way, in one more row). For reference a
  bare ``docker exec true`` the same way and ``opencode export`` of the biggest session
  (OpenCode's CLI has no paged read of a conversation);

then, inside the container (one exec, no Docker in the figures), the same commands as
processes and Perry's reader in-process, which shows where Perry's time goes.

The store is OpenCode's own: the real ``opencode run`` talks once to the stand-in model
(tests/modelserver.py, through tests/integration/agents.py), so OpenCode creates the
database, its schema and one real session (a prompt, a ``write`` tool call, an answer:
3 messages, 7 parts). A script run inside the container (python3's sqlite3, as user
``workspace``) then clones that session's rows into N-1 more sessions holding M-3 more
messages with their parts: ids of OpenCode's shape (prefix, 12 hex digits of time and
counter, descending for sessions, 14 base-62 characters), timestamps spread over 90
days, the JSON ``data`` of the real rows with their times moved and ``parentID`` pointing
at the clone's own user message. One session, in the middle of the time range, is the
biggest (``--biggest``, default M/10); the others share the rest evenly. OpenCode's own
``session list`` and ``export`` then check that it reads the store.

Everything it makes is named ``perry-bench-sess-*`` (the container, its volumes), the
network ``perry-bench-sess``; SSH host ports 2740-2749, ``perry serve`` on 2750-2759. All of
it is removed in a ``finally``, with the server process and the temporary directory;
``perry-bench-sess-`` leftovers of a killed run are removed at start. Objects of other
prefixes (the other benchmarks' ``perry-bench-`` ones included) are never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import (
    IMAGE,
    ROOT,
    Server,
    clean_up,
    clean_up_on_signals,
    ms,
    now,
    open_engine,
    pct,
    say,
    ssh_key,
    table,
)

sys.path.insert(1, str(ROOT))  # tests.integration.agents: the stand-in model and `opencode run`

from perry_jupyter.core.services import Perry
from perry_jupyter.app import PerryApp
from tests.integration.agents import opencode, start_model

PREFIX = "perry-bench-sess-"
NETWORK = "perry-bench-sess"
WORKSPACE = "store"
CONTAINER = PREFIX + WORKSPACE
SSH_PORTS = (2740, 2749)
SERVER_PORTS = (2750, 2759)
HOME = "/home/workspace"
DB = f"{HOME}/.local/share/opencode/opencode.db"
PAGE = 50
OPENCODE_LIST = ["opencode", "session", "list", "--format", "json"]  # OpenCode's default: the 100 newest
OC_FILE = "/tmp/perry-bench-sessions.json"


def opencode_all(n: int) -> list[str]:
    """Every session (`-n N`), through a file: OpenCode 1.18 cuts piped output it has not flushed at exit."""
    return ["sh", "-c", f"opencode session list --format json -n {n} > {OC_FILE} && cat {OC_FILE}"]

WRITE_HELLO = [
    {"tool": "write", "input": {"filePath": f"{HOME}/hello.txt", "content": "hi from the model\n"}},
    "I wrote hello.txt.",
]


# ------------------------------------------------------------ the store

# Run inside the workspace as user `workspace`: python3 GENERATOR DB SESSIONS MESSAGES BIGGEST SEED.
# Clones the one real session OpenCode wrote into SESSIONS-1 more, MESSAGES-3 more messages.
GENERATOR = r'''
import json, math, os, random, sqlite3, sys, time

db_path = sys.argv[1]
n_sessions, n_messages, n_biggest, seed = (int(x) for x in sys.argv[2:6])
rnd = random.Random(seed)
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_clock = [None, 0]


def new_id(prefix, ms, descending=False):
    """OpenCode's id shape: 6 bytes of ms * 0x1000 + counter (inverted when descending), 14 base-62."""
    if ms != _clock[0]:
        _clock[0], _clock[1] = ms, 0
    _clock[1] += 1
    n = ms * 0x1000 + _clock[1]
    if descending:
        n = ~n
    return "%s_%012x%s" % (prefix, n & 0xFFFFFFFFFFFF, "".join(rnd.choice(B62) for _ in range(14)))


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def shifted(obj, delta):
    """A copy of a JSON value with the numbers of every "time" object moved by delta ms."""
    if isinstance(obj, dict):
        return {k: ({tk: tv + delta if is_number(tv) else shifted(tv, delta) for tk, tv in v.items()}
                    if k == "time" and isinstance(v, dict) else shifted(v, delta))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [shifted(v, delta) for v in obj]
    return obj


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


t_start = time.time()
conn = sqlite3.connect(db_path, isolation_level=None, timeout=10)
conn.row_factory = sqlite3.Row
conn.execute("PRAGMA synchronous = OFF")
real = [dict(r) for r in conn.execute("SELECT * FROM session")]
if len(real) != 1:
    sys.exit("expected the one real session, found %d" % len(real))
src = real[0]
msgs = [dict(r) for r in conn.execute("SELECT * FROM message WHERE session_id = ? ORDER BY time_created, id",
                                     (src["id"],))]
template = []
for m in msgs:
    parts = [dict(p) for p in conn.execute("SELECT * FROM part WHERE message_id = ? ORDER BY id", (m["id"],))]
    template.append((m, json.loads(m["data"]), [(p, json.loads(p["data"])) for p in parts]))
t0 = msgs[0]["time_created"]
span = max(max(m["time_updated"] for m in msgs), max(p["time_updated"] for _, _, ps in template for p, _ in ps)) - t0
turn_ms = max(span + 5000, 30000)

clones = n_sessions - 1
rest = n_messages - len(msgs)
big_at = clones // 2
if clones == 1:
    counts = [rest]
else:
    per, extra = divmod(rest - n_biggest, clones - 1)
    counts = [per + (1 if i < extra else 0) for i in range(clones - 1)]
    counts.insert(big_at, n_biggest)

now_ms = max(int(time.time() * 1000), src["time_updated"] + 1)
gap = 90 * 86400 * 1000 // max(1, clones)
s_cols, m_cols = list(src), list(msgs[0])
p_cols = list(template[0][2][0][0]) if template[0][2] else ["id", "message_id", "session_id", "time_created",
                                                             "time_updated", "data"]
s_sql = "INSERT INTO session (%s) VALUES (%s)" % (",".join(s_cols), ",".join("?" * len(s_cols)))
m_sql = "INSERT INTO message (%s) VALUES (%s)" % (",".join(m_cols), ",".join("?" * len(m_cols)))
p_sql = "INSERT INTO part (%s) VALUES (%s)" % (",".join(p_cols), ",".join("?" * len(p_cols)))
TOKENS = (("tokens_input", "input"), ("tokens_output", "output"), ("tokens_reasoning", "reasoning"))

conn.execute("BEGIN")
n_parts = 0
biggest = None
for k, count in enumerate(counts):  # k = 0 is the newest clone
    end = now_ms - 60000 - k * gap
    turns = math.ceil(count / len(template))
    start = end - turns * turn_ms
    sid = new_id("ses", start - 500, descending=True)
    m_rows, p_rows = [], []
    sums = {"tokens_input": 0, "tokens_output": 0, "tokens_reasoning": 0, "tokens_cache_read": 0,
            "tokens_cache_write": 0, "cost": 0.0}
    last = start
    ids = {}
    for j in range(count):
        turn, slot = divmod(j, len(template))
        m, info, parts = template[slot]
        delta = start + turn * turn_ms - t0
        if slot == 0:
            ids = {}  # a new turn: its assistant messages point at its own user message
        mid = ids[m["id"]] = new_id("msg", m["time_created"] + delta)
        data = shifted(info, delta)
        if data.get("parentID") in ids:
            data["parentID"] = ids[data["parentID"]]
        if data.get("role") == "assistant":
            tok = data.get("tokens") or {}
            for col, key in TOKENS:
                sums[col] += int(tok.get(key) or 0)
            sums["tokens_cache_read"] += int((tok.get("cache") or {}).get("read") or 0)
            sums["tokens_cache_write"] += int((tok.get("cache") or {}).get("write") or 0)
            sums["cost"] += float(data.get("cost") or 0)
        row = dict(m, id=mid, session_id=sid, time_created=m["time_created"] + delta,
                   time_updated=m["time_updated"] + delta, data=dumps(data))
        m_rows.append(tuple(row[c] for c in m_cols))
        last = max(last, row["time_updated"])
        for p, pdata in parts:
            prow = dict(p, id=new_id("prt", p["time_created"] + delta), message_id=mid, session_id=sid,
                        time_created=p["time_created"] + delta, time_updated=p["time_updated"] + delta,
                        data=dumps(shifted(pdata, delta)))
            p_rows.append(tuple(prow[c] for c in p_cols))
    srow = dict(src, id=sid, slug="%s-%d" % (src["slug"], k + 1), title="%s (copy %d)" % (src["title"], k + 1),
                time_created=start - 500, time_updated=last, **{c: v for c, v in sums.items() if c in src})
    conn.execute(s_sql, tuple(srow[c] for c in s_cols))
    conn.executemany(m_sql, m_rows)
    conn.executemany(p_sql, p_rows)
    n_parts += len(p_rows)
    if biggest is None or count > biggest[1]:
        biggest = (sid, count)
conn.execute("COMMIT")
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
totals = {t: conn.execute("SELECT COUNT(*) FROM %s" % t).fetchone()[0] for t in ("session", "message", "part")}
conn.close()
print(json.dumps({"totals": totals, "biggest": {"id": biggest[0], "messages": biggest[1]},
                  "realSession": src["id"], "partsAdded": n_parts, "seconds": round(time.time() - t_start, 2),
                  "dbBytes": os.path.getsize(db_path)}))
'''

# Run inside the workspace as user `workspace`: python3 WRITE_ONE DB. One assistant message more in
# the newest session, as OpenCode writes one: its row, the session's totals and time_updated.
WRITE_ONE = r'''
import json, sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
sid, = conn.execute("SELECT id FROM session ORDER BY time_updated DESC LIMIT 1").fetchone()
cols = [r[1] for r in conn.execute("PRAGMA table_info(message)")]
row = dict(zip(cols, conn.execute("SELECT * FROM message WHERE session_id = ? AND data LIKE '%%\"assistant\"%%' "
                                  "LIMIT 1", (sid,)).fetchone()))
now = int(time.time() * 1000)
data = json.loads(row["data"])
data["time"] = {"created": now, "completed": now}
row.update(id="msg_%012xbench%09d" % (now * 0x1000, now % 10**9), time_created=now, time_updated=now,
           data=json.dumps(data))
tok = data.get("tokens") or {}
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO message (%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))),
             [row[c] for c in cols])
conn.execute("UPDATE session SET time_updated = ?, tokens_input = tokens_input + ?, tokens_output = tokens_output + ?, "
             "cost = cost + ? WHERE id = ?", (now, int(tok.get("input") or 0), int(tok.get("output") or 0),
                                              float(data.get("cost") or 0), sid))
conn.execute("COMMIT")
'''

# Run inside the workspace as user `workspace`, with PYTHONPATH=/opt/perry: the same reads with no
# Docker in between. python3 INSIDE ROUNDS BIGGEST_ID ITS_MESSAGES ALL_SESSIONS
INSIDE = r'''
import json, subprocess, sys, time

rounds, big, total, n_all = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
last = max(0, total - __PAGE__)
DEVNULL = subprocess.DEVNULL
procs = {
    "python3 -c pass": ["python3", "-c", "pass"],
    "perry-worker --version": ["perry-worker", "--version"],
    "perry-worker sessions list --json": ["perry-worker", "sessions", "list", "--json"],
    "perry-worker sessions messages (last page)": ["perry-worker", "sessions", "messages", big, "--limit", "__PAGE__",
                                                   "--offset", str(last), "--json"],
    "opencode --version": ["opencode", "--version"],
    "opencode session list --format json": __OC_LIST__,
    "opencode session list --format json -n N": __OC_LIST__ + ["-n", str(n_all)],
}
from perry_worker.opencode import OpenCodeReader
from perry_worker.sessions import SessionStore

def store():
    return SessionStore()  # a fresh one, as each perry-worker process has: no cache

def list_and_dump():
    return json.dumps(store().list())

kept = SessionStore()  # what the lister (`perry-worker sessions serve`) keeps between two lists
kept.list()

calls = {
    "SessionStore().list() + json.dumps": list_and_dump,
    "a kept SessionStore's list() + dumps, store unchanged (the lister)": lambda: json.dumps(kept.list()),
    "  OpenCode reader: summaries (SQL stats)": lambda: OpenCodeReader("/home/workspace").sqlite.summaries(),
    "  the claude + codex readers (empty homes)": lambda: SessionStore(agents=["claude", "codex"]).list(),
    "SessionStore().messages() last page + dumps": lambda: json.dumps(store().messages(big, __PAGE__, last)),
    "  the page in SQL: SqliteStore.page()": lambda: OpenCodeReader("/home/workspace").sqlite.page(big, __PAGE__, last),
    "  (whole session: SqliteStore.messages())": lambda: OpenCodeReader("/home/workspace").sqlite.messages(big),
    "  (a summary: SessionStore().get())": lambda: store().get(big),
}
out = {k: [] for k in list(procs) + list(calls)}
for r in range(rounds + 1):  # the first round warms the page cache and is dropped
    for k, cmd in procs.items():
        t = time.perf_counter()
        subprocess.run(cmd, stdout=DEVNULL, stderr=DEVNULL, check=True)
        if r:
            out[k].append(time.perf_counter() - t)
    for k, fn in calls.items():
        t = time.perf_counter()
        fn()
        if r:
            out[k].append(time.perf_counter() - t)
print(json.dumps(out))
'''.replace("__PAGE__", str(PAGE)).replace("__OC_LIST__", json.dumps(OPENCODE_LIST))


def exec_plain(api, command: list[str], env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """A `docker exec` as the workspace user in its home, the calls Perry's `_exec` makes."""
    exec_id = api.exec_create(CONTAINER, command, user="workspace", workdir=HOME,
                              environment={"HOME": HOME, **(env or {})})["Id"]
    out, err = api.exec_start(exec_id, demux=True)
    return api.exec_inspect(exec_id).get("ExitCode"), out or b"", err or b""


def json_out(raw: bytes) -> Any:
    """JSON printed by a CLI (OpenCode may print a line or two before it)."""
    text = raw.decode("utf-8", "replace")
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    return json.loads(text[min(starts):]) if starts else None


# -------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=1000, help="sessions in the store (default 1000)")
    ap.add_argument("--messages", type=int, default=50000, help="messages in the store (default 50000)")
    ap.add_argument("--biggest", type=int, default=None, help="messages of the biggest session (default M/10)")
    ap.add_argument("--rounds", type=int, default=20, help="timed rounds per figure (default 20)")
    ap.add_argument("--export-rounds", type=int, default=3, help="rounds of `opencode export` (default 3)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    n_sessions, n_messages, rounds = args.sessions, args.messages, max(1, args.rounds)
    biggest = args.biggest if args.biggest is not None else n_messages // 10
    rest = n_messages - 3  # the real session holds 3
    if n_sessions < 2 or rest < n_sessions - 1 or not (1 <= biggest <= rest) \
            or (n_sessions > 2 and rest - biggest < n_sessions - 2):
        ap.error("need at least 2 sessions and enough messages for one per session (the real one holds 3)")

    clean_up_on_signals()
    client = open_engine(PREFIX, NETWORK, timeout=600)
    if client is None:
        return 2

    tmp = Path(tempfile.mkdtemp(prefix=PREFIX))
    state_dir = tmp / "state"
    server = Server(state_dir, tmp / "serve.log", prefix=PREFIX, network=NETWORK, ssh_ports=SSH_PORTS,
                    ports=SERVER_PORTS, options=("--PerryApp.dind_mode=off",))
    perry: Perry | None = None
    t_run = now()
    try:
        public_key = ssh_key(tmp)
        (tmp / "home").mkdir()  # an empty host home: none of this machine's agent credentials are copied
        settings = PerryApp(workspace_prefix=PREFIX, image_tag=IMAGE, network=NETWORK, ssh_port_range=SSH_PORTS,
                            dind_mode="off", ssh_public_keys=[str(public_key)],
                            git_config=None, host_home=str(tmp / "home")).core_config()
        perry = Perry(state_dir, settings)
        api = client.api
        say(f"engine {client.version().get('Version')}, image {IMAGE}, {os.cpu_count()} CPUs; state {state_dir}")

        # ------------------------------------------- the workspace and the store
        t0 = now()
        perry.workspaces.create(WORKSPACE)
        container = client.containers.get(CONTAINER)
        say(f"workspace {WORKSPACE!r} ready in {now() - t0:.2f} s (DinD off)")
        start_model(container, WRITE_HELLO, title="Write a hello file")
        t0 = now()
        run = opencode(container, "--format", "json", "write hello.txt please")
        if run.exit_code != 0:
            raise RuntimeError(f"opencode run failed ({run.exit_code}): {run.output[-2000:]!r}")
        oc_version = exec_plain(api, ["opencode", "--version"])[1].decode().strip()
        say(f"real `opencode run` (OpenCode {oc_version}, stand-in model) wrote its session in {now() - t0:.2f} s")

        code, out, err = exec_plain(api, ["python3", "-c", GENERATOR, DB, str(n_sessions), str(n_messages),
                                          str(biggest), str(args.seed)])
        if code != 0:
            raise RuntimeError(f"generating the store failed ({code}): {err.decode()[-2000:]}")
        made = json.loads(out)
        big_id, big_count = made["biggest"]["id"], made["biggest"]["messages"]
        totals = made["totals"]
        say(f"store: {totals['session']} sessions, {totals['message']} messages, {totals['part']} parts, "
            f"{made['dbBytes'] / 1e6:.1f} MB, written in {made['seconds']} s; biggest session {big_id} "
            f"({big_count} messages)")

        # ------------------------------------------------------- checks
        n_all = totals["session"]
        code, out, err = exec_plain(api, OPENCODE_LIST)
        listed = json_out(out) if code == 0 else None
        oc_default = len(listed) if isinstance(listed, list) else None
        code, out, err = exec_plain(api, opencode_all(n_all))
        listed = json_out(out) if code == 0 else None
        oc_all = len(listed) if isinstance(listed, list) else None
        say(f"OpenCode itself: `opencode session list --format json` lists {oc_default} (its default: the newest "
            f"100); with -n {n_all}: {oc_all}" + ("" if code == 0 else f" (exit {code}: {err.decode()[-300:]})"))
        t0 = now()
        code, out, err = exec_plain(api, ["sh", "-c", f"opencode export {big_id} > {OC_FILE} && cat {OC_FILE}"])
        export_first = now() - t0
        exported = json_out(out) if code == 0 else None
        oc_big = len(exported["messages"]) if isinstance(exported, dict) else None
        say(f"OpenCode itself: `opencode export {big_id}` gives {oc_big} messages, "
            f"{len(out) / 1e6:.1f} MB, in {export_first:.2f} s" + ("" if code == 0 else f" (exit {code})"))
        perry_list = perry.sessions.list(WORKSPACE)
        perry_big = next((s for s in perry_list if s["sessionId"] == big_id), None)
        page = perry.sessions.messages(WORKSPACE, big_id, limit=PAGE, offset=max(0, big_count - PAGE))
        same = isinstance(exported, dict) and [m["info"]["id"] for m in exported["messages"][-PAGE:]] == \
            [m["id"] for m in page["messages"]]
        say(f"Perry: lists {len(perry_list)} sessions; biggest has messageCount "
            f"{perry_big and perry_big['messageCount']}, page total {page['total']}, "
            f"{len(page['messages'])} on the last page ({'the same ids as' if same else 'NOT the same as'} "
            f"OpenCode's export)")
        boot = server.start()
        http_list = server.get(f"workspaces/{WORKSPACE}/sessions")["sessions"]
        say(f"perry serve up in {boot:.2f} s; GET .../sessions lists {len(http_list)}")

        # ------------------------------------------------------- timings
        last_off = max(0, big_count - PAGE)
        sizes: dict[str, int] = {}
        cut = {"runs": 0, "bad": 0}

        def oc(key: str, command: list[str]) -> Callable[[], None]:
            def run() -> None:
                code, out, err = exec_plain(api, command)
                sizes[key] = len(out)
                if code != 0 or not isinstance(json_out(out), list):
                    raise RuntimeError(f"{' '.join(command)}: exit {code}, {len(out)} bytes, {err[-300:]!r}")
            return run

        def oc_piped() -> None:  # -n N straight to the exec's stdout pipe: does the JSON arrive whole?
            _, out, _ = exec_plain(api, [*OPENCODE_LIST, "-n", str(n_all)])
            cut["runs"] += 1
            try:
                whole = isinstance(json_out(out), list)
            except ValueError:
                whole = False
            cut["bad"] += not whole

        def timed(setup: Callable[[], Any], work: Callable[[], Any]) -> Callable[[], float]:
            """An operation whose setup is not timed."""
            def run() -> float:
                setup()
                t0 = now()
                work()
                return now() - t0
            return run

        def first_list() -> None:  # no lister, no summaries file: the next list reads everything
            perry.sessions.listers.stop_all()
            exec_plain(api, ["rm", "-f", f"{HOME}/.cache/perry/opencode-sessions.json"])

        def restarted_list() -> None:  # no lister, but the summaries file of the last list
            perry.sessions.listers.stop_all()

        def opencode_writes() -> None:  # one message more, as OpenCode writes it (row, totals, time)
            code, _, err = exec_plain(api, ["python3", "-c", WRITE_ONE, DB])
            if code != 0:
                raise RuntimeError(f"writing a message failed: {err.decode()[-500:]}")

        def list_now() -> Any:
            return perry.sessions.list(WORKSPACE)

        ops: dict[str, Callable[[], Any]] = {
            "exec true": lambda: exec_plain(api, ["true"]),
            "lookup": lambda: perry.workspaces.get(WORKSPACE),
            "oc list": oc("oc list", OPENCODE_LIST),
            "oc all": oc("oc all", opencode_all(n_all)),
            "oc piped": oc_piped,
            "perry first list": timed(first_list, list_now),
            "perry list": timed(list_now, list_now),
            "perry list new lister": timed(restarted_list, list_now),
            "perry list after a write": timed(opencode_writes, list_now),
            "one-shot list": lambda: perry.sessions._worker(WORKSPACE, "sessions", "list"),
            "http list": timed(lambda: server.get(f"workspaces/{WORKSPACE}/sessions"),
                               lambda: server.get(f"workspaces/{WORKSPACE}/sessions")),
            "perry last page": lambda: perry.sessions.messages(WORKSPACE, big_id, limit=PAGE, offset=last_off),
            "perry first page": lambda: perry.sessions.messages(WORKSPACE, big_id, limit=PAGE, offset=0),
            "http last page": lambda: server.get(f"workspaces/{WORKSPACE}/sessions/{big_id}/messages",
                                                 limit=PAGE, offset=last_off),
        }
        times: dict[str, list[float]] = {k: [] for k in ops}
        load_before = os.getloadavg()[0]
        say(f"timing {len(ops)} operations from the host, {rounds} rounds (+1 warm-up), order rotated each round")
        keys = list(ops)
        for r in range(rounds + 1):
            order = keys[r % len(keys):] + keys[: r % len(keys)]
            for k in order:
                t0 = now()
                took = ops[k]()
                if r:
                    times[k].append(took if isinstance(took, float) else now() - t0)
        perry_size = len(json.dumps(perry.sessions.list(WORKSPACE)))
        page_size = len(json.dumps(perry.sessions.messages(WORKSPACE, big_id, limit=PAGE, offset=last_off)))
        export_times = [export_first]
        for _ in range(max(0, args.export_rounds - 1)):
            t0 = now()
            exec_plain(api, ["sh", "-c", f"opencode export {big_id} > {OC_FILE} && cat {OC_FILE}"])
            export_times.append(now() - t0)
        wal = exec_plain(api, ["test", "-e", DB + "-wal"])[0] == 0
        load_after = os.getloadavg()[0]
        say("timing inside the container (one exec: processes, and Perry's reader in-process)")
        code, out, err = exec_plain(api, ["python3", "-c", INSIDE, str(rounds), big_id, str(big_count), str(n_all)],
                                    env={"PYTHONPATH": "/opt/perry"})
        inside = json.loads(out) if code == 0 else {}
        if code != 0:
            say(f"  inside timing failed ({code}): {err.decode()[-500:]}")

        # ---------------------------------------------------------- report
        print("\n" + "=" * 100)
        print(f"Perry sessions benchmark: OpenCode {oc_version} store of {totals['session']} sessions, "
              f"{totals['message']} messages, {totals['part']} parts ({made['dbBytes'] / 1e6:.1f} MB); "
              f"biggest session {big_count} messages")
        print(f"image {IMAGE}, engine {client.version().get('Version')}, {os.cpu_count()} CPUs, {rounds} rounds; "
              f"opencode.db-wal present after the runs: {'yes' if wal else 'no'}; host load average "
              f"{load_before:.2f} before the host timings, {load_after:.2f} after")
        print(f"checks: opencode session list -> {oc_default} (-n {n_all}: {oc_all}); opencode export <biggest> -> "
              f"{oc_big} messages; Perry list -> {len(perry_list)} (HTTP {len(http_list)}); "
              f"Perry page total -> {page['total']}, last page {'matches' if same else 'DIFFERS FROM'} the export")

        base, base_all = statistics.median(times["oc list"]), statistics.median(times["oc all"])

        def row(label: str, values: list[float]) -> list[str]:
            med = statistics.median(values)
            return [label, ms(med), ms(pct(values, 95)), ms(min(values)), f"{med / base:.2f}x", f"{med / base_all:.2f}x"]

        table(f"End to end from this host, ms ({rounds} rounds; p95 = nearest rank)",
              ["", "median", "p95", "min", "/ oc list", "/ oc list -n"],
              [row("docker exec true (reference)", times["exec true"]),
               row("Perry's workspace lookup (state file + 1 Docker list)", times["lookup"]),
               row(f"opencode session list --format json (plain way; {oc_default} newest)", times["oc list"]),
               row(f"opencode session list --format json -n {n_all} (all; via a file)", times["oc all"]),
               row(f"  the same piped, whole JSON in {cut['runs'] - cut['bad']} of {cut['runs']} runs",
                   times["oc piped"]),
               row(f"Perry.sessions.list(name), first call ({len(perry_list)} sessions; lister started)",
                   times["perry first list"]),
               row("Perry.sessions.list(name), nothing changed since the last (the lister)", times["perry list"]),
               row("  the same from a new lister (its summaries file)", times["perry list new lister"]),
               row("Perry.sessions.list(name) after one new message", times["perry list after a write"]),
               row("  one-shot `perry-worker sessions list` exec (the way before the lister)", times["one-shot list"]),
               row("GET /perry/api/workspaces/{name}/sessions, nothing changed", times["http list"]),
               row(f"Perry.sessions.messages(biggest, limit={PAGE}) last page", times["perry last page"]),
               row(f"Perry.sessions.messages(biggest, limit={PAGE}) first page", times["perry first page"]),
               row(f"GET .../sessions/{{id}}/messages?limit={PAGE} last page", times["http last page"]),
               row(f"opencode export <biggest> (whole session; {len(export_times)} runs)", export_times)],
              note="Every exec is exec_create + exec_start(demux) + exec_inspect as the workspace user in its home,\n"
                   "the calls Perry's own exec makes; OpenCode's JSON is parsed on the host too. Answers: opencode\n"
                   f"{sizes.get('oc list', 0) / 1e3:.0f} kB ({oc_default} sessions: id, title, times, project, directory), "
                   f"-n {n_all} {sizes.get('oc all', 0) / 1e3:.0f} kB;\n"
                   f"Perry {perry_size / 1e3:.0f} kB (every session with message count, tokens, cost), a page "
                   f"{page_size / 1e3:.0f} kB.\n"
                   "Perry = its workspace lookup + a JSON line to its lister (a `perry-worker sessions serve`\n"
                   "exec kept open per workspace) and one back; the first call starts the lister (one exec) and\n"
                   "reads the store; after a write the lister re-reads the changed session. GET adds a real\n"
                   "`perry serve` (token auth, its thread pool). OpenCode 1.18 truncates JSON it writes to a pipe\n"
                   "beyond 64 kB when it exits before the pipe drained (anomalyco/opencode#29330): the complete\n"
                   "list goes through a file (`> f && cat f`). OpenCode's CLI has no paged read; export prints\n"
                   "the whole session (through a file too).")

        if inside:
            ib = statistics.median(inside["opencode session list --format json"])
            ib_all = statistics.median(inside["opencode session list --format json -n N"])
            table(f"Inside the container, no Docker, ms ({rounds} rounds; N = {n_all})",
                  ["", "median", "p95", "min", "/ oc list", "/ oc list -n"],
                  [[k, ms(statistics.median(v)), ms(pct(v, 95)), ms(min(v)), f"{statistics.median(v) / ib:.2f}x",
                    f"{statistics.median(v) / ib_all:.2f}x"] for k, v in inside.items()],
                  note="Processes by subprocess.run with stdout to /dev/null; the rest in one python3 with\n"
                       "perry_worker imported and a fresh SessionStore each time (each perry-worker process starts\n"
                       "with no cache). A page finds its session with one SELECT, counts the session's shown messages\n"
                       "and reads only the page's rows and parts; the rows in brackets are what it no longer does.")
        print(f"\nsession list / `opencode session list`: first call "
              f"{statistics.median(times['perry first list']) / base:.3f}x (target 0.25x), nothing changed "
              f"{statistics.median(times['perry list']) / base:.3f}x (target 0.05x), after a write "
              f"{statistics.median(times['perry list after a write']) / base:.3f}x; over HTTP, nothing changed "
              f"{statistics.median(times['http list']) / base:.3f}x")
        print(f"\ntotal run time {now() - t_run:.1f} s")
        return 0
    finally:
        clean_up(client, server, tmp, PREFIX, NETWORK, perry)


if __name__ == "__main__":
    sys.exit(main())
