"""What the idle check costs: per use of a workspace, and per round, against one plain `docker exec`.

    .venv/bin/python bench/idle.py [--uses N] [--workspaces N]

A benchmark, not a test: it prints figures and asserts nothing. It measures

1. the activity record's share of every exec, proxied request and conversation
   (`Activity.begin` + `end`) and of every terminal read (`touch`), in microseconds;
2. one round of the idle check over N running workspaces with an idle timeout that none
   has reached (a state read and the in-memory checks: what a round costs while nothing is idle);

each as a ratio to the plain Docker way of one use: `docker exec true` through the SDK on a
throwaway container (`perry-bench-idle-*`, removed in a `finally`; nothing else is touched).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import IMAGE, ms, now, open_engine, say, table  # noqa: E402
from perry_jupyter.core.activity import Activity  # noqa: E402
from perry_jupyter.core.idle import IdleWatcher  # noqa: E402
from tests.fake_engine import FakeEngine, make_manager  # noqa: E402

PREFIX = "perry-bench-idle-"
NETWORK = "perry-bench-idle"


def per_use(uses: int) -> tuple[float, float]:
    activity = Activity()
    start = now()
    for _ in range(uses):
        activity.end(activity.begin("ws"))
    use = (now() - start) / uses
    start = now()
    for _ in range(uses):
        activity.touch("ws")
    return use, (now() - start) / uses


def per_round(workspaces: int, rounds: int = 50) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        manager = make_manager(Path(tmp), FakeEngine(), idle_timeout=3600)
        for n in range(workspaces):
            manager.create(f"ws{n}")
        watcher = IdleWatcher(manager)
        times = []
        for _ in range(rounds):
            start = now()
            watcher.check()
            times.append(now() - start)
        return statistics.median(times)


def docker_exec(rounds: int) -> float:
    client = open_engine(PREFIX, NETWORK)
    if client is None:
        sys.exit(1)
    container = client.containers.run(IMAGE, ["sleep", "300"], name=f"{PREFIX}exec", detach=True,
                                      entrypoint=[], labels={"perry.bench": "idle"})
    try:
        container.exec_run(["true"])
        times = []
        for _ in range(rounds):
            start = now()
            container.exec_run(["true"])
            times.append(now() - start)
        return statistics.median(times)
    finally:
        container.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uses", type=int, default=200_000)
    parser.add_argument("--workspaces", type=int, default=50)
    args = parser.parse_args()
    say("docker exec baseline")
    plain = docker_exec(20)
    say(f"{args.uses} uses through the activity record")
    use, touch = per_use(args.uses)
    say(f"idle rounds over {args.workspaces} workspaces")
    round_ = per_round(args.workspaces)
    us = lambda s: f"{s * 1e6:.2f}"  # noqa: E731
    table("What the idle check adds", ["figure", "time (µs)", "ratio to one docker exec"], [
        ["docker exec true (SDK), median", us(plain), "1"],
        ["activity begin+end per use (exec, proxy, chat)", us(use), f"{use / plain:.6f}"],
        ["activity touch (terminal read)", us(touch), f"{touch / plain:.6f}"],
        [f"one idle round, {args.workspaces} running workspaces", us(round_), f"{round_ / plain:.3f}"],
    ], note=f"docker exec median {ms(plain)} ms; a round runs on the perry-idle thread, at most every "
            "quarter timeout (1-30 s), never on the event loop")


if __name__ == "__main__":
    main()
