"""Unknown fields and odd values never crash a reader: the real records, mutated (seeded)."""

from __future__ import annotations

import json
import random
import sqlite3

from perry_worker.claude import ClaudeReader
from perry_worker.codex import CodexReader
from perry_worker.opencode import OpenCodeReader
from tests.fixtures.worker_homes import claude_dir, make_home, oc_db_path

ODD = [None, 0, -1, 1.5, "", "x", "2026-13-45T99:99:99Z", [], [1, "a", None], {}, {"type": "text"}, True,
       {"text": None, "type": 5}, "\u0000", 10 ** 30]


def mutate(value, rnd: random.Random, depth: int = 0):
    """Replace, drop or add values anywhere in a JSON value."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            roll = rnd.random()
            if roll < 0.08:
                continue  # a field gone
            out[k] = rnd.choice(ODD) if roll < 0.2 else mutate(v, rnd, depth + 1)
        if rnd.random() < 0.1:
            out["unknownField%d" % rnd.randint(0, 9)] = rnd.choice(ODD)
        return out
    if isinstance(value, list):
        return [mutate(v, rnd, depth + 1) for v in value if rnd.random() > 0.05]
    return value


def test_mutated_stores_read_without_errors(tmp_path):
    for seed in range(12):
        rnd = random.Random(seed)
        home = make_home(tmp_path / str(seed))
        for path in list(claude_dir(home).glob("*.jsonl")) + list((home / ".codex").rglob("*.jsonl")):
            lines = []
            for line in path.read_text().splitlines():
                line = json.dumps(mutate(json.loads(line), rnd)) if rnd.random() < 0.6 else line
                if rnd.random() < 0.05:
                    line = line[: rnd.randint(0, len(line))]  # a torn line
                lines.append(line)
            path.write_text("\n".join(lines) + "\n")
        for path in (home / ".local" / "share" / "opencode" / "storage").rglob("*.json"):
            path.write_text(json.dumps(mutate(json.loads(path.read_text()), rnd)))
        conn = sqlite3.connect(str(oc_db_path(home)))
        for table in ("message", "part"):
            for rowid, data in conn.execute("SELECT rowid, data FROM %s" % table).fetchall():
                if rnd.random() < 0.6:
                    conn.execute("UPDATE %s SET data = ? WHERE rowid = ?" % table,
                                 (json.dumps(mutate(json.loads(data), rnd)), rowid))
        conn.commit()
        conn.close()
        for reader in (OpenCodeReader(str(home)), ClaudeReader(str(home)), CodexReader(str(home))):
            summaries = reader.summaries()  # no exception is the point
            for sid, s in summaries.items():
                assert isinstance(s["messageCount"], int) and isinstance(s["title"], str)
                json.dumps(reader.messages(sid))
                assert reader.summary(sid) is not None
