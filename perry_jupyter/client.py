"""The Python client of Perry's REST API, shared by the CLI, the magics and the widgets.

Small and light on purpose (requests only, nothing of Jupyter, tornado or Docker), so that
``perry list`` answers at once. The token goes into the ``Authorization`` header and
nowhere else: it is never logged, printed or put into a message or a ``repr``.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase

from perry_worker import agents as agent_registry

CONNECT_TIMEOUT = 5.0
DEFAULT_TIMEOUT = 30.0
LONG_TIMEOUT = 600.0  # create/start block until the workspace is ready
BUILD_TIMEOUT = 3600.0  # longest silence tolerated between two build events

UNREACHABLE_FIX = ("start it with `perry serve`, or point the CLI at one with "
                   "`perry config worker HOST:PORT --token T`")
TOKEN_FIX = ("the server refused the token: run `perry config worker HOST --token T` "
             "or set PERRY_TOKEN")

# The status an error code would have had, for errors that arrive inside a 200 stream.
_CODE_STATUS = {"invalid": 400, "not_found": 404, "conflict": 409, "busy": 409, "image_missing": 409,
                "engine_unavailable": 503, "docker_error": 502, "not_ready": 504,
                "not_a_workspace_image": 422}


class PerryClientError(Exception):
    """An error answer from the server (or no answer at all)."""

    def __init__(self, status: int | None, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class ServerUnreachable(PerryClientError):
    """Nothing answered at the URL: connection refused, DNS failure or a timeout."""


class _TokenAuth(AuthBase):
    # An explicit auth object also keeps ~/.netrc from replacing our header.
    def __init__(self, token: str | None):
        self._token = token

    def __call__(self, request):
        if self._token:
            request.headers["Authorization"] = f"token {self._token}"
        return request

    def __repr__(self) -> str:
        return "_TokenAuth(<hidden>)"


class PerryClient:
    """One method per route of ``/perry/api``; answers are the decoded JSON."""

    def __init__(self, url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._auth = _TokenAuth(token)
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"

    @classmethod
    def from_config(cls, timeout: float = DEFAULT_TIMEOUT) -> "PerryClient":
        """A client for the server ``perry_jupyter.clientconfig`` resolves."""
        from perry_jupyter.cli import clientconfig

        cfg = clientconfig.resolve()
        return cls(cfg.url, cfg.token, timeout=timeout)

    @property
    def has_token(self) -> bool:
        return bool(self._auth._token)

    def __repr__(self) -> str:
        return f"PerryClient(url={self.url!r}, token={'set' if self.has_token else 'not set'})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "PerryClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- server ----------------------------------------------------------------------

    def info(self) -> dict:
        return self._json("GET", "info")

    def config(self) -> dict:
        return self._json("GET", "config")

    def update_config(self, **settings: Any) -> dict:
        return self._json("PATCH", "config", body=settings)

    # -- workspaces ------------------------------------------------------------------

    def list_workspaces(self) -> list[dict]:
        return self._json("GET", "workspaces").get("workspaces", [])

    def get_workspace(self, name: str) -> dict:
        return self._json("GET", _ws(name))

    def create_workspace(self, name: str, clone: str | None = None,
                         env: Mapping[str, str] | None = None, engine: str | None = None,
                         image: str | None = None, idle_timeout: int | None = None, **limits: Any) -> dict:
        """``limits``: cpus (2, 0.5), memory (bytes or "4g"), pids; those left None take the server's defaults."""
        body: dict[str, Any] = {"name": name, **{k: v for k, v in limits.items() if v is not None}}
        if image:
            body["image"] = image
        if idle_timeout is not None:
            body["idleTimeout"] = idle_timeout
        if clone:
            body["clone"] = clone
        if env:
            body["env"] = dict(env)
        if engine:
            body["engine"] = engine
        return self._json("POST", "workspaces", body=body, timeout=LONG_TIMEOUT)

    def list_engines(self) -> list[dict]:
        return self._json("GET", "engines")["engines"]

    def add_engine(self, name: str, address: str, **settings: str | None) -> dict:
        """``settings``: sshHost, sshKey, tlsCa, tlsCert, tlsKey, bindAddress."""
        body = {"name": name, "address": address, **{k: v for k, v in settings.items() if v is not None}}
        return self._json("POST", "engines", body=body)

    def remove_engine(self, name: str) -> None:
        self._request("DELETE", f"engines/{quote(name, safe='')}")

    def update_workspace(self, name: str, **changes: Any) -> dict:
        """PATCH a workspace's fields as the API names them: idleTimeout, cpus, memory, pids (None lifts
        a limit); limits apply live where Docker can."""
        return self._json("PATCH", _ws(name), body=changes)

    def start_workspace(self, name: str) -> dict:
        return self._json("POST", _ws(name, "start"), timeout=LONG_TIMEOUT)

    def stop_workspace(self, name: str) -> dict:
        return self._json("POST", _ws(name, "stop"), timeout=LONG_TIMEOUT)

    def sync_workspace(self, name: str) -> dict:
        return self._json("POST", _ws(name, "sync"), timeout=LONG_TIMEOUT)

    def delete_workspace(self, name: str) -> None:
        self._request("DELETE", _ws(name), timeout=LONG_TIMEOUT)

    def logs(self, name: str, tail: int = 200, since: str | float | None = None) -> str:
        params = {"tail": int(tail), **({"since": since} if since is not None else {})}
        return self._json("GET", _ws(name, "logs"), params=params).get("logs", "")

    def follow_logs(self, name: str, tail: int = 200, since: str | float | None = None) -> Iterator[str]:
        """The workspace's log lines as they come, until it stops (then the iterator ends)."""
        params = {"follow": "true", "tail": int(tail), **({"since": since} if since is not None else {})}
        for kind, data in self._events(_ws(name, "logs"), params):
            if kind == "message":
                yield data

    def follow_task(self, name: str, task_id: str) -> Iterator[str]:
        """The task's output lines from the start and as they come, until the task ends."""
        path = _ws(name, f"tasks/{quote(task_id, safe='')}/output")
        for kind, data in self._events(path, {"follow": "true"}):
            if kind == "message":
                yield data

    def exec(self, name: str, command: Sequence[str] | str, user: str | None = None,
             workdir: str | None = None, env: Mapping[str, str] | None = None,
             timeout: float = LONG_TIMEOUT) -> dict:
        """Run a command in a workspace: ``{"exitCode", "stdout", "stderr"}``.

        A string is run by ``sh -c``; a list is run as is.
        """
        argv = ["sh", "-c", command] if isinstance(command, str) else [str(a) for a in command]
        body: dict[str, Any] = {"command": argv}
        if user:
            body["user"] = user
        if workdir:
            body["workdir"] = workdir
        if env:
            body["env"] = dict(env)
        return self._json("POST", _ws(name, "exec"), body=body, timeout=timeout)

    # -- ports -----------------------------------------------------------------------

    def ports(self, name: str) -> list[dict]:
        """The workspace's listening TCP ports: ``[{port, addresses, pid, command}]``."""
        return self._json("GET", _ws(name, "ports")).get("ports", [])

    def proxy_url(self, name: str, port: int) -> str:
        """Where a browser opens the workspace's ``port`` through the server."""
        return f"{self.url}/perry/proxy/{quote(name, safe='')}/{int(port)}/"

    def port_socket_path(self, name: str, port: int) -> str:
        """The WebSocket carrying one TCP connection to ``port`` (for websocket_url)."""
        return f"perry/api/{_ws(name, f'ports/{int(port)}/connect')}"

    # -- terminals and WebSockets ----------------------------------------------------

    def create_terminal(self, name: str) -> dict:
        """A new terminal in the workspace, ``{"name", "workspace", ...}``."""
        return self._json("POST", _ws(name, "terminals"))

    def resume_session(self, name: str, session_id: str, agent: str | None = None) -> dict:
        """A new terminal running the session's agent CLI on it; ``resumes`` says what it runs."""
        body = {"session": session_id, **({"agent": agent} if agent else {})}
        return self._json("POST", _ws(name, "terminals"), body=body)

    def delete_terminal(self, name: str, terminal: str, timeout: float | None = None) -> None:
        self._request("DELETE", _ws(name, f"terminals/{quote(terminal, safe='')}"), timeout=timeout)

    def websocket_url(self, path: str, **query: str | None) -> str:
        """``ws(s)://`` URL of ``path`` under the server's base URL; None values are left out."""
        parts = urlsplit(self.url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        wanted = {k: v for k, v in query.items() if v is not None}
        return urlunsplit((scheme, parts.netloc, f"{parts.path.rstrip('/')}/{path.lstrip('/')}",
                           urlencode(wanted), ""))

    def websocket_headers(self) -> list[str]:
        """The handshake's headers (websocket-client's list form): the same token as REST."""
        return [f"Authorization: token {self._auth._token}"] if self._auth._token else []

    # -- agent sessions --------------------------------------------------------------

    def list_sessions(self, name: str, agent: str | None = None) -> list[dict]:
        params = {"agent": agent} if agent else None
        return self._json("GET", _ws(name, "sessions"), params=params).get("sessions", [])

    def get_session(self, name: str, session_id: str) -> dict:
        return self._json("GET", _ws(name, f"sessions/{quote(session_id, safe='')}"))

    def session_messages(self, name: str, session_id: str, limit: int = 50, offset: int = 0) -> dict:
        return self._json("GET", _ws(name, f"sessions/{quote(session_id, safe='')}/messages"),
                          params={"limit": int(limit), "offset": int(offset)})

    def send_message(self, name: str, session_id: str, text: str) -> dict:
        """Continue a conversation; blocks until the agent's reply (or the server's time limit)."""
        return self._json("POST", _ws(name, f"sessions/{quote(session_id, safe='')}/messages"),
                          body={"text": text}, timeout=LONG_TIMEOUT)

    # -- tasks -----------------------------------------------------------------------

    def dispatch(self, name: str, prompt: str, agent: str = agent_registry.DEFAULT, session_id: str | None = None,
                 model: str | None = None, callback: Mapping[str, str] | None = None) -> dict:
        body: dict[str, Any] = {"agent": agent, "prompt": prompt}
        if session_id:
            body["sessionId"] = session_id
        if model:
            body["model"] = model
        if callback:
            body["callback"] = dict(callback)
        return self._json("POST", _ws(name, "tasks"), body=body, timeout=LONG_TIMEOUT)

    def list_tasks(self, name: str) -> list[dict]:
        return self._json("GET", _ws(name, "tasks")).get("tasks", [])

    def get_task(self, name: str, task_id: str) -> dict:
        return self._json("GET", _ws(name, f"tasks/{quote(task_id, safe='')}"))

    def cancel_task(self, name: str, task_id: str) -> dict:
        return self._json("DELETE", _ws(name, f"tasks/{quote(task_id, safe='')}"), timeout=LONG_TIMEOUT)

    def search_sessions(self, text: str, workspace: str | None = None, agent: str | None = None,
                        limit: int = 50) -> dict:
        params = {"q": text, "limit": int(limit), **({"workspace": workspace} if workspace else {}),
                  **({"agent": agent} if agent else {})}
        return self._json("GET", "sessions/search", params=params, timeout=LONG_TIMEOUT)

    def usage(self, name: str | None = None) -> dict:
        return self._json("GET", _ws(name, "usage") if name else "usage")

    # -- changes ---------------------------------------------------------------------

    def changes(self, name: str, dir: str | None = None, commits: int | None = None) -> dict:
        """The project's git state: branch, ahead/behind, HEAD, changed files with line counts, last commits."""
        params = {k: v for k, v in (("dir", dir), ("commits", commits)) if v is not None}
        return self._json("GET", _ws(name, "changes"), params=params or None)

    def diff(self, name: str, file: str | None = None, base: str | None = None, dir: str | None = None,
             max_bytes: int | None = None) -> dict:
        """The unified diff against ``base`` (default HEAD); ``truncated`` says when it was cut."""
        params = {k: v for k, v in (("file", file), ("base", base), ("dir", dir), ("maxBytes", max_bytes))
                  if v is not None}
        return self._json("GET", _ws(name, "changes/diff"), params=params or None)

    # -- image -----------------------------------------------------------------------

    def image(self) -> dict:
        return self._json("GET", "image")

    def build_image(self, bootstrap: bool | None = None, no_cache: bool = False,
                    agents: Sequence[str] | None = None, engine: str | None = None,
                    copy_from: str | None = None, dockerfile: str | None = None,
                    tag: str | None = None) -> Iterator[dict]:
        """Build the workspace image, yielding the progress events as they arrive.

        The final ``{"stage": "done", "image": {...}}`` event is yielded too; an
        ``{"stage": "error"}`` event raises PerryClientError instead.
        """
        body: dict[str, Any] = {"bootstrap": bootstrap, "noCache": bool(no_cache)}
        if dockerfile is not None or tag is not None:
            # Your own image FROM Perry's: the Dockerfile is a path on the server's machine.
            body = {"dockerfile": dockerfile, "tag": tag}
        if agents is not None:
            body["agents"] = list(agents)
        if engine is not None:
            body["engine"] = engine
        if copy_from is not None:
            body["copyFrom"] = copy_from
        return self._progress("image/build", body, "the build", "build_failed")

    def move_workspace(self, name: str, engine: str) -> Iterator[dict]:
        """Move a workspace to another engine, yielding the progress events (as `build_image`);
        the final event's ``workspace`` is the workspace where it went."""
        return self._progress(_ws(name, "move"), {"engine": engine}, "the move", "move_failed")

    def clone_workspace(self, name: str, new: str) -> Iterator[dict]:
        """Make workspace ``new``, a copy of ``name``'s home and Docker volumes, yielding the progress
        events (as `build_image`); the final event's ``workspace`` is the new one."""
        return self._progress(_ws(name, "clone"), {"name": new}, "the clone", "clone_failed")

    def _progress(self, path: str, body: dict, what: str, failed: str) -> Iterator[dict]:
        """The events of a long operation streamed as JSON lines, the last ``{"stage": "done"}`` one
        included; an ``{"stage": "error"}`` one raises PerryClientError. (A refusal before the work
        starts is an ordinary error answer, raised by the request itself.)"""
        response = self._request("POST", path, body=body, timeout=BUILD_TIMEOUT, stream=True)
        finished = False
        try:
            for line in response.iter_lines():
                if not line or not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    raise PerryClientError(response.status_code, "bad_response",
                                           f"{self.url} sent a progress event that is not JSON: {line[:200]!r}") from None
                if not isinstance(event, dict):
                    continue
                if event.get("stage") == "error":
                    error = event.get("error") if isinstance(event.get("error"), dict) else {}
                    code = str(error.get("code") or failed)
                    raise PerryClientError(_CODE_STATUS.get(code, 500), code,
                                           str(error.get("message") or event.get("message") or f"{what} failed"))
                yield event
                if event.get("stage") == "done":
                    finished = True
                    break
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            raise ServerUnreachable(None, "unreachable",
                                    f"lost the connection to the Perry server at {self.url} during {what} "
                                    f"({_reason(e)}); it may still be running there") from None
        except requests.Timeout:
            raise ServerUnreachable(None, "timeout",
                                    f"the Perry server at {self.url} sent nothing for {BUILD_TIMEOUT:.0f} s "
                                    f"during {what}") from None
        finally:
            response.close()
        if not finished:
            raise PerryClientError(None, "incomplete", f"the progress of {what} ended without a result")

    # -- plumbing --------------------------------------------------------------------

    def _events(self, path: str, params: Mapping) -> Iterator[tuple[str, str]]:
        """(event, data) of a server-sent event stream until its ``end`` event; an ``error``
        event raises. The server sends a comment at least every 15 s, so silence is a fault."""
        response = self._request("GET", path, params=params, timeout=60, stream=True)
        kind, data = "message", []
        try:
            for line in response.iter_lines(decode_unicode=False):
                text = line.decode("utf-8", "replace")
                if text.startswith(":"):
                    continue
                if text:
                    field, _, value = text.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        kind = value
                    elif field == "data":
                        data.append(value)
                    continue
                if kind == "error":
                    error = json.loads("\n".join(data)).get("error", {})
                    code = str(error.get("code") or "error")
                    raise PerryClientError(_CODE_STATUS.get(code, 500), code, str(error.get("message")))
                if kind == "end":
                    return
                yield kind, "\n".join(data)
                kind, data = "message", []
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            raise ServerUnreachable(None, "unreachable", f"lost the connection to the Perry server at "
                                                         f"{self.url} ({_reason(e)})") from None
        finally:
            response.close()

    def _endpoint(self, path: str) -> str:
        return f"{self.url}/perry/api/{path}"

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise PerryClientError(response.status_code, "bad_response",
                                   f"{self._endpoint(path)} did not answer with JSON; "
                                   "is this a Perry server (and is the extension enabled)?") from None

    def _request(self, method: str, path: str, *, body: Any = None, params: Mapping | None = None,
                 timeout: float | None = None, stream: bool = False) -> requests.Response:
        url = self._endpoint(path)
        read_timeout = timeout if timeout is not None else self.timeout
        try:
            response = self._session.request(
                method, url, json=body, params=params, auth=self._auth, stream=stream,
                timeout=(min(CONNECT_TIMEOUT, read_timeout), read_timeout), allow_redirects=False)
        except requests.exceptions.ConnectTimeout:
            raise ServerUnreachable(None, "unreachable",
                                    f"no Perry server answered at {self.url} (connection timed out); "
                                    + UNREACHABLE_FIX) from None
        except requests.exceptions.ReadTimeout:
            raise ServerUnreachable(None, "timeout",
                                    f"the Perry server at {self.url} did not answer within {read_timeout:.0f} s "
                                    "(it may still be working on the request)") from None
        except requests.exceptions.InvalidURL as e:
            raise PerryClientError(None, "invalid_url", f"bad server URL {self.url!r}: {e}") from None
        except requests.ConnectionError as e:
            raise ServerUnreachable(None, "unreachable",
                                    f"no Perry server answered at {self.url} ({_reason(e)}); "
                                    + UNREACHABLE_FIX) from None
        if response.status_code >= 300:
            try:
                raise self._error_from(response, url)
            finally:
                response.close()
        return response

    def _error_from(self, response: requests.Response, url: str) -> PerryClientError:
        status = response.status_code
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            pass
        error = body.get("error") if isinstance(body, dict) else None
        code = str(error.get("code") or "error") if isinstance(error, dict) else None
        # Jupyter's own refusal (bad or missing token) comes in many shapes, Perry's
        # handlers wrap it as {"code": "forbidden", "message": "Forbidden"}: say what to do.
        if status in (401, 403) and code in (None, "forbidden", "unauthorized", "error"):
            return PerryClientError(status, "forbidden", TOKEN_FIX)
        if isinstance(error, dict) and error.get("message"):
            return PerryClientError(status, code or "error", str(error["message"]))
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            if "login" in location:
                return PerryClientError(status, "forbidden", TOKEN_FIX)
            return PerryClientError(status, "redirect", f"{url} redirected to {location or '?'}; "
                                                        "check the server URL (scheme and base path)")
        if status == 404:
            return PerryClientError(status, "no_api",
                                    f"{url} was not found (HTTP 404): is the Perry extension enabled on "
                                    "that server, and is the base path in the URL right?")
        detail = body.get("message") if isinstance(body, dict) else None
        if not detail:
            detail = (response.text or "").strip().splitlines()[0][:200] if response.text else ""
        return PerryClientError(status, "http_error", f"HTTP {status} from {url}" + (f": {detail}" if detail else ""))


def _ws(name: str, action: str | None = None) -> str:
    path = f"workspaces/{quote(str(name), safe='')}"
    return f"{path}/{action}" if action else path


def _reason(error: Exception) -> str:
    """A short reason for a connection error, without urllib3's nested noise."""
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "nodename nor servname",
                   "Temporary failure in name resolution", "No route to host", "Network is unreachable",
                   "Connection reset", "Connection aborted", "timed out"):
        if marker in text:
            return marker.lower()
    return type(error).__name__
