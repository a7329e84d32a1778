"""`python -m perry_jupyter.attach WORKSPACE PROBE [--wait SECONDS] -- COMMAND...`: attach, or say why not.

Used for a workspace terminal re-created by name (a restored JupyterLab layout),
when nobody checked first that the workspace still runs: instead of a host shell
or a cryptic docker error, the terminal says what happened and closes. With --wait,
for a terminal opened on a workspace the server is starting (stopped while idle): it
says so, and attaches once the container runs.

PROBE (a JSON list) and COMMAND are command lines the Docker gateway built
(`core.engine.container_running_command` and `terminal_command`): this process
only runs them, so it starts fast and needs neither the Docker SDK nor Perry's state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

POLL = 0.5


def main(argv: list[str]) -> int:
    workspace, probe, command = argv[0], json.loads(argv[1]), argv[argv.index("--") + 1:]
    options = argv[2:argv.index("--")]
    wait = float(options[options.index("--wait") + 1]) if "--wait" in options else 0.0
    if wait:
        print(f"[perry] starting workspace {workspace} (stopped while idle)\u2026", flush=True)
    deadline = time.monotonic() + wait
    while True:
        state = subprocess.run(probe, capture_output=True, text=True)
        running = state.returncode == 0 and state.stdout.strip() == "true"
        if running or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    if state.returncode != 0:
        print(f"[perry] workspace {workspace!r} is gone (deleted or never created); "
              "this terminal is closed.", flush=True)
        return 1
    if not running:
        failed = " did not start in time (`perry logs` says why);" if wait else " is stopped;"
        print(f"[perry] workspace {workspace!r}{failed} start it (`perry start {workspace}`) "
              "and open a new terminal.", flush=True)
        return 1
    if wait:
        print("[perry] workspace started.", flush=True)
    os.execvp(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
