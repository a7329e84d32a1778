"""Perry's changes of a big repository against plain `git` through `docker exec`.

    .venv/bin/python bench/changes.py [--files N] [--changed M] [--rounds R]

A benchmark, not a test: it prints figures and asserts nothing about them. One workspace
made through a real ``perry serve``; in it, as the workspace user, a git repository of N
files (default 5,000, in 50 folders, 40 lines each) with one commit, then M of them changed
(default 200: 70% modified, 10% deleted, 10% renamed with ``git mv``, 10% new untracked
files). Then, R rounds each (median, p95, min, max):

- Perry: ``GET /perry/api/workspaces/{name}/changes?dir=...`` (the handler, one
  ``docker exec`` of ``perry-worker changes --json`` running git, the JSON back);
- the plain way: ``docker exec -u workspace -w DIR <container> git status --porcelain``
  then ``docker exec ... git diff --numstat HEAD``, with the Docker CLI, timed together;
- for reference: ``GET .../changes/diff`` (the whole diff, cut at 512 KiB) and a bare
  ``docker exec <container> true``.

The target of issue 12 is 300 ms for the changes of 5,000 files with 200 changed.

Names: ``perry-bench-chg-*`` container and volumes, network ``perry-bench-chg``, SSH ports
2645-2649; ``perry serve`` takes any free port on 127.0.0.1. All of it is removed in a
``finally``; leftovers of a killed run are removed at start.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import Server, clean_up, clean_up_on_signals, ms, now, open_engine, pct, say, table

PREFIX = "perry-bench-chg-"
NETWORK = "perry-bench-chg"
SSH_PORTS = (2645, 2649)
WORKSPACE = "big"
CONTAINER = f"{PREFIX}{WORKSPACE}"
PROJECT = "/home/workspace/bigrepo"

# Run in the workspace as its user: the repository, its commit, then the changes.
MAKE_REPO = r"""
import os, subprocess, sys
files, changed = int(sys.argv[1]), int(sys.argv[2])
root = sys.argv[3]
os.makedirs(root)
os.chdir(root)
env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@e.invalid",
           GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@e.invalid")
def git(*args):
    subprocess.run(["git", *args], check=True, env=env, stdout=subprocess.DEVNULL)
git("init", "-q", "-b", "main")
paths = []
for i in range(files):
    path = "pkg%02d/module_%04d.py" % (i % 50, i)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join("value_%d_%d = %d  # line of generated code\n" % (i, n, n) for n in range(40)))
    paths.append(path)
git("add", "-A")
git("commit", "-q", "-m", "five thousand files")
step = files // changed
picked = paths[::step][:changed]
kinds = ["modify"] * 7 + ["delete", "rename", "new"]
for n, path in enumerate(picked):
    kind = kinds[n % 10]
    if kind == "modify":
        with open(path) as f:
            lines = f.readlines()
        lines[3] = "changed = True\n"
        lines.insert(10, "added_line = %d\n" % n)
        with open(path, "w") as f:
            f.writelines(lines)
    elif kind == "delete":
        os.remove(path)
    elif kind == "rename":
        git("mv", path, path.replace(".py", "_renamed.py"))
    else:
        with open(path.replace(".py", "_new.py"), "w") as f:
            f.write("fresh = 1\nmore = 2\n")
"""


def docker_exec(*argv: str) -> float:
    t0 = now()
    subprocess.run(["docker", "exec", *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return now() - t0


def plain_way() -> float:
    user = ("-u", "workspace", "-w", PROJECT, CONTAINER)
    return docker_exec(*user, "git", "status", "--porcelain") + docker_exec(*user, "git", "diff", "--numstat", "HEAD")


def figures(samples: list[float]) -> list[str]:
    return [ms(statistics.median(samples)), ms(pct(samples, 95)), ms(min(samples)), ms(max(samples))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000, help="files in the repository (default 5000)")
    parser.add_argument("--changed", type=int, default=200, help="files changed (default 200)")
    parser.add_argument("--rounds", type=int, default=20, help="timed calls per row (default 20)")
    args = parser.parse_args()
    clean_up_on_signals()

    client = open_engine(PREFIX, NETWORK)
    if client is None:
        return 2
    tmp = Path(tempfile.mkdtemp(prefix=PREFIX))
    server = Server(tmp / "state", tmp / "serve.log", prefix=PREFIX, network=NETWORK, ssh_ports=SSH_PORTS)
    try:
        say("starting perry serve")
        server.start()
        say(f"creating workspace {WORKSPACE} ({CONTAINER})")
        server.session.post(f"{server.url}/workspaces", json={"name": WORKSPACE}, timeout=600).raise_for_status()
        say(f"a repository of {args.files} files, {args.changed} changed, in {PROJECT}")
        subprocess.run(["docker", "exec", "-i", "-u", "workspace", CONTAINER, "python3", "-", str(args.files),
                        str(args.changed), PROJECT], input=MAKE_REPO, text=True, check=True)

        answer = server.get(f"workspaces/{WORKSPACE}/changes", dir=PROJECT)
        kinds: dict[str, int] = {}
        for f in answer["files"]:
            kinds[f["status"]] = kinds.get(f["status"], 0) + 1
        say(f"Perry sees {answer['totals']}: {kinds}")

        rows = {"perry": [], "plain": [], "diff": [], "true": []}
        for _ in range(3):  # warm-up: the worker synced, git's index and the page cache hot
            server.get(f"workspaces/{WORKSPACE}/changes", dir=PROJECT)
            plain_way()
        for n in range(args.rounds):  # interleaved, so a busy moment on the machine hits both sides
            t0 = now()
            server.get(f"workspaces/{WORKSPACE}/changes", dir=PROJECT)
            rows["perry"].append(now() - t0)
            rows["plain"].append(plain_way())
            t0 = now()
            server.get(f"workspaces/{WORKSPACE}/changes/diff", dir=PROJECT)
            rows["diff"].append(now() - t0)
            rows["true"].append(docker_exec(CONTAINER, "true"))
        base = statistics.median(rows["plain"])
        labels = {"perry": "GET .../changes (Perry)", "plain": "docker exec git status + git diff --numstat",
                  "diff": "GET .../changes/diff (whole diff)", "true": "docker exec true (reference)"}
        table(f"{args.files} files, {args.changed} changed, {args.rounds} rounds (ms)",
              ["", "median", "p95", "min", "max", "vs plain"],
              [[labels[k], *figures(v), f"{statistics.median(v) / base:.2f}x"] for k, v in rows.items()],
              note=f"target: GET .../changes <= 300 ms; median {ms(statistics.median(rows['perry']))} ms")
        return 0
    finally:
        clean_up(client, server, tmp, PREFIX, NETWORK)


if __name__ == "__main__":
    sys.exit(main())
