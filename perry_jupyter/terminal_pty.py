"""A terminal's pty read and written on the event loop, with no extra wait and no thread hop.

terminado reads a terminal's pty when the loop says it is readable, but polls it once more
first (up to 100 ms) and sends each read of at most one line-discipline buffer (4 kB) as its
own WebSocket message; it writes keystrokes on a one-thread executor, because a write to a
full pty would block. Each keystroke thus crossed to that thread and back (two wake-ups of
the loop, and the GIL handed over twice) before its echo could be read.

Here the pty's master end is non-blocking: a keystroke is written on the loop at once, and
what the pty cannot take yet (a large paste into a program that does not read) waits in a
backlog the loop writes when the pty has room, in order, so nothing blocks the loop and no
input is lost or reordered. A read takes what is there, up to `READ_SIZE`, in one message.
"""

from __future__ import annotations

import codecs
import errno
import fcntl
import os
import shutil
import signal
import struct
import termios
import time
from collections import deque
from concurrent.futures import Executor, Future
from typing import Any, Callable

from ptyprocess import PtyProcessUnicode
from terminado.management import PtyWithClients, TermManagerBase, preexec_fn
from tornado.ioloop import IOLoop

READ_SIZE = 1 << 16  # bytes of output per WebSocket message at most (terminado's own read size)
# Output that keeps coming (a build log, `cat` of a big file) is joined into fewer, larger
# messages: each message costs the server and the browser far more than its bytes do, and such
# output arrives in reads of a few hundred bytes. Output read within COALESCE seconds of the
# last message, with no input written since, waits at most COALESCE seconds for more; output
# after input (an echo, an answer) or after a pause goes out at once.
COALESCE = 0.002


class LoopPtyProcess(PtyProcessUnicode):
    """ptyprocess's pty with a non-blocking master, for use on the event loop only."""

    def __init__(self, pid: int, fd: int, **kwargs: Any):
        super().__init__(pid, fd, **kwargs)
        os.set_blocking(fd, False)  # the master's own open file: the program's end (the slave) stays blocking
        self.backlog: deque[bytes] = deque()
        # Told whether input waits for room (True) or not any more (False): the manager then
        # asks the loop to say when the pty is writable, or stops asking.
        self.on_backlog: Callable[[bool], None] = lambda waiting: None
        self._eof = False
        self.writes = 0  # input written so far (counted)
        self.last_read = 0  # bytes the last `read` took

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], dimensions: tuple[int, int] = (24, 80)) -> LoopPtyProcess:
        """`spawn` without a fork: the program starts by posix_spawn in a session of its own, on the pty.

        ptyprocess forks this server (large, threaded) to start a terminal's program, on the event
        loop: a copy of its memory maps for each terminal. posix_spawn does not copy them. Opening
        the pty's far end as a session leader makes it the program's controlling terminal, as
        ptyprocess's fork does, so resizing signals it.
        """
        command = shutil.which(argv[0], path=env.get("PATH"))
        if command is None:
            raise FileNotFoundError(f"The command was not found or was not executable: {argv[0]}.")
        master, slave = os.openpty()  # both close on exec
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *dimensions, 0, 0))
            pid = os.posix_spawn(command, argv, env, setsid=True,
                                 setsigdef=(signal.SIGPIPE,),  # as terminado's preexec_fn: this server ignores it
                                 file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.ttyname(slave), os.O_RDWR, 0),
                                               (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)])
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        inst = cls(pid, master)
        inst.argv, inst.env = [command, *argv[1:]], env
        return inst

    def write(self, s: str | bytes, flush: bool = True) -> int:
        """Write what the pty takes now; keep the rest, after any earlier rest, for `write_backlog`."""
        data = s.encode("utf-8") if isinstance(s, str) else s
        self.writes += 1
        if not self.backlog:
            written = self._write_some(data)
            if written == len(data):
                return written
            data = data[written:]
            self.on_backlog(True)
        self.backlog.append(data)
        return len(data)

    def write_backlog(self) -> None:
        """The pty has room: write what waits, as much as it takes."""
        while self.backlog:
            data = self.backlog[0]
            written = self._write_some(data)
            if not self.backlog:  # the program's end closed, and the backlog went with it
                break
            if written < len(data):
                self.backlog[0] = data[written:]
                return
            self.backlog.popleft()
        self.on_backlog(False)

    def _write_some(self, data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0
        except OSError as e:
            if e.errno in (errno.EIO, errno.EBADF):  # the program's end closed: its input goes nowhere
                self.backlog.clear()
                return len(data)
            raise

    def read(self, size: int = READ_SIZE) -> str:
        """What output is there, up to ``size`` bytes, decoded ('' if none yet); EOFError once it ended."""
        if self._eof:
            raise EOFError("End Of File (EOF).")
        chunks: list[bytes] = []
        got = 0
        while got < size:
            try:
                chunk = os.read(self.fd, size - got)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno != errno.EIO:  # Linux says EIO once the program's end closed
                    raise
                chunk = b""
            if not chunk:
                self._eof = self.flag_eof = True
                if not chunks:
                    raise EOFError("End Of File (EOF).")
                break  # the output before the end goes out first; the next read says it ended
            chunks.append(chunk)
            got += len(chunk)
        self.last_read = got
        return self.decoder.decode(b"".join(chunks), final=False)


class LoopPty(PtyWithClients):
    """terminado's pty with clients, on a `LoopPtyProcess`."""

    def __init__(self, argv: Any, env: dict[str, str] | None = None, cwd: str | None = None):
        # PtyWithClients.__init__, but with the class of pty chosen here.
        self.clients: list[Any] = []
        self.read_buffer: deque[str] = deque([], maxlen=1000)  # replayed to a client that re-attaches
        if cwd is None and env:
            self.ptyproc = LoopPtyProcess.start(argv, env)
        else:  # posix_spawn has no working directory to start in (before Python 3.13)
            kwargs: dict[str, Any] = {"argv": argv, "env": env or [], "cwd": cwd}
            if preexec_fn is not None:
                kwargs["preexec_fn"] = preexec_fn
            self.ptyproc = LoopPtyProcess.spawn(**kwargs)
        self.ptyproc.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.unsent: list[str] = []  # streaming output being joined into one message
        self.unsent_bytes = 0
        self.send_timer: Any = None
        self.last_sent = 0.0  # time.monotonic() of the last message
        self.writes_sent = 0  # the pty's input count then


class InlineExecutor(Executor):
    """Runs what it is given at once, on the caller's thread.

    terminado's sockets hand each keystroke to their manager's executor; a `LoopPtyProcess`
    write never blocks, so the hop to a thread would only cost time.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:  # the caller awaits the future and sees the error there
            future.set_exception(e)
        return future


class LoopPtyManager(TermManagerBase):
    """A terminado manager whose terminals are all `LoopPty`: mixed in before terminado's own class."""

    ptys_by_fd: dict[int, LoopPty]  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not self._blocking_io_executor_is_external:
            self.blocking_io_executor.shutdown(wait=False)  # made by terminado, never used: no thread started
            self.blocking_io_executor = InlineExecutor()

    def new_terminal(self, **kwargs: Any) -> LoopPty:
        # TermManagerBase.new_terminal, building a LoopPty.
        options = self.term_settings.copy()
        options["shell_command"] = self.shell_command
        options.update(kwargs)
        return LoopPty(options["shell_command"], self.make_term_env(**options), options.get("cwd", None))

    def start_reading(self, ptywclients: LoopPty) -> None:  # type: ignore[override]
        super().start_reading(ptywclients)
        fd, loop = ptywclients.ptyproc.fd, IOLoop.current()

        def watch_writable(waiting: bool) -> None:
            if fd in self.ptys_by_fd:
                loop.update_handler(fd, loop.READ | (loop.WRITE if waiting else 0))

        ptywclients.ptyproc.on_backlog = watch_writable

    def pty_read(self, fd: int, events: Any = None) -> None:
        """The loop says the pty is readable (or writable while input waits): no second poll."""
        ptywclients = self.ptys_by_fd.get(fd)
        if ptywclients is None:
            return
        ptyproc = ptywclients.ptyproc
        if events is not None and events & IOLoop.WRITE and ptyproc.backlog:
            ptyproc.write_backlog()
        if events is not None and not events & (IOLoop.READ | IOLoop.ERROR):
            return
        try:
            self.pre_pty_read_hook(ptywclients)
            text = ptyproc.read(READ_SIZE)
        except EOFError:
            self.send_output(ptywclients)
            self.on_eof(ptywclients)
            for client in ptywclients.clients:
                client.on_pty_died()
            return
        if not text:
            return
        ptywclients.unsent.append(text)
        ptywclients.unsent_bytes += ptyproc.last_read
        if (ptyproc.writes == ptywclients.writes_sent and ptywclients.unsent_bytes < READ_SIZE
                and time.monotonic() - ptywclients.last_sent < COALESCE):
            if ptywclients.send_timer is None:
                ptywclients.send_timer = IOLoop.current().call_later(COALESCE, self.send_output, ptywclients)
            return
        self.send_output(ptywclients)

    def send_output(self, ptywclients: LoopPty) -> None:
        """What was read and not sent yet, as one message to every client (and kept for re-attaching)."""
        if ptywclients.send_timer is not None:
            IOLoop.current().remove_timeout(ptywclients.send_timer)
            ptywclients.send_timer = None
        if not ptywclients.unsent:
            return
        text = "".join(ptywclients.unsent)
        ptywclients.unsent.clear()
        ptywclients.unsent_bytes = 0
        ptywclients.last_sent = time.monotonic()
        ptywclients.writes_sent = ptywclients.ptyproc.writes
        ptywclients.read_buffer.append(text)
        for client in ptywclients.clients:
            client.on_pty_read(text)
