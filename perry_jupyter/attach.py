"""`python -m perry_jupyter.attach WORKSPACE CONTAINER -- docker exec ...`: attach, or say why not.

Used for a workspace terminal re-created by name (a restored JupyterLab layout),
when nobody checked first that the workspace still runs: instead of a host shell
or a cryptic docker error, the terminal says what happened and closes.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    workspace, container, command = argv[0], argv[1], argv[argv.index("--") + 1:]
    docker = command[: command.index("exec")]  # the docker CLI with its -H, if any
    probe = subprocess.run([*docker, "inspect", "-f", "{{.State.Running}}", container],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"[perry] workspace {workspace!r} is gone (deleted or never created); "
              "this terminal is closed.", flush=True)
        return 1
    if probe.stdout.strip() != "true":
        print(f"[perry] workspace {workspace!r} is stopped; start it (`perry start {workspace}`) "
              "and open a new terminal.", flush=True)
        return 1
    os.execvp(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
