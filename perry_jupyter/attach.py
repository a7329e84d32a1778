"""`python -m perry_jupyter.attach WORKSPACE PROBE -- COMMAND...`: attach, or say why not.

Used for a workspace terminal re-created by name (a restored JupyterLab layout),
when nobody checked first that the workspace still runs: instead of a host shell
or a cryptic docker error, the terminal says what happened and closes.

PROBE (a JSON list) and COMMAND are command lines the Docker gateway built
(`core.engine.container_running_command` and `terminal_command`): this process
only runs them, so it starts fast and needs neither the Docker SDK nor Perry's state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    workspace, probe, command = argv[0], json.loads(argv[1]), argv[argv.index("--") + 1:]
    state = subprocess.run(probe, capture_output=True, text=True)
    if state.returncode != 0:
        print(f"[perry] workspace {workspace!r} is gone (deleted or never created); "
              "this terminal is closed.", flush=True)
        return 1
    if state.stdout.strip() != "true":
        print(f"[perry] workspace {workspace!r} is stopped; start it (`perry start {workspace}`) "
              "and open a new terminal.", flush=True)
        return 1
    os.execvp(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
