"""The OpenAPI 3 description of the REST API this server serves."""

from __future__ import annotations

from typing import Any

from ._version import __version__


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": {"$ref": "#/components/responses/Invalid"},
    "404": {"$ref": "#/components/responses/NotFound"},
    "409": {"$ref": "#/components/responses/Conflict"},
    "503": {"$ref": "#/components/responses/EngineUnavailable"},
}
NAME_PARAM = {"name": "name", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"}}


SESSION_PARAM = {"name": "sessionId", "in": "path", "required": True, "schema": {"type": "string"}}
TASK_PARAM = {"name": "taskId", "in": "path", "required": True, "schema": {"type": "string"}}
TERM_PARAM = {"name": "term", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^\\w+$"}}


def _ws_action(summary: str, response: dict) -> dict:
    return {"post": {"summary": summary, "parameters": [NAME_PARAM], "responses": {"200": response, **ERRORS}}}


def openapi_document(base_url: str = "/") -> dict[str, Any]:
    ws = _json(_ref("Workspace"))
    paths = {
        "/perry/api/info": {"get": {"summary": "Server, engine and image facts with health checks",
                                    "responses": {"200": _json(_ref("Info"))}}},
        "/perry/api/config": {
            "get": {"summary": "Effective configuration (no secrets)", "responses": {"200": _json(_ref("Config"))}},
            "patch": {"summary": "Change run-time settings (sshPublicKeys, gitConfig, env, dindMode, readyTimeout)",
                      "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                      "responses": {"200": _json(_ref("Config")), "400": ERRORS["400"]}},
        },
        "/perry/api/openapi.json": {"get": {"summary": "This document",
                                            "responses": {"200": _json({"type": "object"})}}},
        "/perry/api/image": {"get": {"summary": "Workspace image status", "responses": {"200": _json(_ref("Image"))}}},
        "/perry/api/image/build": {"post": {
            "summary": "Build the workspace image; progress streams as newline-delimited JSON",
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "properties": {"bootstrap": {"type": "boolean", "nullable": True},
                                                 "noCache": {"type": "boolean"}}}}}},
            "responses": {"200": {"description": "progress events, the last with stage done or error",
                                  "content": {"application/x-ndjson": {"schema": {"type": "object"}}}}}}},
        "/perry/api/workspaces": {
            "get": {"summary": "List workspaces",
                    "responses": {"200": _json({"type": "object", "properties": {
                        "workspaces": {"type": "array", "items": _ref("Workspace")}}}), "503": ERRORS["503"]}},
            "post": {"summary": "Create a workspace and wait until it is ready",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CreateWorkspace")}}},
                     "responses": {"201": _json(_ref("Workspace"), "Created and ready"), **ERRORS}},
        },
        "/perry/api/workspaces/{name}": {
            "get": {"summary": "One workspace", "parameters": [NAME_PARAM], "responses": {"200": ws, **ERRORS}},
            "delete": {"summary": "Delete the container and both volumes", "parameters": [NAME_PARAM],
                       "responses": {"204": {"description": "Deleted"}, **ERRORS}},
        },
        "/perry/api/workspaces/{name}/start": _ws_action("Start (recreating a missing container)", ws),
        "/perry/api/workspaces/{name}/stop": _ws_action("Stop", ws),
        "/perry/api/workspaces/{name}/sync": _ws_action("Copy keys, git config and the worker in again", _json(
            {"type": "object", "properties": {"workspace": _ref("Workspace"),
                                              "copied": {"type": "array", "items": {"type": "string"}}}})),
        "/perry/api/workspaces/{name}/logs": {"get": {
            "summary": "Container logs", "parameters": [NAME_PARAM, {"name": "tail", "in": "query",
                                                                       "schema": {"type": "integer", "minimum": 1}}],
            "responses": {"200": _json({"type": "object", "properties": {"logs": {"type": "string"}}}), **ERRORS}}},
        "/perry/api/workspaces/{name}/exec": {"post": {
            "summary": "Run a command in a running workspace", "parameters": [NAME_PARAM],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Exec")}}},
            "responses": {"200": _json(_ref("ExecResult")), **ERRORS}}},
        "/perry/api/usage": {"get": {"summary": "Token use and cost of every running workspace",
                                     "responses": {"200": _json({"type": "object"})}}},
        "/perry/api/workspaces/{name}/usage": {"get": {
            "summary": "Token use and cost per session and in total", "parameters": [NAME_PARAM],
            "responses": {"200": _json(_ref("Usage")), **ERRORS}}},
        "/perry/api/workspaces/{name}/sessions": {"get": {
            "summary": "Agent sessions in the workspace, newest first",
            "parameters": [NAME_PARAM, {"name": "agent", "in": "query",
                                        "schema": {"type": "string", "enum": ["opencode", "claude", "codex"]}}],
            "responses": {"200": _json({"type": "object", "properties": {
                "sessions": {"type": "array", "items": _ref("Session")}}}), **ERRORS}}},
        "/perry/api/workspaces/{name}/sessions/{sessionId}": {"get": {
            "summary": "One session", "parameters": [NAME_PARAM, SESSION_PARAM],
            "responses": {"200": _json(_ref("Session")), **ERRORS}}},
        "/perry/api/workspaces/{name}/sessions/{sessionId}/messages": {"get": {
            "summary": "A page of the session's messages, oldest first",
            "parameters": [NAME_PARAM, SESSION_PARAM,
                           {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                           {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": _json({"type": "object", "properties": {
                "sessionId": {"type": "string"}, "total": {"type": "integer"}, "offset": {"type": "integer"},
                "limit": {"type": "integer"}, "messages": {"type": "array", "items": _ref("Message")}}}),
                **ERRORS}},
            "post": {
                "summary": "Continue the conversation: send one message, answer with the agent's reply "
                           "(OpenCode through `opencode serve`, or `opencode run --session` when the server "
                           "does not know the session; Claude Code `-p --resume`; Codex `exec resume`)",
                "parameters": [NAME_PARAM, SESSION_PARAM],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}}}},
                "responses": {"200": _json({"type": "object", "properties": {
                    "sessionId": {"type": "string"}, "agent": {"type": "string"}, "via": {"type": "string"},
                    "text": {"type": "string"}, "reply": _ref("Message")}}), **ERRORS}}},
        "/perry/api/workspaces/{name}/tasks": {
            "get": {"summary": "The workspace's dispatched tasks, newest first", "parameters": [NAME_PARAM],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "tasks": {"type": "array", "items": _ref("Task")}}}), **ERRORS}},
            "post": {"summary": "Start an agent on a prompt in the workspace's project directory; returns at once",
                     "parameters": [NAME_PARAM],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Dispatch")}}},
                     "responses": {"201": _json(_ref("Task")), **ERRORS}},
        },
        "/perry/api/workspaces/{name}/tasks/{taskId}": {
            "get": {"summary": "One task", "parameters": [NAME_PARAM, TASK_PARAM],
                    "responses": {"200": _json(_ref("Task")), **ERRORS}},
            "delete": {"summary": "Cancel the task (its agent process ends)", "parameters": [NAME_PARAM, TASK_PARAM],
                       "responses": {"200": _json(_ref("Task")), **ERRORS}},
        },
        "/perry/api/workspaces/{name}/terminals": {
            "get": {"summary": "The workspace's terminals", "parameters": [NAME_PARAM],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "terminals": {"type": "array", "items": _ref("Terminal")}}}), **ERRORS}},
            "post": {"summary": "Open a terminal in a running workspace (a Jupyter terminal running docker exec)",
                     "parameters": [NAME_PARAM], "responses": {"201": _json(_ref("Terminal")), **ERRORS}},
        },
        "/perry/api/workspaces/{name}/terminals/{term}": {
            "get": {"summary": "One terminal", "parameters": [NAME_PARAM, TERM_PARAM],
                    "responses": {"200": _json(_ref("Terminal")), **ERRORS}},
            "delete": {"summary": "Close a terminal; its clients are told", "parameters": [NAME_PARAM, TERM_PARAM],
                       "responses": {"204": {"description": "Closed"}, **ERRORS}},
        },
    }
    error = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}
    schemas = {
        "Error": error,
        "Workspace": {"type": "object", "required": ["name", "status"], "properties": {
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["creating", "running", "stopped", "error"]},
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
            "clone": {"type": "string", "nullable": True},
            "projectDir": {"type": "string"},
            "agents": {"type": "array", "items": {"type": "string", "enum": ["opencode", "claude", "codex"]},
                       "nullable": True, "description": "Agents' CLIs in its image; null when unknown"},
            "error": {"type": "string", "nullable": True},
            "volumes": {"type": "object", "properties": {"home": {"type": "string"}, "docker": {"type": "string"}}},
        }},
        "CreateWorkspace": {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
            "name": NAME_PARAM["schema"],
            "clone": {"type": "string", "description": "git URL or absolute path on the server's machine"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "Exec": {"type": "object", "required": ["command"], "additionalProperties": False, "properties": {
            "command": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "user": {"type": "string"}, "workdir": {"type": "string"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "ExecResult": {"type": "object", "properties": {
            "exitCode": {"type": "integer"}, "stdout": {"type": "string"}, "stderr": {"type": "string"}}},
        "Image": {"type": "object", "properties": {
            "tag": {"type": "string"}, "present": {"type": "boolean"}, "upToDate": {"type": "boolean"}}},
        "Info": {"type": "object", "properties": {
            "version": {"type": "string"}, "engine": {"type": "object"}, "image": _ref("Image"),
            "workspaces": {"type": "integer", "nullable": True}, "stateDir": {"type": "string"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "checks": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "ok": {"type": "boolean"}, "message": {"type": "string"},
                "fix": {"type": "string"}}}}}},
        "Config": {"type": "object"},
        "Tokens": {"type": "object", "properties": {k: {"type": "integer"} for k in (
            "input", "output", "reasoning", "cacheRead", "cacheWrite")}},
        "Session": {"type": "object", "properties": {
            "sessionId": {"type": "string"}, "agent": {"type": "string", "enum": ["opencode", "claude", "codex"]},
            "title": {"type": "string"}, "directory": {"type": "string", "nullable": True},
            "messageCount": {"type": "integer"}, "lastActivity": {"type": "string", "format": "date-time"},
            "tokens": _ref("Tokens"), "cost": {"type": "number", "nullable": True}}},
        "Message": {"type": "object", "properties": {
            "id": {"type": "string"}, "role": {"type": "string"}, "time": {"type": "string"},
            "parts": {"type": "array", "items": {"type": "object", "properties": {
                "type": {"type": "string", "enum": ["text", "tool", "reasoning", "file"]}}}}}},
        "Usage": {"type": "object", "properties": {
            "sessions": {"type": "array", "items": {"type": "object"}},
            "total": {"type": "object", "properties": {"tokens": _ref("Tokens"), "cost": {"type": "number"}}}}},
        "Dispatch": {"type": "object", "required": ["prompt"], "additionalProperties": False, "properties": {
            "agent": {"type": "string", "enum": ["opencode", "claude", "codex"], "default": "opencode"},
            "prompt": {"type": "string"}, "sessionId": {"type": "string"}, "model": {"type": "string"},
            "callback": {"type": "object", "required": ["url"], "properties": {
                "url": {"type": "string", "format": "uri"},
                "token": {"type": "string", "description": "sent as Authorization: Bearer; never shown"}}}}},
        "Task": {"type": "object", "properties": {
            "id": {"type": "string"}, "workspace": {"type": "string"}, "agent": {"type": "string"},
            "prompt": {"type": "string"}, "model": {"type": "string", "nullable": True},
            "sessionId": {"type": "string", "nullable": True}, "directory": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "created": {"type": "string"}, "started": {"type": "string", "nullable": True},
            "ended": {"type": "string", "nullable": True}, "exitCode": {"type": "integer", "nullable": True},
            "summary": {"type": "string", "nullable": True},
            "outputTail": {"type": "array", "items": {"type": "string"}},
            "error": {"type": "string", "nullable": True},
            "callback": {"type": "object", "nullable": True, "properties": {
                "url": {"type": "string"}, "delivered": {"type": "boolean"}, "attempts": {"type": "integer"},
                "lastError": {"type": "string", "nullable": True}}}}},
        "Terminal": {"type": "object", "properties": {
            "name": {"type": "string"}, "workspace": {"type": "string"},
            "lastActivity": {"type": "string", "nullable": True}, "clients": {"type": "integer"},
            "websocket": {"type": "string", "description": "terminado protocol, relative to the base URL"},
            "jupyterWebsocket": {"type": "string"}}},
    }

    def response(description: str) -> dict:
        return _json(_ref("Error"), description)

    return {
        "openapi": "3.0.3",
        "info": {"title": "Perry for Jupyter", "version": __version__,
                 "description": "Isolated Docker development workspaces. Authenticate with Jupyter's token "
                                "(`Authorization: token <T>`) or its login cookie. WebSocket "
                                "`/perry/api/events[?workspace=NAME]` streams JSON change events; WebSocket "
                                "`/perry/terminal/{workspace}[?terminal=NAME]` attaches a terminal with "
                                "terminado's protocol, plus `[\"exit\", status]` when the shell ends."},
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization"}},
            "responses": {"Invalid": response("Invalid input"), "NotFound": response("No such workspace"),
                          "Conflict": response("Conflicts with the current state"),
                          "EngineUnavailable": response("The Docker engine is not reachable")},
        },
    }
