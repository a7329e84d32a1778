"""Where the CLI, magics and widgets find the Perry server, and with which token.

Resolution order (first hit wins, separately for the URL and the token):

1. env ``PERRY_URL`` / ``PERRY_TOKEN``;
2. ``<config dir>/client.json`` ``{"url": ..., "token": ...}``, written by
   ``perry config worker HOST[:PORT] [--token T]``;
3. a ``perry serve`` running on this machine, on whatever port, as it recorded itself in
   ``<config dir>/server-<pid>.json`` (the newest one still running), with its token;
4. ``http://127.0.0.1:7391`` with the token from ``<config dir>/token`` (written by
   ``perry serve`` on its first run).

The client file's token is only used while the URL in effect is the client file's URL,
a recorded server's token only for that server's URL, and the local token file only for
a server on this machine (a loopback host), so a token is never sent to a server it was
not meant for.

Standard library only: this module is on the CLI's fast path.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .. import paths

DEFAULT_PORT = 7391
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
CLIENT_FILE = "client.json"
TOKEN_FILE = paths.TOKEN_FILE
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "ip6-localhost"}


config_dir = paths.config_dir


def client_file() -> Path:
    return config_dir() / CLIENT_FILE


def token_file() -> Path:
    return paths.token_file()


@dataclass(frozen=True)
class ClientConfig:
    url: str
    token: str | None
    url_source: str  # for people: "env PERRY_URL", "client file /x/client.json", "default"
    token_source: str | None  # None when no token was found

    def __repr__(self) -> str:  # never show the token, not even in a traceback
        return (f"ClientConfig(url={self.url!r}, token={'set' if self.token else 'not set'}, "
                f"url_source={self.url_source!r}, token_source={self.token_source!r})")


def normalize_url(target: str) -> str:
    """Turn ``HOST``, ``HOST:PORT`` or a full URL into a base URL.

    ``HOST[:PORT]`` gets ``http://`` and the default port 7391; a full URL (with a
    scheme) is kept as given, base_url path included. Raises ValueError for nonsense.
    """
    target = (target or "").strip()
    if not target:
        raise ValueError("empty server address")
    if "://" in target:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported scheme {parts.scheme!r} in {target!r} (use http or https)")
        if not parts.hostname:
            raise ValueError(f"no host in {target!r}")
        _check_port(parts, target)
        return target
    if "/" in target:
        raise ValueError(f"{target!r} is neither HOST[:PORT] nor a full http(s):// URL")
    parts = urlsplit("http://" + target)
    if not parts.hostname:
        raise ValueError(f"no host in {target!r}")
    port = _check_port(parts, target)
    host = parts.netloc if port is not None else f"{parts.netloc}:{DEFAULT_PORT}"
    return f"http://{host}"


def _check_port(parts, target: str) -> int | None:
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in {target!r} (expected a number 1-65535)") from None
    if port == 0:
        raise ValueError(f"bad port in {target!r} (expected a number 1-65535)")
    return port


def is_loopback(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host in _LOOPBACK or host.startswith("127.")


def read_client_file(path: Path | None = None) -> dict:
    """The client file's contents, ``{}`` when it is missing; ValueError when unreadable."""
    path = path or client_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); fix it or rerun `perry config worker`") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} should hold a JSON object; rerun `perry config worker`")
    return data


def read_token_file(path: Path | None = None) -> str | None:
    """The token ``perry serve`` wrote, or None. Plain text; a JSON ``{"token"}`` is accepted too."""
    path = path or token_file()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("token") or "")
        except (json.JSONDecodeError, AttributeError):
            return None
    return text or None


def resolve() -> ClientConfig:
    """The URL and token to use, with where each came from."""
    path = client_file()
    stored = read_client_file(path)
    stored_url = stored.get("url") if isinstance(stored.get("url"), str) else None
    stored_token = stored.get("token") if isinstance(stored.get("token"), str) else None

    env_url = os.environ.get("PERRY_URL", "").strip()
    local = paths.running_servers()
    if env_url:
        url, url_source = normalize_url(env_url), "env PERRY_URL"
    elif stored_url:
        url, url_source = stored_url, f"client file {path}"
    elif local:
        url, url_source = local[0]["url"], f"perry serve (pid {local[0]['pid']}) recorded in {local[0]['file']}"
    else:
        url, url_source = DEFAULT_URL, "default"
    recorded = next((s for s in local if _same_server(s["url"], url)), None)

    token: str | None = None
    token_source: str | None = None
    env_token = os.environ.get("PERRY_TOKEN", "").strip()
    if env_token:
        token, token_source = env_token, "env PERRY_TOKEN"
    elif stored_token and stored_url and _same_url(stored_url, url):
        token, token_source = stored_token, f"client file {path}"
    elif recorded is not None and isinstance(recorded.get("token"), str) and recorded["token"]:
        token, token_source = recorded["token"], f"server file {recorded['file']}"
    elif is_loopback(url):
        token = read_token_file()
        if token:
            token_source = f"token file {token_file()}"
    return ClientConfig(url=url, token=token, url_source=url_source, token_source=token_source)


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _same_server(recorded: str, url: str) -> bool:
    """Whether ``url`` reaches the server recorded at ``recorded``."""
    if _same_url(recorded, url):
        return True
    if not (is_loopback(recorded) and is_loopback(url)):
        return False
    try:
        a, b = urlsplit(recorded), urlsplit(url)
        same_port = (a.port or DEFAULT_PORT) == (b.port or DEFAULT_PORT)
    except ValueError:
        return False
    return a.scheme == b.scheme and same_port and a.path.rstrip("/") == b.path.rstrip("/")


def write_client_file(url: str, token: str | None) -> Path:
    """Store the worker to talk to: atomically (temp file + rename), mode 0600."""
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / CLIENT_FILE
    data: dict = {"url": url}
    if token:
        data["token"] = token
    import tempfile  # not on `perry list`'s path, which only reads

    fd, tmp = tempfile.mkstemp(prefix=".client-", suffix=".json", dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
