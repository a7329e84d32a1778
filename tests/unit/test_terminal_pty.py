"""A terminal's pty written on the event loop: a write never blocks, and what the pty cannot take yet follows in order."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import sys
import threading

from perry_jupyter.terminal_pty import LoopPtyProcess

# Reads nothing until SIGUSR1, then the paste, and prints its digest.
PROGRAM = """
import hashlib, signal, sys, tty
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
tty.setraw(0)
sys.stdout.write("READY\\n"); sys.stdout.flush()
signal.sigwait({signal.SIGUSR1})
data = b""
while len(data) < int(sys.argv[1]):
    data += sys.stdin.buffer.read1(65536)
sys.stdout.write("DIGEST " + hashlib.sha256(data).hexdigest() + "\\n"); sys.stdout.flush()
"""


def read_until(pty: LoopPtyProcess, marker: str, out: str = "") -> str:
    while marker not in out:
        wanted = select.POLLIN | (select.POLLOUT if pty.backlog else 0)
        poller = select.poll()
        poller.register(pty.fd, wanted)
        assert poller.poll(30_000), f"{marker!r} never came; got {out[-200:]!r}"
        if pty.backlog:
            pty.write_backlog()
        out += pty.read()
    return out


def test_a_paste_the_program_does_not_read_yet_never_blocks_and_arrives_in_order():
    paste = "".join(hashlib.sha256(str(i).encode()).hexdigest() * 2048 for i in range(16))  # 2 MB
    pty = LoopPtyProcess.spawn([sys.executable, "-c", PROGRAM, str(len(paste))])
    told: list[bool] = []
    pty.on_backlog = told.append
    try:
        read_until(pty, "READY")
        # Written on the caller's thread while the program reads nothing: a blocking write would never return.
        writer = threading.Thread(target=pty.write, args=(paste,), daemon=True)
        writer.start()
        writer.join(30)
        assert not writer.is_alive(), "the write blocked on a full pty"
        assert told == [True] and pty.backlog, "the pty took 2 MB at once: nothing was left to follow"
        os.kill(pty.pid, signal.SIGUSR1)
        out = read_until(pty, "\n", read_until(pty, "DIGEST "))
        assert f"DIGEST {hashlib.sha256(paste.encode()).hexdigest()}" in out
        assert told == [True, False] and not pty.backlog
    finally:
        pty.terminate(force=True)
