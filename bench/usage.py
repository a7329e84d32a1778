"""What a workspace list pays for its live use (CPU %, memory), against asking Docker each time.

Starts N plain containers of the workspace image (sleeping), then times:
- Docker's stats of every container, one-shot (what Perry's sampler reads, in the background);
- Docker's stats of every container, waiting for its second reading (what `docker stats
  --no-stream` does, and what a request asking Docker each time would pay);
- reading the use from the sampler's cache (what a list request pays).
Prints figures and ratios; checks nothing.

    .venv/bin/python bench/usage.py [--containers 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import docker

from perry_jupyter.core.engine import Engine

PREFIX = "perry-bench-usage-"


class OneEngine:
    """Enough of a WorkspaceManager for the sampler: the bench's containers on one engine."""

    def __init__(self, engine: Engine, ids: dict[str, str]):
        self.ids = ids
        self.engines = self
        self.engine = engine

    def get(self, name=None):
        return self.engine

    def running_containers(self):
        return [(name, "local", cid) for name, cid in self.ids.items()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image", default="perry-workspace:latest")
    args = parser.parse_args()
    from perry_jupyter.core.usage import UsageSampler

    client = docker.from_env()
    started = {}
    try:
        for i in range(args.containers):
            c = client.containers.run(args.image, ["sleep", "600"], entrypoint=[], detach=True, name=f"{PREFIX}{i}")
            started[f"w{i}"] = c.id
        engine = Engine()
        one_shot, waiting, cached = [], [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            for cid in started.values():
                engine.stats(cid)
            one_shot.append(time.perf_counter() - t)
            t = time.perf_counter()
            for cid in started.values():
                client.api.stats(cid, stream=False)
            waiting.append(time.perf_counter() - t)
        sampler = UsageSampler(OneEngine(engine, started), interval=0.5)
        assert sampler.of("w0", wait=60) is not None
        for _ in range(1000):
            t = time.perf_counter()
            sampler.read()
            cached.append(time.perf_counter() - t)
        n = args.containers
        print(f"{n} running containers, {args.rounds} rounds (median):")
        rows = [("stats of all, one-shot (the sampler, in the background)", statistics.median(one_shot)),
                ("stats of all, waiting for a second reading (docker stats --no-stream)", statistics.median(waiting)),
                ("use from the sampler's cache (what a list pays)", statistics.median(cached))]
        base = rows[1][1]
        for label, seconds in rows:
            print(f"  {label:72s} {seconds * 1e6:12.1f} us  {seconds / base:.2e}x")
    finally:
        for cid in started.values():
            client.api.remove_container(cid, force=True)


if __name__ == "__main__":
    main()
