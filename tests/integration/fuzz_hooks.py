"""Schemathesis hooks for test_fuzz.py (loaded through SCHEMATHESIS_HOOKS by `st run`).

The fuzzer may send anything, but nothing it sends may make the server reach
beyond this machine, mount this machine's directories into a workspace, rebuild
the image other tests share, or take down the workspace the other routes need:
a generated callback URL, clone source or model name that the server would act
on is swapped, just before the request goes out, for a local one. Values the
server refuses stay as generated, so its validation is still exercised.
"""

from __future__ import annotations

import os
import re

import schemathesis

# Mirrors of the server's own acceptance rules (core/tasks.py, core/workspaces.py): only what it
# would act on needs replacing.
CALLBACK_URL = re.compile(r"https?://[^\s/]+(/\S*)?")
GIT_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+|[\w.-]+@[\w.-]+:\S+")
LOCAL_PATHS = ("/", "./", "../", "~")
MODEL = re.compile(r"[\w./:@-]{1,200}")

# Run-time settings that make every later create fail here by design: `privileged` containers
# are refused on this machine, and a ready timeout shorter than a create is a 504.
SAFE_SETTINGS = {"dindMode": lambda v: "auto" if v == "privileged" else v,
                 "readyTimeout": lambda v: max(v, 120) if isinstance(v, (int, float)) and not isinstance(v, bool)
                 else v}

# An idle timeout shorter than the run would stop the workspace the other routes need (each use
# then waits for it to start again): an accepted one becomes long. Refused values stay as generated.
SAFE_IDLE_TIMEOUT = 3600

# Excluded from the run; this guard keeps a mistaken filter from sending them anyway.
NEVER_SENT = {"/perry/api/image/build": "it rebuilds the image every test on this engine uses"}
# (A PATCH may set limits that starve it: 16 processes, a hundredth of a CPU.)
LIFECYCLE_ENDS = {("DELETE", "/perry/api/workspaces/{name}"), ("POST", "/perry/api/workspaces/{name}/stop"),
                  ("PATCH", "/perry/api/workspaces/{name}")}
# Limits a workspace still starts within in the time the run has; smaller valid ones are raised to them.
LIVABLE = {"cpus": 0.5, "memory": 256 << 20, "pids": 256}

# Addresses the server accepts (core/engines.py), and one of them that no engine answers.
ENGINE_ADDRESS = re.compile(r"(unix|ssh|tcp|npipe)://|context:")
DEAD_ENGINE = "unix:///nonexistent/perry-fuzz-engine.sock"

# Nothing listens on the discard port of the loopback: every delivery is refused at once.
LOCAL_CALLBACK = "http://127.0.0.1:9/hook"
# The stand-in model that tests/integration/agents.py starts in the fuzzed workspace.
LOCAL_MODEL = "stub/m"


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path in NEVER_SENT:
        raise RuntimeError(f"{case.operation.path} must not be fuzzed: {NEVER_SENT[case.operation.path]}")
    # The fuzzed workspace stays up for the routes that need it running; stop and delete hit the spare.
    if case.path_parameters and case.path_parameters.get("name") == os.environ["PERRY_FUZZ_KEEP"] and (
            (case.method.upper(), case.operation.path) in LIFECYCLE_ENDS):
        case.path_parameters["name"] = os.environ["PERRY_FUZZ_SPARE"]
    if case.operation.path == "/perry/api/workspaces/{name}/logs" and case.query:
        # A followed log of a running workspace ends only when it stops (test_follow.py streams it).
        case.query["follow"] = "false"
    body = case.body
    if not isinstance(body, dict):
        return
    path, method = case.operation.path, case.method.upper()
    if method == "POST" and path.endswith("/tasks"):
        callback = body.get("callback")
        if isinstance(callback, dict) and isinstance(callback.get("url"), str) \
                and CALLBACK_URL.fullmatch(callback["url"]):
            body["callback"] = {**callback, "url": LOCAL_CALLBACK}
        if isinstance(body.get("model"), str) and MODEL.fullmatch(body["model"]):
            body["model"] = LOCAL_MODEL
    idle = body.get("idleTimeout")
    if isinstance(idle, int) and not isinstance(idle, bool) and 0 < idle < SAFE_IDLE_TIMEOUT and (
            (method == "PATCH" and path == "/perry/api/workspaces/{name}")
            or (method == "POST" and path == "/perry/api/workspaces")):
        body["idleTimeout"] = SAFE_IDLE_TIMEOUT
    if method == "PATCH" and path == "/perry/api/config":
        for key, safe in SAFE_SETTINGS.items():
            if key in body:
                body[key] = safe(body[key])
    if method == "POST" and path == "/perry/api/engines":
        # An engine the server would add is asked at once by every list: one that answers at once, refusing.
        address = body.get("address")
        if isinstance(address, str) and ENGINE_ADDRESS.match(address):
            body["address"] = DEAD_ENGINE
    if method == "POST" and path == "/perry/api/workspaces/{name}/clone" and isinstance(body.get("name"), str) \
            and re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", body["name"]):
        # A clone copies a workspace's volumes (tens of seconds, more each time the stateful phase deletes
        # it again): the fuzzer gets the refusal of a taken name; test_workspace_clone.py makes real ones.
        body["name"] = os.environ["PERRY_FUZZ_KEEP"]
    if method == "POST" and path == "/perry/api/workspaces":
        for key, least in LIVABLE.items():
            value = body.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < least:
                body[key] = least
            elif isinstance(value, str) and key == "memory":
                body[key] = least  # a size in words the server would accept may be tiny
        clone = body.get("clone")
        # A URL is fetched, and a directory of this machine mounted into the workspace: both become the local repo.
        if isinstance(clone, str) and (GIT_URL.fullmatch(clone) or clone.startswith(LOCAL_PATHS)):
            body["clone"] = os.environ["PERRY_FUZZ_REPO"]
