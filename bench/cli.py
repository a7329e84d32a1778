"""`perry list` as a whole process against `docker ps`.

    .venv/bin/python bench/cli.py [--rounds 20] [--workspaces 5]

A benchmark, not a test: it prints figures and asserts nothing about them. A real `perry
serve` adopts a few labelled containers (`docker create`d with Perry's labels, never
started), so the list has rows to draw; then, round after round and interleaved, it times
as processes, output to a pipe, each to its exit:

- `docker ps -a` (the plain way to list containers; the Docker CLI);
- `perry list`: the console script, which answers by the standard library alone when it can
  (perry_jupyter/cli/quick.py);
- `perry list --json`;
- the command tree alone (`from perry_jupyter.cli.commands import main`: click, requests,
  rich), which is what `perry list` ran before: the before figure, measured in the same run;
- `python -c pass` with the same interpreter: the floor any Python CLI starts from.

Every figure is the median of the rounds with its p10-p90 spread, and a ratio to `docker ps`.
Names: `perry-bench-cli-*` containers, network `perry-bench-cli`, SSH ports 2630-2639,
`perry serve` on 2640-2644; all removed in a `finally` (leftovers of a killed run at start).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import (
    IMAGE,
    ROOT,
    VENV_BIN,
    Server,
    clean_up,
    clean_up_on_signals,
    now,
    open_engine,
    pct,
    say,
    table,
)

sys.path.insert(1, str(ROOT))

from perry_jupyter.core.names import LABEL_CREATED, LABEL_DIND, LABEL_MANAGED, LABEL_WORKSPACE  # noqa: E402

PREFIX = "perry-bench-cli-"
NETWORK = "perry-bench-cli"


def perry_script() -> str:
    """The `perry` console script of this interpreter's environment."""
    for candidate in (VENV_BIN / "perry", Path(sys.executable).parent / "perry"):
        if candidate.exists():
            return str(candidate)
    raise SystemExit("no `perry` console script next to this Python: install the package first")


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = now()
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    elapsed = now() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--workspaces", type=int, default=5, help="labelled containers the list shows")
    args = ap.parse_args()
    clean_up_on_signals()
    client = open_engine(PREFIX, NETWORK)
    if client is None:
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="perry-bench-cli-"))
    server = Server(tmp / "state", tmp / "serve.log", prefix=PREFIX, network=NETWORK,
                    ssh_ports=(2630, 2639), ports=(2640, 2644))
    try:
        for i in range(args.workspaces):
            name = f"w{i}"
            client.containers.create(
                IMAGE, name=f"{PREFIX}{name}", hostname=name, detach=True,
                labels={LABEL_MANAGED: "true", LABEL_WORKSPACE: name, LABEL_DIND: "off",
                        LABEL_CREATED: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())})
        server.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PERRY_", "FORCE_COLOR", "TTY_"))}
        env.update(PERRY_URL=server.base, PERRY_TOKEN=server.token, PERRY_CONFIG_DIR=str(tmp / "client"),
                   COLUMNS="200")
        perry = perry_script()
        listed = subprocess.run([perry, "list"], env=env, capture_output=True, text=True)
        say(f"`perry list` shows {len(listed.stdout.splitlines()) - 1} workspaces")
        commands = {
            "docker ps -a": ["docker", "ps", "-a"],
            "perry list": [perry, "list"],
            "perry list --json": [perry, "list", "--json"],
            "the command tree (before)": [sys.executable, "-c", "import sys; sys.argv = ['perry', 'list']; "
                                          "from perry_jupyter.cli.commands import main; main()"],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        for argv in commands.values():  # warm the page cache once
            timed(argv, env)
        for _ in range(args.rounds):
            for label, argv in commands.items():
                times[label].append(timed(argv, env))
        base = statistics.median(times["docker ps -a"])
        rows = []
        for label, values in times.items():
            med = statistics.median(values)
            rows.append([label, f"{med * 1000:.1f}", f"{pct(values, 10) * 1000:.1f}-{pct(values, 90) * 1000:.1f}",
                         f"{min(values) * 1000:.1f}", f"{med / base:.2f}x"])
        table(f"Whole processes, {args.rounds} rounds interleaved (ms)",
              ["command", "median", "p10-p90", "min", "/ docker ps"], rows,
              note=f"load average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        clean_up(client, server, tmp, PREFIX, NETWORK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
