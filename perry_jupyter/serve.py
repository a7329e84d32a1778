"""`perry serve`: the same extension, headless, on port 7391.

One token, wherever it comes from: Jupyter's own settings (``--IdentityProvider.token``,
``--ServerApp.token``, a config file, ``JUPYTER_TOKEN``), else ``PERRY_TOKEN``, else the
config directory's ``token`` file, generated (mode 600) on first run. The server records
where it listens and that token in ``<config dir>/server-<pid>.json`` (mode 600) while it
runs, so the CLI on this machine finds it on any port.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path

from traitlets.config import Config

from . import lazy_imports, paths

# Before Jupyter is imported: what it imports on the way and no request of this server needs waits
# until something calls it.
lazy_imports.defer_iri_grammar()

from .app import PerryApp  # noqa: E402
from .core.state import atomic_write_json  # noqa: E402
from .notebook.kernel_env import server_url  # noqa: E402

DEFAULT_PORT = 7391


def file_token(config_dir: Path) -> tuple[str, str]:
    """The token of the ``token`` file (made on first use) and the file's path."""
    path = paths.token_file(config_dir)
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip(), str(path)
    config_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    # O_EXCL: two servers starting at once must not each write a different token.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), str(path)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, str(path)


def token_in_effect(serverapp, config_dir: Path, perry_token: str) -> tuple[str, str]:
    """The token the server checks, and where it came from; the token file only if nothing else gave one."""
    provider = serverapp.identity_provider
    token = provider.token
    if provider.token_generated:
        # Nobody chose a token: Jupyter made up one; use the stable one of the token file instead.
        token, source = file_token(config_dir)
        provider.token, provider.token_generated = token, False
        serverapp.web_app.settings["token"] = token
        return token, f"in {source}"
    if not token:
        return "", "none: token authentication is off (a password or an empty token is configured)"
    if perry_token and token == perry_token:
        return token, "the PERRY_TOKEN environment variable"
    if os.environ.get("JUPYTER_TOKEN") == token:
        return token, "the JUPYTER_TOKEN environment variable"
    return token, "the one you configured (--IdentityProvider.token, --ServerApp.token or a config file)"


def record_server(serverapp, config_dir: Path, token: str) -> Path | None:
    """Write this server's runtime file, as Jupyter writes jpserver-<pid>.json; None on a Unix socket."""
    url = server_url(serverapp)
    if url is None:
        return None
    paths.remove_stale_server_files(config_dir)
    path = paths.server_file(os.getpid(), config_dir)
    atomic_write_json(path, {"url": url, "port": serverapp.port, "pid": os.getpid(), "token": token,
                             "started": datetime.now(timezone.utc).isoformat()}, mode=0o600)
    return path


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
# The server extensions `perry serve` loads: Perry, and Jupyter's terminals (its manager is the one
# workspace terminals run on). Not every extension installed beside it (JupyterLab's, the LSP's, the
# notebook shim's): a headless server serves none of their pages, and they were most of its start-up.
# Extensions named in the user's config or argv (ServerApp.jpserver_extensions) still load.
SERVE_EXTENSIONS = {"perry_jupyter": True, "jupyter_server_terminals": True}


def banner(serverapp, token: str, source: str, record: Path | None, config_dir: Path) -> str:
    ip = serverapp.ip or ""
    lines = [f"Perry is serving at {serverapp.connection_url}perry/api/"]
    if token:
        lines.append(f"  authenticate with the header 'Authorization: token <T>'; T is {source}")
    else:
        lines.append(f"  token: {source}")
    if record is not None:
        lines.append(f"  the perry CLI on this machine finds it by itself while it runs (recorded in {record}; "
                     f"a CLI with another PERRY_CONFIG_DIR than {config_dir}, or with PERRY_URL or "
                     f"`perry config worker` pointing elsewhere, does not)")
    remote = "perry config worker {}:%d" % serverapp.port + (" --token T" if token else "")
    if ip in ("localhost", "::1") or ip.startswith("127."):
        lines.append(f"  it listens on {ip} only; to reach it from elsewhere, start it with --ip=0.0.0.0, "
                     f"then: {remote.format('HOST')}")
    else:
        lines.append(f"  from elsewhere: {remote.format('HOST' if ip in ('', '0.0.0.0', '::') else ip)}")
    return "\n".join(lines)


def initialize(argv: list[str]):
    """The ServerApp of `perry serve`, with Perry's defaults under the user's config and ``argv``.

    ExtensionApp.initialize_server, but without searching the Jupyter paths for every enabled extension."""
    serverapp = PerryApp.make_serverapp(jpserver_extensions=dict(SERVE_EXTENSIONS),
                                        config=Config({"ServerApp": SERVE_DEFAULTS}))
    serverapp.aliases.update(PerryApp.aliases)
    serverapp.initialize(argv=argv, starter_extension=PerryApp.name, find_extensions=False)
    return serverapp


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    config_dir = paths.config_dir()
    perry_token = os.environ.get("PERRY_TOKEN", "").strip()
    if perry_token:
        # The identity provider reads JUPYTER_TOKEN; an explicit --IdentityProvider.token still wins.
        os.environ["JUPYTER_TOKEN"] = perry_token
    serverapp = initialize(argv)
    token, source = token_in_effect(serverapp, config_dir, perry_token)
    record = record_server(serverapp, config_dir, token)
    try:
        print(banner(serverapp, token, source, record, config_dir), flush=True)
        serverapp.start()
    finally:
        if record is not None:
            with contextlib.suppress(FileNotFoundError):
                record.unlink()


if __name__ == "__main__":
    main()
