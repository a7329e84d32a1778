"""`perry forward NAME PORT`: a local TCP port whose connections reach a workspace's port.

Each accepted connection opens one WebSocket to the server
(`/perry/api/workspaces/{name}/ports/{port}/connect`, the same token as REST) and copies bytes
both ways as binary messages; an empty message is the local side's end of input. Like
`kubectl port-forward`: the server reaches the port through the Docker engine, so nothing
else needs to be open. Imported only by the ``forward`` command (it imports websocket-client).
"""

from __future__ import annotations

import socket
import sys
import threading
from typing import Callable

from perry_jupyter.client import PerryClient, PerryClientError

CHUNK = 256 * 1024


def parse_local(local: str | None, port: int) -> tuple[str, int]:
    """``[HOST:]PORT`` (default: 127.0.0.1 and the workspace's port number; 0 picks a free one)."""
    if not local:
        return "127.0.0.1", port
    host, _, number = local.rpartition(":")
    try:
        value = int(number)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise ValueError(f"--local must be [HOST:]PORT with a port from 0 to 65535, not {local!r}")
    return host.strip("[]") or "127.0.0.1", value


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((host, port))
    except OSError as e:
        server.close()
        raise PerryClientError(None, "local_port", f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    server.listen(64)
    return server


def serve(client: PerryClient, name: str, port: int, server: socket.socket,
          on_error: Callable[[str], None]) -> None:
    """Accept connections until interrupted (Ctrl-C), each bridged on its own threads."""
    server.settimeout(0.5)  # so Ctrl-C is seen promptly on every platform
    try:
        while True:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            threading.Thread(target=bridge, args=(client, name, port, conn, on_error), daemon=True).start()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def bridge(client: PerryClient, name: str, port: int, conn: socket.socket, on_error: Callable[[str], None]) -> None:
    import websocket  # websocket-client

    from perry_jupyter.cli.shell import _handshake_error

    url = client.websocket_url(client.port_socket_path(name, port))
    try:
        ws = websocket.create_connection(url, header=client.websocket_headers(), suppress_origin=True,
                                         enable_multithread=True, timeout=60)
    except websocket.WebSocketBadStatusException as e:
        on_error(_handshake_error(client, name, e).message)
        conn.close()
        return
    except (websocket.WebSocketException, OSError) as e:
        on_error(f"cannot reach {name}:{port} through {client.url}: {e}")
        conn.close()
        return
    ws.settimeout(None)

    def upstream() -> None:
        try:
            while chunk := conn.recv(CHUNK):
                ws.send_binary(chunk)
            ws.send_binary(b"")  # end of input: the port sees a half-close
        except (OSError, websocket.WebSocketException):
            pass

    threading.Thread(target=upstream, daemon=True).start()
    try:
        while True:
            opcode, data = ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            if data:
                conn.sendall(data)
    except (OSError, websocket.WebSocketException):
        pass
    finally:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()
        ws.close()


def stderr_line(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
