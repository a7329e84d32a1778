"""`perry list` / `perry ls` [--json] answered with the standard library alone.

The full command tree costs click, requests and rich before it prints a line: about ten
times `docker ps` for a list. This path reads the same configuration, makes the same GET
on a socket and prints what the tree would print, byte for byte: the JSON as
`--json` prints it, the empty-list line, or the table as rich lays it out when it fits the
terminal on one line per row (columns as wide as their widest cell, two spaces apart, the
header bold, each cell in its style). Whenever it could differ it answers nothing and the
full tree runs instead: another command or option, an https URL or a proxy in the
environment (requests' business), any failure or non-200 answer (the tree says why, in
its own words, after asking again), text that is not printable ASCII, a table wider than
the terminal (rich wraps and cuts it), Windows.
"""

from __future__ import annotations

import json
import os
import sys

# The presenter's style names as rich styles; the terminal face (draw.py) uses the same table.
STYLE = {"strong": "bold", "muted": "dim", "error": "red", "warn": "yellow", "good": "green", "busy": "cyan",
         "bad": "bold red"}
# Those rich styles as ANSI SGR codes (attributes, colours), as rich writes them.
_SGR = {"bold": ("1", ""), "dim": ("2", ""), "red": ("", "31"), "yellow": ("", "33"), "green": ("", "32"),
        "cyan": ("", "36"), "bold red": ("1", "31")}
_PROXY_VARS = ("http_proxy", "all_proxy")
CONNECT_TIMEOUT = 5.0  # as PerryClient's
READ_TIMEOUT = 30.0  # seconds of silence


def run(argv: list[str]) -> bool:
    """Answer ``perry ARGV`` here when it is a plain list; False when the full tree must."""
    if not argv or argv[0] not in ("list", "ls") or argv[1:] not in ([], ["--json"]) or sys.platform == "win32":
        return False
    found = _workspaces()
    if found is None:
        return False
    if argv[1:] == ["--json"]:
        out = json.dumps(found, indent=2, sort_keys=False) + "\n"
        stream = sys.stdout
    else:
        from perry_jupyter import present

        view = present.workspaces(found, prog="perry")
        if not view.rows:
            out, stream = view.empty + "\n", sys.stderr
        else:
            table = render_table(view, sys.stdout, os.environ)
            if table is None:
                return False
            out, stream = table, sys.stdout
    stream.write(out)
    stream.flush()
    return True


def _workspaces() -> list[dict] | None:
    """``GET /perry/api/workspaces``'s workspaces, or None for anything but a plain 200 with JSON."""
    from urllib.parse import urlsplit

    from perry_jupyter.cli import clientconfig

    if any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARS):
        return None
    try:
        cfg = clientconfig.resolve()
        url = urlsplit(cfg.url.rstrip("/"))
        if (url.scheme != "http" or not url.hostname or url.query or url.fragment or url.username
                or not all(c.isalnum() or c in "/._~-" for c in url.path)):
            return None  # requests' business: TLS, credentials in the URL, quoting
        body = _get(url.hostname, url.port or 80, f"{url.path}/perry/api/workspaces", cfg.token)
        answer = json.loads(body) if body is not None else None
    except Exception:  # noqa: BLE001 - the full tree asks again and says what went wrong
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("workspaces", []), list):
        return None
    return answer.get("workspaces", [])


def _get(host: str, port: int, path: str, token: str | None) -> bytes | None:
    """The body of a 200 answer to one HTTP/1.1 GET, or None for any other answer.

    A socket, not http.client: importing http.client (with the email package it parses
    headers with, and ssl) costs about as much CPU as Python's own start. What is read is
    narrow on purpose: a status line, headers with a Content-Length, that many bytes; a
    chunked or otherwise unusual answer is None, and the full tree asks again.
    """
    import socket

    request = (f"GET {path} HTTP/1.1\r\nHost: {host if ':' not in host else f'[{host}]'}:{port}\r\n"
               "Accept: application/json\r\nConnection: close\r\n"
               + (f"Authorization: token {token}\r\n" if token else "") + "\r\n")
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as sock:
        sock.settimeout(READ_TIMEOUT)
        sock.sendall(request.encode("latin-1"))
        data = bytearray()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, sep, body = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not sep or lines[0].split(" ")[1:2] != ["200"]:
        return None
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return None
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers or headers.get("content-length") != str(len(body)):
        return None
    return body


# ---------------------------------------------------------------- rich's table, when it fits

def _is_terminal(stream: object, env: object) -> bool:
    """rich's Console.is_terminal for a console script (no Jupyter, no IDLE)."""
    compatible = env.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = env.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _width(terminal: bool, env: object) -> int | None:
    """rich's Console.size.width; None when rich would take a width that is no width."""
    columns, lines = env.get("COLUMNS"), env.get("LINES")
    dumb = terminal and env.get("TERM", "").lower() in ("dumb", "unknown")
    if columns is not None and columns.isdigit() and lines is not None and lines.isdigit():
        return int(columns) or None
    if dumb:
        return 80
    width = None
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
            break
        except (AttributeError, ValueError, OSError):
            pass
    if columns is not None and columns.isdigit():
        return int(columns) or None
    return width or 80


def render_table(view: object, stream: object, env: object) -> str | None:
    """The text rich prints for the terminal face's table of ``view`` (``box=None``, bold header,
    ``pad_edge=False``), or None when it would not fit on one line per row."""
    header = [column.upper() for column in view.columns]
    rows = [[(cell.text, cell.style) if hasattr(cell, "text") else (str(cell), "") for cell in row]
            for row in view.rows]
    texts = header + [text for row in rows for text, _ in row]
    if not all(text.isascii() and text.isprintable() for text in texts):
        return None
    if any(STYLE.get(style, "") not in _SGR for row in rows for _, style in row if STYLE.get(style)):
        return None  # a style this copy of rich's output does not know
    widths = [max(len(header[i]), *(len(row[i][0]) for row in rows)) for i in range(len(header))]
    terminal = _is_terminal(stream, env)
    width = _width(terminal, env)
    if width is None or sum(widths) + 2 * (len(widths) - 1) > width:
        return None
    plain = not terminal or env.get("TERM", "").lower() in ("dumb", "unknown")
    no_color = env.get("NO_COLOR", "") != ""

    def styled(text: str, style: str) -> str:
        if plain or not text or not style:
            return text
        attributes, colour = _SGR[style]
        codes = ";".join(c for c in (attributes, "" if no_color else colour) if c)
        return f"\x1b[{codes}m{text}\x1b[0m" if codes else text

    last = len(widths) - 1
    # rich styles the header's whole cell, padding included, one segment per piece.
    out = ["".join((styled(" ", "bold") if i else "") + styled(h.ljust(widths[i]), "bold")
                   + (styled(" ", "bold") if i < last else "") for i, h in enumerate(header)) + "\n"]
    for row in rows:
        out.append("".join((" " if i else "") + styled(text, STYLE.get(style, "")) + " " * (widths[i] - len(text))
                           + (" " if i < last else "") for i, (text, style) in enumerate(row)) + "\n")
    return "".join(out)
