"""`perry serve`: the same extension, headless, on port 7391.

The token comes from PERRY_TOKEN, else the state directory's `token` file,
which is generated (mode 600) on first run so the CLI on this machine finds it.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from traitlets.config import Config

from .app import PerryApp, default_state_dir

DEFAULT_PORT = 7391


def server_token(state_dir: Path) -> tuple[str, str]:
    """The token and where it came from."""
    if os.environ.get("PERRY_TOKEN"):
        return os.environ["PERRY_TOKEN"], "the PERRY_TOKEN environment variable"
    path = state_dir / "token"
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip(), str(path)
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    # O_EXCL: two servers starting at once must not each write a different token.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), str(path)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, str(path)


# Perry's defaults are set on the ServerApp before it reads config files and argv,
# so `--port`, `--ip` and jupyter_server_config.py still win.
SERVE_DEFAULTS = {
    "port": DEFAULT_PORT,
    "port_retries": 0,
    "open_browser": False,
    # `perry serve` is documented for root on a fresh machine (as CI runs it).
    "allow_root": True,
    "default_url": "/perry/api/info",
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    token, source = server_token(Path(default_state_dir()))
    # The identity provider reads JUPYTER_TOKEN; an explicit --IdentityProvider.token still wins.
    os.environ["JUPYTER_TOKEN"] = token
    serverapp = PerryApp.initialize_server(argv=argv, config=Config({"ServerApp": SERVE_DEFAULTS}))
    print(f"Perry is serving at {serverapp.connection_url}perry/api/\n"
          f"  authenticate with the header 'Authorization: token <T>'; T is in {source}\n"
          f"  the perry CLI on this machine finds it by itself; from elsewhere: "
          f"perry config worker {serverapp.ip or 'HOST'}:{serverapp.port} --token T",
          flush=True)
    serverapp.start()


if __name__ == "__main__":
    main()
