"""The OpenAPI 3 description of the REST API this server serves.

Names, agents and run-time settings come from the constants the code validates
with, so the document cannot drift from them; tests/integration/test_fuzz.py
fuzzes the served document against a real server.
"""

from __future__ import annotations

from typing import Any

from perry_worker import agents as agent_registry

from ._version import __version__
from .core.changes import MAX_DIFF_BYTES
from .core.names import NAME_PATTERN
from .core.sessions import SESSION_ID
from .core.settings import PATCHABLE
from .core.tasks import MODEL, TASK_ID
from .core.updates import MAX_IDLE_TIMEOUT
from .core.config import DIND_MODES
from .core.engines import ENGINE_NAME
from .core.workspaces import ENV_KEY


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _anchored(pattern: str) -> str:
    return "^" + pattern.removeprefix("^").removesuffix("$") + "$"


# The error answers, by status; each operation lists the ones it can give.
ERROR_RESPONSES = {
    "400": ("Invalid", "Invalid input: a malformed name or id, a body that is not a JSON object, "
                       "a field of the wrong type or value"),
    "403": ("Forbidden", "Missing or wrong credentials (or, with cookie auth, a missing XSRF token)"),
    "404": ("NotFound", "No such workspace, session, task or terminal"),
    "409": ("Conflict", "Conflicts with the current state: the workspace exists already, is not running, "
                        "or another lifecycle action on it (create, start, stop, sync, delete, move, clone) is still "
                        "running (code `busy`; try again when it ends)"),
    "413": ("TooLarge", "The request body is larger than the server accepts"),
    "422": ("CloneFailed", "The repository to clone could not be cloned (code `clone_failed`)"),
    "502": ("EngineError", "The Docker engine, or perry-worker inside the workspace, answered with an error"),
    "503": ("EngineUnavailable", "The Docker engine is not reachable, or the state file is locked by another "
                                 "Perry process"),
    "504": ("Timeout", "The workspace did not become ready, or its clone did not finish, in time"),
}


# A conversation whose agent fails: not the engine's fault, so a response of its own.
AGENT_FAILED = ("AgentFailed", "The agent failed (code `agent_failed`): the model was unreachable, refused the "
                "credentials, the CLI exited non-zero or gave no reply. The message is the agent's own reason "
                "in one readable line, sent as soon as the agent said so (or gave up retrying the model)")


def _errors(*statuses: str) -> dict:
    return {s: {"$ref": f"#/components/responses/{ERROR_RESPONSES[s][0]}"} for s in ("403", *statuses)}


# What routes that read a workspace through Docker can answer besides their success.
WS_READ = ("400", "404", "502", "503")
# ... and routes that need it running, or change it.
WS_STATE = (*WS_READ, "409")
# ... and routes that take a body.
BODY = ("400", "413")

# A workspace's limits as create and PATCH take them (core/limits.py); null lifts one.
LIMIT_FIELDS = {
    "cpus": {"type": "number", "minimum": 0.01, "maximum": 1024, "nullable": True,
             "description": "CPUs it may use (2, 0.5; default PerryApp.default_cpus)"},
    "memory": {"oneOf": [{"type": "integer", "minimum": 6 << 20},
                         {"type": "string", "pattern": r"^\d+(\.\d+)?\s*[bkmgtBKMGT]?([iI]?[bB])?$"}],
               "nullable": True, "description": "Memory it may use: bytes, or a size such as 512m or 4g "
                                                "(at least 6m; default PerryApp.default_memory)"},
    "pids": {"type": "integer", "minimum": 16, "nullable": True,
             "description": "Processes it may run (default PerryApp.default_pids)"},
}

NAME_PARAM = {"name": "name", "in": "path", "required": True, "description": "The workspace's name",
              "schema": {"type": "string", "pattern": _anchored(NAME_PATTERN.pattern)}}
SESSION_PARAM = {"name": "sessionId", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": _anchored(SESSION_ID.pattern)}}
TASK_PARAM = {"name": "taskId", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": _anchored(TASK_ID.pattern)}}
DIR_PARAM = {"name": "dir", "in": "query", "description": "a directory under the workspace's home "
                                                        "(relative to it or absolute; default: its project)",
             "schema": {"type": "string", "pattern": "\\S"}}
PORT_PARAM = {"name": "port", "in": "path", "required": True, "description": "A TCP port inside the workspace",
              "schema": {"type": "integer", "minimum": 1, "maximum": 65535}}
ENGINE_NAME_SCHEMA = {"type": "string", "pattern": _anchored(ENGINE_NAME.pattern)}
ENGINE_PARAM = {"name": "name", "in": "path", "required": True, "description": "The engine's name",
                "schema": ENGINE_NAME_SCHEMA}
TERM_PARAM = {"name": "term", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^\\w+$"}}

TAIL_PARAM = {"name": "tail", "in": "query", "description": "lines from the end (default 200)",
              "schema": {"type": "integer", "minimum": 1, "maximum": 100_000}}
SINCE_PARAM = {"name": "since", "in": "query", "description": "only lines from this time on: seconds since the "
                                                            "epoch, or ISO 8601 with a zone (2026-11-30T03:00:00Z)",
               "schema": {"type": "string"}}
FOLLOW_PARAM = {"name": "follow", "in": "query", "schema": {"type": "string", "enum": ["true", "false", "1", "0"]}}
# A followed stream, one schema per event: `message` events carry a line of output; then `end`
# (JSON: why it ended) or `error` (an error body).
EVENT_STREAM = {"text/event-stream": {"schema": {"type": "object", "required": ["data"], "properties": {
    "event": {"type": "string", "enum": ["message", "end", "error"]}, "data": {"type": "string"}}}}}

AGENT = {"type": "string", "enum": list(agent_registry.NAMES)}
IMAGE_AGENTS = {"type": "array", "items": {"type": "string", "enum": list(agent_registry.NAMES)}, "uniqueItems": True}
ENV = {"type": "object", "description": f"variable names match {ENV_KEY.pattern}",
       "additionalProperties": {"type": "string"}}
NON_BLANK = {"type": "string", "pattern": "\\S"}  # at least one character that is not white space
IDLE_TIMEOUT = {"type": "integer", "minimum": 0, "maximum": MAX_IDLE_TIMEOUT, "nullable": True,
                "description": "Seconds without use (no task, agent at work, terminal or SSH activity, exec or "
                               "proxied request) before the workspace stops with stopReason `idle`; 0 never; "
                               "null the server's PerryApp.idle_timeout"}

# The value of each run-time setting (core/settings.py PATCHABLE, which validates them).
SETTING_SCHEMAS = {
    "sshPublicKeys": {"type": "array", "items": {"type": "string", "minLength": 1},
                      "description": "public key files, paths or glob patterns on the server's machine"},
    "gitConfig": {"type": "string", "minLength": 1, "nullable": True,
                  "description": "git config file copied into workspaces; null for none"},
    "env": ENV,
    "dindMode": {"type": "string", "enum": list(DIND_MODES)},
    "readyTimeout": {"type": "number", "minimum": 1, "maximum": 3600, "description": "seconds"},
    "terminalShell": {"type": "string", "pattern": "^[\\w./+-]+$"},
    "imageAgents": IMAGE_AGENTS,
}


def _settings() -> dict[str, dict]:
    missing = sorted(set(PATCHABLE) - set(SETTING_SCHEMAS))
    if missing:  # a new run-time setting must be described before it is served
        raise RuntimeError(f"openapi.SETTING_SCHEMAS lacks {', '.join(missing)}")
    return {key: SETTING_SCHEMAS[key] for key in PATCHABLE}


def _ws_action(summary: str, response: dict, *errors: str) -> dict:
    return {"post": {"summary": summary, "parameters": [NAME_PARAM],
                     "responses": {"200": response, **_errors(*WS_STATE, *errors)}}}


def _ws_stream(summary: str, body: dict) -> dict:
    """A long action on a workspace whose progress streams as JSON lines."""
    return {"post": {"summary": summary, "parameters": [NAME_PARAM],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                     "responses": {"200": {"description": "progress events, the last with stage done or error",
                                           "content": {"application/x-ndjson": {"schema": {"type": "object"}}}},
                                   **_errors(*WS_STATE, *BODY)}}}


def _websocket(summary: str, parameters: list, *errors: str) -> dict:
    return {"get": {"summary": summary, "parameters": parameters, "x-websocket": True,
                    "responses": {"101": {"description": "Switching Protocols: the WebSocket is open"},
                                  **_errors(*errors),
                                  "400": {"description": "Not a WebSocket upgrade request, or an invalid name"}}}}


def _page(summary: str, content_type: str, *statuses: str) -> dict:
    """A file of the phone page: without a login, a redirect to Jupyter's login page and back."""
    answer = {"description": content_type, "content": {content_type: {"schema": {"type": "string"}}}}
    return {"get": {"summary": summary, "x-page": True,
                    "responses": {"200": answer, "302": {"description": "Not signed in: to Jupyter's login page, "
                                                                        "coming back here after it"},
                                  **_errors(*statuses)}}}


def _proxy(summary: str) -> dict:
    """A reverse-proxy route: any method, any body, the workspace server's own answers."""
    answer = {"description": "The answer of the server listening on the port, as it is (any status, "
                             "any content type, streamed); a WebSocket upgrade is relayed too"}
    operation = {"summary": summary, "x-proxy": True,
                 "parameters": [NAME_PARAM, PORT_PARAM, {"name": "path", "in": "path", "required": True,
                                                         "schema": {"type": "string"},
                                                         "description": "The rest of the path, slashes included"}],
                 "responses": {"default": answer, **_errors("400", "404", "409", "503"),
                               "502": _json(_ref("PortClosed"), "Nothing listens on the port (code "
                                                                "`port_closed`, `openPorts` lists what does), "
                                                                "or the engine refused")}}
    return {m: operation for m in ("get", "head", "post", "put", "delete", "patch", "options")}


def openapi_document(base_url: str = "/") -> dict[str, Any]:
    ws = _json(_ref("Workspace"))
    settings = _settings()
    paths = {
        "/perry/api/info": {"get": {"summary": "Server, engine and image facts with health checks",
                                    "responses": {"200": _json(_ref("Info")), **_errors()}}},
        "/perry/api/config": {
            "get": {"summary": "Effective configuration (no secrets)",
                    "responses": {"200": _json(_ref("Config")), **_errors()}},
            "patch": {"summary": f"Change run-time settings ({', '.join(settings)}); saved in the state directory",
                      "requestBody": {"required": True, "content": {"application/json": {"schema": {
                          "type": "object", "minProperties": 1, "additionalProperties": False,
                          "properties": settings}}}},
                      "responses": {"200": _json(_ref("Config")), **_errors(*BODY)}},
        },
        "/perry/api/openapi.json": {"get": {"summary": "This document",
                                            "responses": {"200": _json({"type": "object"}), **_errors()}}},
        "/perry/api/events": _websocket(
            "WebSocket of JSON change events (workspace.*, task.*, session.*, changes.updated), of one workspace with ?workspace",
            [{**NAME_PARAM, "name": "workspace", "in": "query", "required": False}]),
        "/perry/api/image": {"get": {"summary": "Workspace image status",
                                     "responses": {"200": _json(_ref("Image")), **_errors("502", "503")}}},
        "/perry/api/image/build": {"post": {
            "summary": "Build the workspace image, or with dockerfile and tag an image of your own FROM it; "
                       "progress streams as newline-delimited JSON (an image not built FROM the workspace image "
                       "ends with error code not_a_workspace_image)",
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "properties": {"bootstrap": {"type": "boolean", "nullable": True},
                                                 "noCache": {"type": "boolean"},
                                                 "agents": IMAGE_AGENTS,
                                                 "engine": ENGINE_NAME_SCHEMA,
                                                 "copyFrom": {**ENGINE_NAME_SCHEMA, "description": (
                                                     "copy the image from this engine (save into load) "
                                                     "instead of building it")},
                                                 "dockerfile": {"type": "string", "description": (
                                                     "absolute path of a Dockerfile on the server's machine (its "
                                                     "folder is the context) that starts FROM the workspace "
                                                     "image; with tag")},
                                                 "tag": {"type": "string", "description": (
                                                     "the name of the image dockerfile builds, for a create's "
                                                     "image")}}}}}},
            "responses": {"200": {"description": "progress events, the last with stage done or error",
                                  "content": {"application/x-ndjson": {"schema": {"type": "object"}}}},
                          **_errors(*BODY)}}},
        "/perry/api/engines": {
            "get": {"summary": "The Docker engines, their health and their workspaces' counts",
                    "responses": {"200": _json({"type": "object", "required": ["engines"], "properties": {
                        "engines": {"type": "array", "items": _ref("Engine")}}}), **_errors()}},
            "post": {"summary": "Add an engine (kept in the state directory)",
                     "requestBody": {"required": True,
                                     "content": {"application/json": {"schema": _ref("AddEngine")}}},
                     "responses": {"201": _json(_ref("Engine"), "Added"), **_errors(*BODY, "409")}},
        },
        "/perry/api/engines/{name}": {
            "delete": {"summary": "Forget an engine added at run time; refused while it holds workspaces",
                       "parameters": [ENGINE_PARAM],
                       "responses": {"204": {"description": "Removed"}, **_errors("400", "404", "409")}},
        },
        "/perry/api/workspaces": {
            "get": {"summary": "List workspaces",
                    "responses": {"200": _json({"type": "object", "required": ["workspaces"], "properties": {
                        "workspaces": {"type": "array", "items": _ref("Workspace")}}}),
                        "304": {"description": "Not modified: If-None-Match named the list's ETag"},
                        **_errors("502", "503")}},
            "post": {"summary": "Create a workspace and wait until it is ready",
                     "requestBody": {"required": True,
                                     "content": {"application/json": {"schema": _ref("CreateWorkspace")}}},
                     "responses": {"201": _json(_ref("Workspace"), "Created and ready"),
                                   **_errors(*BODY, "409", "422", "502", "503", "504")}},
        },
        "/perry/api/workspaces/{name}": {
            "get": {"summary": "One workspace", "parameters": [NAME_PARAM],
                    "responses": {"200": ws, **_errors(*WS_READ)}},
            "delete": {"summary": "Delete the container and both volumes", "parameters": [NAME_PARAM],
                       "responses": {"204": {"description": "Deleted"}, **_errors(*WS_STATE)}},
            "patch": {"summary": "Change a workspace's settings: its idle timeout, and its limits, applied live (Docker's container "
                                 "update) and kept for a re-created container; every field is checked first, so "
                                 "a bad one changes nothing (400). 409 when it is busy or Docker refuses the "
                                 "change (memory below what it uses)",
                      "parameters": [NAME_PARAM],
                      "requestBody": {"required": True,
                                      "content": {"application/json": {"schema": _ref("UpdateWorkspace")}}},
                      "responses": {"200": ws, **_errors(*BODY, *WS_STATE)}},
        },
        "/perry/api/workspaces/{name}/start": _ws_action("Start (recreating a missing container)", ws, "504"),
        "/perry/api/workspaces/{name}/stop": _ws_action("Stop", ws),
        "/perry/api/workspaces/{name}/sync": _ws_action("Copy keys, git config and the worker in again", _json(
            {"type": "object", "properties": {"workspace": _ref("Workspace"),
                                              "copied": {"type": "array", "items": {"type": "string"}}}})),
        "/perry/api/workspaces/{name}/move": _ws_stream(
            "Move to another engine: stop, copy the home and Docker volumes there, start it there, then remove "
            "the source (a move cut short leaves the source as it was); progress streams as newline-delimited "
            "JSON, the last line with stage done and the workspace, or stage error",
            {"type": "object", "required": ["engine"], "additionalProperties": False, "properties": {
                "engine": {**ENGINE_NAME_SCHEMA, "description": "the engine to move it to"}}}),
        "/perry/api/workspaces/{name}/clone": _ws_stream(
            "A new workspace with copies of this one's home and Docker volumes and its own SSH port (this one is "
            "paused while its volumes are copied, nothing else of it changes); progress streams as "
            "newline-delimited JSON, the last line with stage done and the new workspace, or stage error",
            {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
                "name": {**NAME_PARAM["schema"], "description": "the new workspace's name"}}}),
        "/perry/api/workspaces/{name}/logs": {"get": {
            "summary": "Container logs; with follow=true, a stream of server-sent events: one `message` event per "
                       "line as the log grows, then `end` when the workspace stops (409 when it is not running)",
            "parameters": [NAME_PARAM, TAIL_PARAM, SINCE_PARAM, FOLLOW_PARAM],
            "responses": {"200": {"description": "The log (JSON), or with follow=true its lines as they come",
                                  "content": {"application/json": {"schema": {
                                      "type": "object", "properties": {"logs": {"type": "string"}}}},
                                              **EVENT_STREAM}},
                          **_errors(*WS_STATE)}}},
        "/perry/api/workspaces/{name}/exec": {"post": {
            "summary": "Run a command in a running workspace", "parameters": [NAME_PARAM],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Exec")}}},
            "responses": {"200": _json(_ref("ExecResult")), **_errors(*WS_STATE, "413")}}},
        "/perry/api/usage": {"get": {"summary": "Token use and cost of every running workspace",
                                     "responses": {"200": _json(_ref("AllUsage")), **_errors("502", "503")}}},
        "/perry/api/sessions/search": {"get": {
            "summary": "The messages of every agent session in the running workspaces (or one) holding a text, "
                       "case-insensitive, newest first; each workspace searches its own stores, in parallel "
                       "(one that fails is named in errors)",
            "parameters": [{"name": "q", "in": "query", "required": True, "description": "the text",
                            "schema": {"type": "string", "pattern": "\\S", "maxLength": 200}},
                           {"name": "workspace", "in": "query", "schema": NAME_PARAM["schema"]},
                           {"name": "agent", "in": "query", "schema": AGENT},
                           {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                      "maximum": 500}}],
            "responses": {"200": _json({"type": "object", "properties": {
                "query": {"type": "string"}, "truncated": {"type": "boolean"},
                "results": {"type": "array", "items": {"type": "object", "properties": {
                    "workspace": {"type": "string"}, "agent": AGENT, "sessionId": {"type": "string"},
                    "messageId": {"type": "string", "nullable": True}, "role": {"type": "string"},
                    "time": {"type": "string", "nullable": True}, "snippet": {"type": "string"}}}},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "workspace": {"type": "string"}, "message": {"type": "string"}}}}}}),
                **_errors(*WS_STATE)}}},
        "/perry/api/workspaces/{name}/usage": {"get": {
            "summary": "Token use and cost per session and in total", "parameters": [NAME_PARAM],
            "responses": {"200": _json(_ref("Usage")), **_errors(*WS_STATE)}}},
        "/perry/api/workspaces/{name}/sessions": {"get": {
            "summary": "Agent sessions in the workspace, newest first",
            "parameters": [NAME_PARAM, {"name": "agent", "in": "query", "schema": AGENT}],
            "responses": {"200": _json({"type": "object", "properties": {
                "sessions": {"type": "array", "items": _ref("Session")}}}), **_errors(*WS_STATE)}}},
        "/perry/api/workspaces/{name}/sessions/{sessionId}": {"get": {
            "summary": "One session", "parameters": [NAME_PARAM, SESSION_PARAM],
            "responses": {"200": _json(_ref("Session")), **_errors(*WS_STATE)}}},
        "/perry/api/workspaces/{name}/sessions/{sessionId}/messages": {
            "get": {
                "summary": "A page of the session's messages, oldest first",
                "parameters": [NAME_PARAM, SESSION_PARAM,
                               {"name": "limit", "in": "query",
                                "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                               {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                "responses": {"200": _json({"type": "object", "properties": {
                    "sessionId": {"type": "string"}, "total": {"type": "integer"}, "offset": {"type": "integer"},
                    "limit": {"type": "integer"}, "messages": {"type": "array", "items": _ref("Message")}}}),
                    **_errors(*WS_STATE)}},
            "post": {
                "summary": "Continue the conversation: send one message, answer with the agent's reply "
                           "(OpenCode through `opencode serve`, or `opencode run --session` when the server "
                           "does not know the session; Claude Code `-p --resume`; Codex `exec resume`)",
                "parameters": [NAME_PARAM, SESSION_PARAM],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["text"], "additionalProperties": False,
                    "properties": {"text": NON_BLANK}}}}},
                "responses": {"200": _json({"type": "object", "properties": {
                    "sessionId": {"type": "string"}, "agent": {"type": "string"}, "via": {"type": "string"},
                    "text": {"type": "string"}, "reply": _ref("Message")}}), **_errors(*WS_STATE, "413"),
                    "502": {"$ref": f"#/components/responses/{AGENT_FAILED[0]}"}}}},
        "/perry/api/workspaces/{name}/tasks": {
            "get": {"summary": "The workspace's dispatched tasks, newest first", "parameters": [NAME_PARAM],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "tasks": {"type": "array", "items": _ref("Task")}}}), **_errors(*WS_READ)}},
            "post": {"summary": "Start an agent on a prompt in the workspace's project directory; returns at once",
                     "parameters": [NAME_PARAM],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Dispatch")}}},
                     "responses": {"201": _json(_ref("Task")), **_errors(*WS_STATE, "413")}},
        },
        "/perry/api/workspaces/{name}/tasks/{taskId}": {
            "get": {"summary": "One task", "parameters": [NAME_PARAM, TASK_PARAM],
                    "responses": {"200": _json(_ref("Task")), **_errors("400", "404")}},
            "delete": {"summary": "Cancel the task (its agent process ends)", "parameters": [NAME_PARAM, TASK_PARAM],
                       "responses": {"200": _json(_ref("Task")), **_errors(*WS_STATE)}},
        },
        "/perry/api/workspaces/{name}/tasks/{taskId}/output": {"get": {
            "summary": "The task's output from a byte offset on, in whole lines; with follow=true, a stream of "
                       "server-sent events: one `message` event per line from the start and as it comes, then "
                       "`end` with the task's status when it ends",
            "parameters": [NAME_PARAM, TASK_PARAM, FOLLOW_PARAM,
                           {"name": "offset", "in": "query", "description": "bytes already read (without follow)",
                            "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": {"description": "The output (JSON), or with follow=true its lines as they come",
                                  "content": {"application/json": {"schema": {"type": "object", "properties": {
                                      "output": {"type": "string"}, "offset": {"type": "integer"},
                                      "status": {"type": "string"}, "ended": {"type": "boolean"}}}},
                                              **EVENT_STREAM}},
                          **_errors(*WS_STATE)}}},
        "/perry/api/workspaces/{name}/changes": {"get": {
            "summary": "The project's git state: branch, upstream, ahead/behind, HEAD, changed files with line "
                       "counts, last commits (no repository, an empty one or a detached HEAD is a state)",
            "parameters": [NAME_PARAM, DIR_PARAM, {"name": "commits", "in": "query",
                                                   "schema": {"type": "integer", "minimum": 0, "maximum": 100}}],
            "responses": {"200": _json(_ref("Changes")), **_errors(*WS_STATE)}}},
        "/perry/api/workspaces/{name}/changes/diff": {"get": {
            "summary": "The unified diff of the work tree against a base (untracked files as additions), cut at "
                       "maxBytes with truncated set; binary files named, not shown",
            "parameters": [NAME_PARAM, DIR_PARAM,
                           {"name": "file", "in": "query", "description": "only this file (relative to dir)",
                            "schema": {"type": "string", "pattern": "\\S"}},
                           {"name": "base", "in": "query", "description": "a commit (default HEAD)",
                            "schema": {"type": "string", "pattern": "^[^-\\s][^\\s]*$", "maxLength": 256}},
                           {"name": "maxBytes", "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DIFF_BYTES}}],
            "responses": {"200": _json(_ref("Diff")), **_errors(*WS_STATE)}}},
        "/perry/api/workspaces/{name}/terminals": {
            "get": {"summary": "The workspace's terminals", "parameters": [NAME_PARAM],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "terminals": {"type": "array", "items": _ref("Terminal")}}}), **_errors(*WS_READ)}},
            "post": {"summary": "Open a terminal in a running workspace (a Jupyter terminal running docker exec); "
                                "with `session`, one running the agent's interactive CLI on that session in its "
                                "directory, then a login shell when the agent exits",
                     "parameters": [NAME_PARAM],
                     "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("Resume")}}},
                     "responses": {"201": _json(_ref("Terminal")), **_errors(*WS_STATE, "413")}},
        },
        "/perry/api/workspaces/{name}/terminals/{term}": {
            "get": {"summary": "One terminal", "parameters": [NAME_PARAM, TERM_PARAM],
                    "responses": {"200": _json(_ref("Terminal")), **_errors("400", "404")}},
            "delete": {"summary": "Close a terminal; its clients are told", "parameters": [NAME_PARAM, TERM_PARAM],
                       "responses": {"204": {"description": "Closed"}, **_errors("400", "404")}},
        },
        "/perry/api/workspaces/{name}/ports": {
            "get": {"summary": "The TCP ports listening in the running workspace and the processes that own them "
                               "(Perry's own sshd left out), and those its devcontainer.json declares (forwardPorts), "
                               "listening yet or not", "parameters": [NAME_PARAM],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "ports": {"type": "array", "items": _ref("Port")}}}), **_errors(*WS_STATE)}}},
        "/perry/api/workspaces/{name}/ports/{port}/connect": _websocket(
            "WebSocket carrying one TCP connection to the port inside the workspace as binary messages (what "
            "`perry forward` opens); an empty message ends the client's input; closes when the port's side ends",
            [NAME_PARAM, PORT_PARAM], "404", "409", "502", "503"),
        "/perry/proxy/{name}/{port}/{path}": _proxy(
            "Reverse proxy into the workspace's port, this prefix stripped (redirects rewritten under it); "
            "Jupyter's auth and XSRF rules apply"),
        "/perry/proxy-absolute/{name}/{port}/{path}": _proxy(
            "Reverse proxy into the workspace's port with the whole path kept, for apps that know their prefix"),
        "/perry/proxy.js": {"get": {
            "summary": "The script the proxy puts first in the <head> of the pages under /perry/proxy/: an app's "
                       "calls to its origin's root go under the proxy's prefix, its unsafe ones with Jupyter's "
                       "X-XSRFToken header", "x-proxy": True,
            "responses": {"200": {"description": "JavaScript", "content": {"text/javascript": {
                "schema": {"type": "string"}}}}, **_errors()}}},
        "/perry/": _page("The phone page: workspaces, sessions, tasks, changes, ports and terminals for a "
                         "touch screen (installable as a web app); /perry redirects here", "text/html", "503"),
        "/perry/manifest.webmanifest": _page("The phone page's web app manifest", "application/manifest+json"),
        "/perry/sw.js": _page("The phone page's service worker: keeps the page's shell for a bad connection, "
                              "never an API answer", "text/javascript"),
        "/perry/phone/{path}": {"get": {**_page("The phone page's bundle and icons", "application/octet-stream",
                                                "404")["get"],
                                        "parameters": [{"name": "path", "in": "path", "required": True,
                                                        "schema": {"type": "string"}}]}},
        "/perry/terminal/{name}": _websocket(
            "WebSocket attaching a terminal with terminado's protocol, plus `[\"exit\", status]` when the shell "
            "ends: a new terminal in the running workspace, or ?terminal=NAME an open one",
            [NAME_PARAM, {"name": "terminal", "in": "query", "schema": {"type": "string"}}],
            "404", "409", "502", "503"),
    }
    error = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}
    tokens = {"type": "object", "properties": {k: {"type": "integer"} for k in (
        "input", "output", "reasoning", "cacheRead", "cacheWrite")}}
    cost = {"type": "number", "nullable": True, "description": "US dollars; null when the agent does not say"}
    image = {"tag": {"type": "string"}, "present": {"type": "boolean"}, "upToDate": {"type": "boolean"},
             "id": {"type": "string", "nullable": True}, "created": {"type": "string", "nullable": True},
             "hash": {"type": "string"}, "base": {"type": "string", "nullable": True},
             "agents": {"type": "array", "items": {"type": "string"}}}
    schemas = {
        "Error": error,
        "Workspace": {"type": "object", "required": ["name", "status"], "properties": {
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["creating", "running", "stopped", "error", "unreachable"]},
            "engine": {"type": "string", "description": "The Docker engine it lives on"},
            "lastStatus": {"type": "string", "nullable": True,
                           "description": "While unreachable: the status it had when last seen"},
            "containerId": {"type": "string", "nullable": True},
            "containerName": {"type": "string"},
            "created": {"type": "string", "format": "date-time", "nullable": True},
            "image": {"type": "string"},
            "ports": {"type": "object", "properties": {"ssh": {"type": "integer", "nullable": True}}},
            "sshHost": {"type": "string"},
            "sshCommand": {"type": "string", "nullable": True,
                           "description": "The ssh command line that logs in (null without an SSH port); "
                                          "on a wildcard bind address it names the host the request reached"},
            "dind": {"type": "string", "nullable": True},
            "dindStatus": {"type": "string", "enum": ["starting", "ready", "off"], "nullable": True,
                           "description": "Its own Docker engine while it runs: ready is not needed to use "
                                          "`docker` inside (it waits for the engine); null when stopped or "
                                          "not started by this server"},
            "clone": {"type": "string", "nullable": True},
            "projectDir": {"type": "string"},
            "agents": {"type": "array", "items": {"type": "string", "enum": list(agent_registry.NAMES)},
                       "nullable": True, "description": "Agents' CLIs in its image; null when unknown"},
            "error": {"type": "string", "nullable": True},
            "idleTimeout": {"type": "integer", "minimum": 0,
                            "description": "Seconds without use before it stops (its own, else the server's); "
                                           "0 never"},
            "stopReason": {"type": "string", "enum": ["idle", "user"], "nullable": True,
                           "description": "While stopped: `idle` (the idle check stopped it; a terminal, exec, "
                                          "task, conversation or proxied request starts it again when "
                                          "PerryApp.auto_start is on), `user` (stopped through the API; it "
                                          "stays stopped), null (stopped outside Perry)"},
            "volumes": {"type": "object", "properties": {"home": {"type": "string"}, "docker": {"type": "string"}}},
            "displayName": {"type": "string", "nullable": True, "description": "The devcontainer.json's name"},
            "devcontainer": {"type": "string", "nullable": True,
                             "description": "The project's devcontainer.json applied at create (path in the project)"},
            "warnings": {"type": "array", "items": {"type": "string"},
                         "description": "What of the devcontainer.json Perry did not apply"},
            "declaredPorts": {"type": "array", "items": {"type": "integer"},
                              "description": "The devcontainer.json's forwardPorts"},
            "limits": {"type": "object", "description": "What it may use; null: no limit",
                       "properties": {"cpus": {"type": "number", "nullable": True},
                                      "memory": {"type": "integer", "nullable": True, "description": "bytes"},
                                      "pids": {"type": "integer", "nullable": True}}},
            "use": {"type": "object", "nullable": True,
                    "description": "Live use from the server's last sample (taken every 2 s while asked for); "
                                   "null unless it runs (and until the first sample of a list)",
                    "properties": {"cpuPercent": {"type": "number", "nullable": True,
                                                  "description": "100 is one CPU busy; null until a second sample"},
                                   "memoryUsed": {"type": "integer"}, "memoryLimit": {"type": "integer"},
                                   "cpus": {"type": "integer", "nullable": True,
                                            "description": "the machine's CPUs"},
                                   "pids": {"type": "integer", "nullable": True},
                                   "at": {"type": "string", "format": "date-time"}}},
        }},
        "UpdateWorkspace": {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
            "idleTimeout": IDLE_TIMEOUT, **LIMIT_FIELDS}},
        "CreateWorkspace": {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
            "name": NAME_PARAM["schema"],
            "clone": {"type": "string", "description": "git URL or absolute path on the server's machine"},
            "env": ENV,
            "engine": {**ENGINE_NAME_SCHEMA, "description": "The engine to create it on (default: the "
                                                            "placement rule's choice)"},
            "image": {"type": "string", "description": "An image built FROM the workspace image (POST "
                                                       "/perry/api/image/build with dockerfile and tag); 409 when "
                                                       "the engine lacks it, 422 when it is not built FROM it"},
            "idleTimeout": IDLE_TIMEOUT,
            **LIMIT_FIELDS}},
        "Engine": {"type": "object", "required": ["name", "address"], "properties": {
            "name": {"type": "string"},
            "address": {"type": "string", "description": "Without credentials"},
            "sshHost": {"type": "string", "nullable": True},
            "configured": {"type": "boolean", "description": "From PerryApp.engines (not removable at run time)"},
            "reachable": {"type": "boolean"},
            "version": {"type": "string", "nullable": True},
            "cpus": {"type": "integer", "nullable": True},
            "memory": {"type": "integer", "nullable": True, "description": "bytes"},
            "rttMs": {"type": "number", "nullable": True, "description": "round trip of one engine call"},
            "error": {"type": "string", "nullable": True},
            "workspaces": {"type": "object", "properties": {"running": {"type": "integer"},
                                                            "total": {"type": "integer"}}},
        }},
        "AddEngine": {"type": "object", "required": ["name", "address"], "additionalProperties": False,
                      "properties": {
                          "name": ENGINE_NAME_SCHEMA,
                          "address": {"type": "string", "description": "unix:///path, ssh://user@host[:port], "
                                                                      "tcp://host:port or context:NAME"},
                          **{k: {"type": "string"} for k in ("sshHost", "sshKey", "tlsCa", "tlsCert", "tlsKey",
                                                             "bindAddress")}}},
        "Exec": {"type": "object", "required": ["command"], "additionalProperties": False, "properties": {
            "command": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "user": {"type": "string"}, "workdir": {"type": "string"}, "env": ENV}},
        "ExecResult": {"type": "object", "properties": {
            "exitCode": {"type": "integer"}, "stdout": {"type": "string"}, "stderr": {"type": "string"}}},
        "Image": {"type": "object", "required": ["tag", "present"], "properties": image},
        "Info": {"type": "object", "properties": {
            "version": {"type": "string"}, "engine": {"type": "object"},
            "image": {"type": "object", "description": "present is null when the engine is unreachable",
                      "properties": {**image, "present": {"type": "boolean", "nullable": True},
                                     "error": {"type": "string"}}},
            "workspaces": {"type": "integer", "nullable": True}, "stateDir": {"type": "string"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "checks": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "ok": {"type": "boolean"}, "message": {"type": "string"},
                "fix": {"type": "string"}}}}}},
        "Config": {"type": "object", "properties": {
            "stateDir": {"type": "string"}, "dockerHost": {"type": "string", "nullable": True},
            "workspacePrefix": {"type": "string"}, "imageTag": {"type": "string"}, "network": {"type": "string"},
            "sshPortRange": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
            "bindAddress": {"type": "string"}, "restartPolicy": {"type": "string"},
            **settings,
            "sshPublicKeys": {"type": "array", "items": {"type": "string"},
                              "description": "the key files the patterns match now"},
            "env": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
                    "description": "the names only (values may be secrets); a text when set by a callable"}}},
        "Tokens": tokens,
        "Session": {"type": "object", "properties": {
            "sessionId": {"type": "string"}, "agent": AGENT,
            "title": {"type": "string"}, "directory": {"type": "string", "nullable": True},
            "messageCount": {"type": "integer"},
            "lastActivity": {"type": "string", "format": "date-time", "nullable": True},
            "tokens": _ref("Tokens"), "cost": cost}},
        "Message": {"type": "object", "properties": {
            "id": {"type": "string"}, "role": {"type": "string"}, "time": {"type": "string", "nullable": True},
            "parts": {"type": "array", "items": {"type": "object", "properties": {
                "type": {"type": "string", "enum": ["text", "tool", "reasoning", "file", "error"]}}}}}},
        "Usage": {"type": "object", "properties": {
            "sessions": {"type": "array", "items": {"type": "object", "properties": {
                "sessionId": {"type": "string"}, "agent": AGENT, "tokens": _ref("Tokens"), "cost": cost}}},
            "total": {"type": "object", "properties": {"tokens": _ref("Tokens"), "cost": cost}}}},
        "AllUsage": {"type": "object", "properties": {
            "workspaces": {"type": "object", "description": "by workspace name: its total, or the error reading it",
                           "additionalProperties": {"type": "object", "properties": {
                               "tokens": _ref("Tokens"), "cost": cost, "error": {"type": "string"}}}},
            "total": {"type": "object", "properties": {"tokens": _ref("Tokens"), "cost": cost}}}},
        "Dispatch": {"type": "object", "required": ["prompt"], "additionalProperties": False, "properties": {
            "agent": {**AGENT, "default": agent_registry.DEFAULT},
            "prompt": NON_BLANK, "sessionId": SESSION_PARAM["schema"],
            "model": {"type": "string", "pattern": _anchored(MODEL.pattern), "description": "provider/model"},
            "callback": {"type": "object", "required": ["url"], "additionalProperties": False, "properties": {
                "url": {"type": "string", "pattern": "^https?://[^\\s/]+(/\\S*)?$"},
                "token": {"type": "string", "description": "sent as Authorization: Bearer; never shown"}}}}},
        "Task": {"type": "object", "properties": {
            "id": {"type": "string"}, "workspace": {"type": "string"}, "agent": AGENT,
            "prompt": {"type": "string"}, "model": {"type": "string", "nullable": True},
            "sessionId": {"type": "string", "nullable": True}, "directory": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "created": {"type": "string"}, "started": {"type": "string", "nullable": True},
            "ended": {"type": "string", "nullable": True}, "exitCode": {"type": "integer", "nullable": True},
            "summary": {"type": "string", "nullable": True,
                        "description": "The agent's last words (its answer), one line; null when it said nothing"},
            "outputTail": {"type": "array", "items": {"type": "string"}},
            "error": {"type": "string", "nullable": True,
                      "description": "Why a failed task failed: the agent's own reason in one readable line (the "
                                     "same `agent_failed` reasons a conversation answers with 502); the callback's "
                                     "text is `Failed: <error>`"},
            "engineDown": {"type": "object", "nullable": True, "description": (
                "Set while the task's engine is unreachable: the task is followed again (and called back) once it "
                "is back, or marked failed after PerryApp.engine_down_task_timeout"), "properties": {
                "engine": {"type": "string"}, "since": {"type": "string"}}},
            "callback": {"type": "object", "nullable": True, "properties": {
                "url": {"type": "string"}, "delivered": {"type": "boolean"}, "attempts": {"type": "integer"},
                "lastError": {"type": "string", "nullable": True},
                "deliveredAt": {"type": "string", "nullable": True}}}}},
        "ChangedFile": {"type": "object", "properties": {
            "path": {"type": "string"}, "oldPath": {"type": "string", "description": "a renamed file's old path"},
            "status": {"type": "string", "enum": ["modified", "added", "deleted", "renamed", "copied", "untracked",
                                                  "conflicted"]},
            "staged": {"type": "boolean"}, "binary": {"type": "boolean"},
            "added": {"type": "integer", "nullable": True, "description": "lines; null for a binary file"},
            "removed": {"type": "integer", "nullable": True}}},
        "Changes": {"type": "object", "properties": {
            "directory": {"type": "string"}, "repository": {"type": "boolean"},
            "root": {"type": "string", "nullable": True},
            "state": {"type": "string", "enum": ["branch", "detached", "empty", "no_repository"]},
            "message": {"type": "string", "nullable": True}, "branch": {"type": "string", "nullable": True},
            "upstream": {"type": "string", "nullable": True}, "ahead": {"type": "integer", "nullable": True},
            "behind": {"type": "integer", "nullable": True},
            "head": {"type": "object", "nullable": True, "properties": {
                "sha": {"type": "string"}, "subject": {"type": "string"}}},
            "files": {"type": "array", "items": _ref("ChangedFile")},
            "totals": {"type": "object", "properties": {k: {"type": "integer"} for k in ("files", "added", "removed")}},
            "commits": {"type": "array", "items": {"type": "object", "properties": {
                k: {"type": "string"} for k in ("sha", "author", "date", "subject")}}}}},
        "Diff": {"type": "object", "properties": {
            "directory": {"type": "string"}, "repository": {"type": "boolean"},
            "root": {"type": "string", "nullable": True}, "file": {"type": "string", "nullable": True},
            "base": {"type": "string"}, "diff": {"type": "string"},
            "bytes": {"type": "integer", "description": "the whole diff's size"},
            "truncated": {"type": "boolean", "description": "the diff was cut at maxBytes"},
            "binary": {"type": "array", "items": {"type": "string"}}, "files": {"type": "integer"},
            "message": {"type": "string", "nullable": True}}},
        "Port": {"type": "object", "properties": {
            "port": {"type": "integer"}, "addresses": {"type": "array", "items": {"type": "string"}},
            "pid": {"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["unknown"]}], "nullable": True},
            "command": {"type": "string", "nullable": True,
                        "description": "the owning process's command line, or `unknown` (null: nothing listens)"},
            "declared": {"type": "boolean", "description": "listed in the project's devcontainer.json forwardPorts"},
            "listening": {"type": "boolean", "description": "false for a declared port nothing listens on yet"}}},
        "PortClosed": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "openPorts": {"type": "array", "items": {"type": "integer"}, "nullable": True}}}}},
        "Terminal": {"type": "object", "properties": {
            "name": {"type": "string"}, "workspace": {"type": "string"},
            "lastActivity": {"type": "string", "nullable": True}, "clients": {"type": "integer"},
            "websocket": {"type": "string", "description": "terminado protocol, relative to the base URL"},
            "jupyterWebsocket": {"type": "string"},
            "resumes": {"type": "object", "nullable": True,
                        "description": "the session this terminal resumes (null for a plain shell)",
                        "properties": {"sessionId": {"type": "string"}, "agent": AGENT,
                                       "directory": {"type": "string"},
                                       "command": {"type": "array", "items": {"type": "string"}}}}}},
        "Resume": {"type": "object", "required": ["session"], "additionalProperties": False, "properties": {
            "session": {**SESSION_PARAM["schema"], "description": "the agent session to resume (404 when the "
                        "workspace has none such; 409 `agent_missing` when its image lacks the agent's CLI)"},
            "agent": {**AGENT, "description": "the session's agent (found from the session when not given)"}}},
    }

    return {
        "openapi": "3.0.3",
        "info": {"title": "Perry for Jupyter", "version": __version__,
                 "description": "Isolated Docker development workspaces. Authenticate with Jupyter's token "
                                "(`Authorization: token <T>`) or its login cookie. Operations marked "
                                "`x-websocket` are WebSocket upgrades: `/perry/api/events[?workspace=NAME]` "
                                "streams JSON change events; `/perry/terminal/{name}[?terminal=NAME]` attaches "
                                "a terminal with terminado's protocol, plus `[\"exit\", status]` when the "
                                "shell ends."},
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization"}},
            "responses": {name: _json(_ref("Error"), description)
                          for name, description in (*ERROR_RESPONSES.values(), AGENT_FAILED)},
        },
    }
