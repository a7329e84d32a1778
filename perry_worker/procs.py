"""The workspace's processes, read from /proc: is a recorded process still ours, and ending a tree.

A pid on file is not proof: when the workspace restarts, its pid namespace starts again and
low pids are handed out anew. So a recorded process counts as running only while its command
line still carries what identifies it (a task id, a port).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Dict, Iterable, Optional, Set, Tuple


def running(pid: Optional[int], marker: str) -> bool:
    """Whether ``pid`` is alive (not a zombie) and its command line contains ``marker``."""
    if not pid:
        return False
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            command = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except (OSError, IndexError):
        return False
    return marker in command


def processes() -> Dict[int, Tuple[int, int]]:
    """{pid: (ppid, pgid)} of the live (not zombie) processes."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, encoding="utf-8") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields and fields[0] != "Z":
                table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


def descendants(table: Dict[int, Tuple[int, int]], roots: Iterable[int]) -> Set[int]:
    children: Dict[int, list] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: Set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def end_tree(root: int, term_wait: float = 5.0, kill_wait: float = 2.0) -> None:
    """SIGTERM, then SIGKILL, ``root``'s process group and every process descended from it.

    The group alone is not enough: agents start their tools' commands in groups of their own
    (OpenCode's bash tool does), and those would outlive what started them.
    """
    doomed = {root}
    for sig, wait in ((signal.SIGTERM, term_wait), (signal.SIGKILL, kill_wait)):
        table = processes()
        doomed |= descendants(table, doomed) | {pid for pid, (_, pgid) in table.items() if pgid == root}
        for pid in doomed:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and doomed & set(processes()):
            time.sleep(0.05)
        if not doomed & set(processes()):
            return
