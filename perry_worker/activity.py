"""What the workspace's users are doing now, as the server's idle check asks before it stops one.

Read from the kernel, no daemon: a terminal's tty (SSH's, `docker exec -it`'s) has its
modification time moved by every write to it (the kernel rounds it to 8 s, which is far
below any idle timeout); an SSH connection without a tty runs a command; an agent that works
uses CPU, which the server compares between two checks.
"""

from __future__ import annotations

import glob
import os
from typing import Dict, Iterable, List

from .agents import AGENTS


def tty_written() -> float:
    """When a terminal inside the workspace was last written to (epoch seconds; 0 for never)."""
    newest = 0.0
    for path in glob.glob("/dev/pts/[0-9]*"):
        try:
            newest = max(newest, os.stat(path).st_mtime)
        except OSError:
            continue  # closed meanwhile
    return newest


def _cmdline(pid: str) -> List[str]:
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _cpu_ticks(pid: str) -> int:
    try:
        with open("/proc/%s/stat" % pid, encoding="utf-8") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def report(agent_clis: Iterable[str] = ()) -> Dict[str, object]:
    clis = set(agent_clis) or {a.cli for a in AGENTS.values()}
    ssh_commands = 0
    agent_cpu = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        argv = _cmdline(pid)
        if not argv:
            continue
        # sshd names a session's process "sshd: USER@pts/N" or, running a command, "sshd: USER@notty".
        if argv[0].startswith("sshd: ") and argv[0].rstrip().endswith("@notty"):
            ssh_commands += 1
        elif any(os.path.basename(a) in clis for a in argv[:2]):
            agent_cpu += _cpu_ticks(pid)
    return {"ttyWritten": tty_written(), "sshCommands": ssh_commands, "agentCpu": agent_cpu}
