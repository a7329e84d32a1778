"""Perry's copies of a workspace's volumes (clone, move) against `cp -a` in one container.

    .venv/bin/python bench/transfer.py [--size-mb 1024] [--rounds 3]

A benchmark, not a test: it prints figures and asserts nothing about them. One workspace made
with Perry's core (in-process, no server) gets SIZE MB of random data in its home (one file of
half the size, and 2,000 small files for the rest). Then, R rounds each (median, min, max):

- Perry clone: ``Perry.transfers.clone`` timed whole (pause, the copy of both volumes within
  the engine, the new container, ready), and the home's copy alone (from its ``copying``
  event to the next);
- Perry streamed copy (what a move does between two engines): the home read by a helper through
  one engine connection and written by another helper through a second connection to the same
  daemon, every byte passing through this process;
- the plain way: ``docker run --rm -v HOME:/a -v NEW:/b IMAGE cp -a /a/. /b/`` into a fresh volume.

Names: ``perry-bench-mv-*`` containers and volumes, network ``perry-bench-mv``, SSH ports
2750-2759. All of it is removed in a ``finally``; leftovers of a killed run are removed at start.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import IMAGE, clean_up_on_signals, now, open_engine, remove_bench_objects, say, table

from perry_jupyter.app import PerryApp
from perry_jupyter.core.engine import Engine
from perry_jupyter.core.services import Perry

PREFIX = "perry-bench-mv-"
NETWORK = "perry-bench-mv"
SSH_PORTS = (2750, 2759)
FILL = ("head -c {big}M /dev/urandom > ~/big && mkdir -p ~/small && cd ~/small && "
        "for i in $(seq 2000); do head -c {each}K /dev/urandom > f$i; done")


def figures(values: list[float]) -> list[str]:
    return [f"{statistics.median(values):.2f} s", f"{min(values):.2f} s", f"{max(values):.2f} s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    clean_up_on_signals()
    client = open_engine(PREFIX, NETWORK)
    if client is None:
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="perry-bench-mv-"))
    perry = Perry(tmp, PerryApp(state_dir=str(tmp), workspace_prefix=PREFIX, image_tag=IMAGE, network=NETWORK,
                                ssh_port_range=SSH_PORTS, ssh_public_keys=[], git_config=None).core_config())
    home = f"{PREFIX}src-home"
    clone, streamed, home_copy, plain = [], [], [], []
    try:
        say("creating the workspace and filling its home")
        perry.workspaces.create("src")
        half = args.size_mb // 2
        result = perry.workspaces.exec("src", ["bash", "-c", FILL.format(big=half, each=max(1, half * 1024 // 2000))])
        assert result["exitCode"] == 0, result
        for round_ in range(args.rounds):
            say(f"round {round_ + 1} of {args.rounds}")
            stamps: list[tuple[float, str]] = []
            t0 = now()
            perry.transfers.clone("src", f"c{round_}", lambda e: stamps.append((now(), e.get("message", ""))))
            clone.append(now() - t0)
            starts = [i for i, (_, m) in enumerate(stamps) if m.startswith(f"copying {home}")]
            home_copy.append(stamps[starts[0] + 1][0] - stamps[starts[0]][0])
            perry.workspaces.delete(f"c{round_}")

            source, target = Engine(), Engine()  # two connections: the bytes go through this process
            target.create_volume(f"{PREFIX}s{round_}-home", {"perry.managed": "true"})
            t0 = now()
            perry.transfers._copy_volumes(f"s{round_}", source, target, [(home, f"{PREFIX}s{round_}-home")],
                                          lambda *a, **k: None)
            streamed.append(now() - t0)
            target.remove_volume(f"{PREFIX}s{round_}-home")

            client.volumes.create(f"{PREFIX}p{round_}")
            t0 = now()
            subprocess.run(["docker", "run", "--rm", "-v", f"{home}:/a", "-v", f"{PREFIX}p{round_}:/b",
                            "--entrypoint", "cp", IMAGE, "-a", "/a/.", "/b/"], check=True)
            plain.append(now() - t0)
            client.volumes.get(f"{PREFIX}p{round_}").remove(force=True)
        base = statistics.median(plain)
        rows = [[what, *figures(values), f"{statistics.median(values) / base:.2f}x"]
                for what, values in (("Perry clone, whole (pause, 2 volumes, new container, ready)", clone),
                                     ("Perry clone, the home's copy", home_copy),
                                     ("Perry streamed copy of the home (a move's way)", streamed),
                                     ("docker run --rm -v a:/a -v b:/b cp -a", plain))]
        table(f"copies of a {args.size_mb} MB home, {args.rounds} round(s)",
              ["what", "median", "min", "max", "vs cp -a"], rows)
    finally:
        perry.engine.close()
        removed = remove_bench_objects(client, PREFIX, NETWORK)
        say(f"cleaned up: {len(removed)} Docker object(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
