"""`perry shell`: a terminal into a workspace, from the terminal you are in.

Three ways in, chosen by ``perry shell`` (perry_jupyter.cli):

- interactive (stdin is a tty): Perry's terminal WebSocket ``/perry/terminal/{name}``
  (the terminado protocol: ``["stdin", s]``, ``["set_size", rows, cols]`` out;
  ``["setup", {}]``, ``["stdout", s]``, ``["exit", code]``, ``["disconnect", 1]`` in),
  with the local tty in raw mode for the length of the session: :func:`run_interactive`;
- a script on stdin (not a tty): run through the exec REST API as ``bash -l -c SCRIPT``,
  so the output is the command's output and nothing else: :func:`run_script`;
- ``--ssh``: the system ssh client on the workspace's published port: :func:`run_ssh`.

The local terminal's settings are restored on every way out of an interactive session:
the remote shell's exit, a dropped connection, an exception, SIGTERM/SIGHUP.

Imported only by the ``shell`` command, and it imports ``websocket`` (websocket-client)
inside the functions that need it, so the rest of the CLI never pays for either.
"""

from __future__ import annotations

import codecs
import errno
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from typing import Any
from urllib.parse import quote

from perry_jupyter.client import TOKEN_FIX, UNREACHABLE_FIX, PerryClient, PerryClientError, ServerUnreachable

CONNECT_TIMEOUT = 15.0
# Linux refuses a single argv string longer than MAX_ARG_STRLEN (32 pages); say so
# before the server answers with an opaque exec failure.
MAX_SCRIPT_BYTES = 128 * 1024 - 1
# Signals that end an interactive session cleanly (terminal restored, status 128+n).
_ENDING_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n))


class _Ended(Exception):
    """Raised in the main thread by a signal handler: end the session, restore the tty."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


# -- where to connect --------------------------------------------------------------

def connect(client: PerryClient, workspace: str, terminal: str | None = None,
            timeout: float = CONNECT_TIMEOUT):
    """Open the terminal WebSocket; every refusal becomes a PerryClientError with a clear message."""
    import websocket  # websocket-client; only this command needs it

    url = client.websocket_url(f"perry/terminal/{quote(workspace, safe='')}", terminal=terminal)
    header = client.websocket_headers()
    try:
        # No Origin header: Jupyter lets scripts (no Origin) through and would refuse a
        # made-up one behind a proxy that rewrites Host.
        # skip_utf8_validation: websocket-client checks text frames byte by byte in pure
        # Python (~3 MB/s of output); the frames are decoded (in C, strictly) anyway.
        ws = websocket.create_connection(url, header=header, timeout=timeout, suppress_origin=True,
                                         enable_multithread=True, skip_utf8_validation=True)
    except websocket.WebSocketBadStatusException as e:
        raise _handshake_error(client, workspace, e, terminal) from None
    except websocket.WebSocketTimeoutException:
        raise ServerUnreachable(None, "timeout", f"the Perry server at {client.url} did not open the "
                                                 f"terminal within {timeout:.0f} s") from None
    except websocket.WebSocketAddressException:
        raise ServerUnreachable(None, "unreachable", f"no Perry server answered at {client.url} "
                                                     f"(name or service not known); {UNREACHABLE_FIX}") from None
    except (ConnectionError, OSError) as e:
        reason = (e.strerror or type(e).__name__).lower() if isinstance(e, OSError) else type(e).__name__
        raise ServerUnreachable(None, "unreachable",
                                f"no Perry server answered at {client.url} ({reason}); {UNREACHABLE_FIX}") from None
    except websocket.WebSocketException as e:
        raise PerryClientError(None, "websocket", f"cannot open a terminal at {url.split('?')[0]}: {e}") from None
    ws.settimeout(None)  # a shell may sit idle for hours; Jupyter's pings keep the line alive
    return ws


def _handshake_error(client: PerryClient, workspace: str, e: Any, terminal: str | None = None) -> PerryClientError:
    status = int(getattr(e, "status_code", 0) or 0)
    message = code = None
    body = getattr(e, "resp_body", None)
    if body:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            message, code = error.get("message"), error.get("code")
        elif isinstance(data, dict):  # tornado/Jupyter's own {"message", "reason"}
            message = data.get("message") or data.get("reason")
    if status in (401, 403) and code in (None, "forbidden", "unauthorized", "error"):
        return PerryClientError(status, "forbidden", TOKEN_FIX)
    if 300 <= status < 400:
        return PerryClientError(status, "forbidden", TOKEN_FIX)  # Jupyter's redirect to its login page
    if message:
        return PerryClientError(status, str(code or "error"), str(message))
    if 400 <= status < 500:
        # The handshake's refusal is a bare page: ask the REST API, whose answer names the
        # real problem (a bad name, no such workspace, a stopped one).
        ws = client.get_workspace(workspace)  # raises invalid / not_found
        if ws.get("status") != "running":
            return PerryClientError(409, "conflict", f"workspace {workspace!r} is {ws.get('status')}, not running; "
                                                     f"start it with `perry start {workspace}`")
        if status == 404 and terminal:
            return PerryClientError(404, "not_found", f"workspace {workspace!r} has no terminal {terminal!r}")
        if status == 404:
            return PerryClientError(404, "no_terminals", f"the Perry server at {client.url} has no terminal "
                                                         "WebSocket (/perry/terminal/...); is it an older version?")
    return PerryClientError(status or None, "http_error",
                            f"the Perry server at {client.url} refused the terminal (HTTP {status})")


# -- interactive -------------------------------------------------------------------

def terminal_size(fd: int) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return (size.lines, size.columns) if size.lines > 0 and size.columns > 0 else None


def exit_status(code: Any) -> int:
    """The remote ``["exit", code]`` as a local exit status (a signal n is 128+n, like a shell)."""
    if isinstance(code, bool) or not isinstance(code, int):
        return 1
    if code < 0:
        return min(128 - code, 255)
    return code if code < 256 else 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


class TerminalSession:
    """One interactive session: the local tty in raw mode bridged to a terminal WebSocket.

    The main thread waits (select) on the local tty and a wake-up pipe; signal handlers
    (SIGWINCH, SIGCONT) and the WebSocket reader thread write to that pipe. Only the main
    thread sends on the WebSocket and touches the tty settings; only the reader writes to
    the local stdout.
    """

    def __init__(self, ws, stdin_fd: int, stdout_fd: int):
        self.ws = ws
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.exit_code: Any = None  # from ["exit", code]
        self.disconnected = False  # the server said ["disconnect", ...] (or closed cleanly)
        self.stdout_broken = False
        self.ended_by: int | None = None  # the local signal that ended the session
        self._ends_with_newline = True
        self._reader_done = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)

    # the threads talk through the pipe: W resize, C continued, X reader finished
    def _wake(self, what: bytes) -> None:
        try:
            os.write(self._wake_w, what)
        except OSError:  # a full pipe already holds a wake-up
            pass

    def _send(self, message: list) -> None:
        self.ws.send(json.dumps(message))

    def _send_size(self) -> None:
        size = terminal_size(self.stdin_fd) or terminal_size(self.stdout_fd)
        if size:
            self._send(["set_size", size[0], size[1]])

    def _raw(self) -> None:
        import termios
        import tty

        tty.setraw(self.stdin_fd, termios.TCSANOW)  # TCSANOW: keep what was typed ahead

    def _read_loop(self) -> None:
        import websocket

        try:
            while True:
                try:
                    text = self.ws.recv()
                except (websocket.WebSocketConnectionClosedException, OSError):
                    break
                except websocket.WebSocketException:
                    break
                if not text:  # a close frame
                    break
                if isinstance(text, bytes):
                    text = text.decode("utf-8", "replace")
                try:
                    message = json.loads(text)
                except ValueError:
                    continue
                if not isinstance(message, list) or not message:
                    continue
                kind = message[0]
                if kind == "stdout" and len(message) > 1 and isinstance(message[1], str):
                    if self.stdout_broken or not message[1]:
                        continue
                    data = message[1].encode("utf-8", "surrogateescape")
                    try:
                        _write_all(self.stdout_fd, data)
                    except OSError:  # the local side is gone (EPIPE, EIO): keep draining
                        self.stdout_broken = True
                        continue
                    self._ends_with_newline = data.endswith(b"\n")
                elif kind == "exit" and len(message) > 1:
                    self.exit_code = message[1]
                elif kind == "disconnect":
                    self.disconnected = True
                    break
        finally:
            self._reader_done.set()
            self._wake(b"X")

    def run(self) -> int:
        """Bridge until the remote shell ends; returns its exit status. Restores the tty always."""
        import termios

        saved_tty = termios.tcgetattr(self.stdin_fd)
        saved_handlers: dict[int, Any] = {}
        reader = threading.Thread(target=self._read_loop, name="perry-shell-reader", daemon=True)
        ended_by: int | None = None  # a local signal (or the local tty hanging up) ended it
        lost = False

        def on_signal(signum, frame):
            if signum == signal.SIGWINCH:
                self._wake(b"W")
            elif signum == signal.SIGCONT:
                self._wake(b"C")
            else:
                raise _Ended(signum)

        try:
            for signum in (signal.SIGWINCH, signal.SIGCONT, *_ENDING_SIGNALS):
                saved_handlers[signum] = signal.signal(signum, on_signal)
            try:
                self._send_size()
            except Exception:
                lost = True
            self._raw()
            reader.start()
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            while not lost and not self._reader_done.is_set():
                try:
                    readable, _, _ = select.select([self.stdin_fd, self._wake_r], [], [])
                except InterruptedError:
                    continue
                try:
                    if self._wake_r in readable:
                        events = os.read(self._wake_r, 4096)
                        if b"C" in events:  # back from a stop: whoever ran meanwhile may have reset the tty
                            self._raw()
                        if b"W" in events or b"C" in events:
                            self._send_size()
                        if b"X" in events:
                            break
                    if self.stdin_fd in readable:
                        try:
                            data = os.read(self.stdin_fd, 65536)
                        except OSError as e:
                            if e.errno not in (errno.EIO, errno.EBADF):
                                raise
                            data = b""
                        if not data:  # the local terminal hung up
                            ended_by = getattr(signal, "SIGHUP", 1)
                            break
                        text = decoder.decode(data)
                        if text:
                            self._send(["stdin", text])
                except _Ended:
                    raise
                except Exception as e:  # a send on a dead connection
                    if _is_connection_error(e):
                        lost = True
                        break
                    raise
        except _Ended as e:
            ended_by = e.signum
        finally:
            # A second SIGTERM must not interrupt the restoring itself: note it instead.
            late: list[int] = []
            for signum in _ENDING_SIGNALS:
                if signum in saved_handlers:
                    signal.signal(signum, lambda n, f: late.append(n))
            try:
                termios.tcsetattr(self.stdin_fd, termios.TCSADRAIN, saved_tty)
            except (termios.error, OSError):  # the terminal is gone (SIGHUP): nothing to restore
                pass
            for signum, handler in saved_handlers.items():
                signal.signal(signum, handler)
            self._close(reader)
            if late and ended_by is None:
                ended_by = late[0]

        self.ended_by = ended_by
        if ended_by is not None:
            return 128 + ended_by
        if self.exit_code is not None:
            return exit_status(self.exit_code)
        if not self._ends_with_newline and not self.stdout_broken:
            try:
                _write_all(self.stdout_fd, b"\r\n")
            except OSError:
                pass
        if self.disconnected:
            raise PerryClientError(None, "disconnected", "the server closed the terminal without an exit status")
        raise ServerUnreachable(None, "unreachable", "lost the connection to the Perry server "
                                                     "(the shell in the workspace may still be running)")

    def _close(self, reader: threading.Thread) -> None:
        if reader.is_alive():
            # Give the reader a moment to take the last frames (the exit status travels
            # just behind the shell's last output), then cut the socket under it.
            reader.join(0.5)
        if reader.is_alive():
            try:
                self.ws.abort()
            except Exception:
                pass
            reader.join(2)
        try:
            self.ws.shutdown()
        except Exception:
            pass
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


def _is_connection_error(e: BaseException) -> bool:
    import websocket

    return isinstance(e, (websocket.WebSocketConnectionClosedException, ConnectionError, BrokenPipeError,
                          websocket.WebSocketException, OSError))


def run_interactive(client: PerryClient, workspace: str, terminal: str | None = None,
                    stdin_fd: int | None = None, stdout_fd: int | None = None, *, created: str | None = None) -> int:
    """An interactive shell in a workspace over the terminal WebSocket; returns its exit status.

    Without ``terminal`` a new terminal is made through REST first (its errors are
    Perry's JSON ones, and the name is then known), then attached. When a local signal
    or hang-up ends the session, that terminal is closed on the server, as sshd hangs up
    a shell whose client went away, instead of leaving a shell nobody can find; so is
    ``created``, a terminal the caller made for this session.
    """
    stdin_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    if stdout_fd is None:
        sys.stdout.flush()
        stdout_fd = sys.stdout.fileno()
    if created is not None:
        terminal = created
    elif terminal is None:
        try:
            created = terminal = str(client.create_terminal(workspace)["name"])
        except PerryClientError as e:
            if e.code != "no_api":  # an older server without the REST route: the WebSocket makes one
                raise
        except (KeyError, TypeError):
            raise PerryClientError(None, "bad_response", f"{client.url} answered the terminal creation "
                                                         "without a terminal name") from None
    try:
        ws = connect(client, workspace, terminal)
    except BaseException:
        if created:
            _close_quietly(client, workspace, created)
        raise
    session = TerminalSession(ws, stdin_fd, stdout_fd)
    try:
        return session.run()
    finally:
        if created and session.ended_by is not None:
            _close_quietly(client, workspace, created)


def _close_quietly(client: PerryClient, workspace: str, terminal: str) -> None:
    try:
        client.delete_terminal(workspace, terminal, timeout=5.0)
    except PerryClientError:
        pass  # gone already, or the server is: nothing more to do from here


# -- a script on stdin ---------------------------------------------------------------

def run_script(client: PerryClient, workspace: str, script: bytes | str) -> dict:
    """Run a script as ``bash -l -c SCRIPT`` through exec: ``{"exitCode", "stdout", "stderr"}``."""
    if isinstance(script, bytes):
        script = script.decode("utf-8", "replace")
    size = len(script.encode("utf-8"))
    if size > MAX_SCRIPT_BYTES:
        raise PerryClientError(None, "invalid", f"the script on stdin is {size} bytes; `perry shell` runs at "
                                                f"most {MAX_SCRIPT_BYTES + 1} bytes (copy longer ones in and run them)")
    if "\0" in script:
        raise PerryClientError(None, "invalid", "the script on stdin contains a NUL byte")
    return client.exec(workspace, ["bash", "-l", "-c", script])


# -- ssh -------------------------------------------------------------------------------

def ssh_argv(command_line: str) -> list[str]:
    """The server's ``sshCommand``, trusting a new workspace's host key on first use."""
    words = shlex.split(command_line)
    return [*words[:-1], "-o", "StrictHostKeyChecking=accept-new", words[-1]]


def run_ssh(argv: list[str], replace_process: bool = True) -> int:
    """Run the system ssh: in place of this process (the CLI), or as a child (magics)."""
    path = shutil.which(argv[0])
    if path is None:
        raise PerryClientError(None, "no_ssh", "no ssh client found on this machine (install openssh-client), "
                                               "or use `perry shell` without --ssh")
    sys.stdout.flush()
    sys.stderr.flush()
    if replace_process:
        os.execv(path, argv)
    return subprocess.call([path, *argv[1:]])
