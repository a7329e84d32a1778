"""Real coding agents inside a real workspace, talking to the stand-in model server.

The model server (tests/modelserver.py, standard library only) runs inside the
workspace on its loopback, so the agents reach it exactly as they would reach a
provider, and Perry reaches neither except through the Docker API.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

MODEL_PORT = 18089
MODEL_DIR = "/opt/perry-test"
OPENCODE_CONFIG = {
    "provider": {"stub": {"npm": "@ai-sdk/openai-compatible", "name": "Stub model",
                          "options": {"baseURL": f"http://127.0.0.1:{MODEL_PORT}/v1", "apiKey": "x"},
                          "models": {"m": {"name": "m"}}}},
    "model": "stub/m",
}


def _tar(files: dict[str, bytes], uid: int = 1000) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o644, uid, uid
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def start_model(container, replies: list, *, title: str = "Test session", default: str = "Done.",
                delay: float = 0.0, refuse_auth: bool = False) -> None:
    """Run the stand-in model inside the workspace and point OpenCode at it (``refuse_auth``:
    a model that answers every request 401, as a provider does for a wrong key)."""
    script = {"replies": replies, "title": title, "default": default}
    container.exec_run(["mkdir", "-p", MODEL_DIR], user="root")
    container.put_archive(MODEL_DIR, _tar({
        "modelserver.py": (Path(__file__).parent.parent / "modelserver.py").read_bytes(),
        "replies.json": json.dumps(script).encode(),
    }))
    container.exec_run(["mkdir", "-p", "/home/workspace/.config/opencode"], user="workspace")
    container.put_archive("/home/workspace/.config/opencode",
                          _tar({"opencode.json": json.dumps(OPENCODE_CONFIG).encode()}))
    container.exec_run(["python3", f"{MODEL_DIR}/modelserver.py", "--port", str(MODEL_PORT),
                        "--script", f"{MODEL_DIR}/replies.json", "--delay", str(delay),
                        *(["--refuse-auth"] if refuse_auth else [])],
                       user="workspace", detach=True)
    for _ in range(100):
        probe = container.exec_run(["curl", "-sf", f"http://127.0.0.1:{MODEL_PORT}/_health"])
        if probe.exit_code == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the stand-in model server did not start in the workspace")


def stop_model(container) -> None:
    """The model goes down: nothing listens on its port any more."""
    container.exec_run(["pkill", "-f", f"{MODEL_DIR}/modelserver.py"], user="root")
    for _ in range(100):
        if container.exec_run(["curl", "-sf", f"http://127.0.0.1:{MODEL_PORT}/_health"]).exit_code != 0:
            return
        time.sleep(0.1)
    raise AssertionError("the stand-in model server is still up")


def add_replies(container, replies: list) -> None:
    r = container.exec_run(["curl", "-sf", "-X", "POST", "-H", "Content-Type: application/json",
                            "--data", json.dumps(replies), f"http://127.0.0.1:{MODEL_PORT}/_replies"])
    assert r.exit_code == 0, r.output


def opencode(container, *args: str, detach: bool = False):
    """`opencode run ...` as the workspace user, in its home."""
    return container.exec_run(["opencode", "run", *args], user="workspace", workdir="/home/workspace",
                              environment={"HOME": "/home/workspace"}, detach=detach)


class CallbackServer:
    """A wake-hook receiver on the host: records calls, can fail the first N of them."""

    def __init__(self, fail_first: int = 0):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.calls: list[dict] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                failing = len(outer.calls) < outer.fail_first
                outer.calls.append({"body": body, "authorization": self.headers.get("Authorization"),
                                    "idempotencyKey": self.headers.get("Idempotency-Key"),
                                    "answered": 500 if failing else 200, "time": time.time()})
                self.send_response(500 if failing else 200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/wake"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[dict]:
        return [c for c in self.calls if c["answered"] == 200]

    def close(self):
        self.server.shutdown()
