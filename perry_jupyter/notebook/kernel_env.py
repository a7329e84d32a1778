"""Hand the kernels this Jupyter server starts the way back to its Perry API.

Inside a JupyterLab that runs the Perry extension, ``%perry list`` and the widgets should
work with no configuration. ``install(serverapp)`` (called from
``PerryApp.initialize_settings``) wraps the server's kernel manager so that every kernel
it starts (notebooks, consoles, bare ``POST /api/kernels``) gets in its environment:

- ``PERRY_URL``: this server, as the kernel reaches it (``http://127.0.0.1:PORT/BASE_URL``);
- ``PERRY_TOKEN``: this server's token (or JupyterHub's API token where there is no
  Jupyter token), which ``perry_jupyter.clientconfig`` picks up like any PERRY_TOKEN;
- ``PERRY_JUPYTER_URL``: the same URL, telling the widgets that the server of
  ``PERRY_URL`` is the one their notebook runs in (so a terminal can open in JupyterLab).

Why the kernels only, and not ``os.environ`` of the server process: the token then
reaches only kernels, which run as the server's user and could already read it from the
server's runtime file (``jpserver-<pid>.json``, mode 600), not every other child of the
server (host terminals, the ``docker`` processes behind workspace terminals, whatever a
user's extension spawns); and the server process's own environment stays as it was, so
code running in it (e.g. tests with an in-process server) is not redirected. The URL is
worked out when a kernel starts, as the port is only known once the server has bound it.

An explicit ``PERRY_URL`` in the environment a kernel would get wins: whoever set it
meant another Perry server, and the kernel keeps theirs (and its PERRY_TOKEN).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

URL_VAR, TOKEN_VAR, HOST_VAR = "PERRY_URL", "PERRY_TOKEN", "PERRY_JUPYTER_URL"
_WILDCARD = {"", "0.0.0.0", "::", "*", "localhost"}
_MARK = "_perry_kernel_env"


def server_url(serverapp: Any) -> str | None:
    """This server's URL as a process on the same machine reaches it (None on a Unix socket)."""
    if getattr(serverapp, "sock", ""):
        return None  # http+unix: requests cannot speak it
    ip = getattr(serverapp, "ip", "") or ""
    if ip in _WILDCARD:
        host = "[::1]" if ip == "::" else "127.0.0.1"
    else:
        host = f"[{ip}]" if ":" in ip else ip
    scheme = "https" if getattr(serverapp, "certfile", None) else "http"
    base = getattr(serverapp, "base_url", "/") or "/"
    if not base.startswith("/"):
        base = "/" + base
    return f"{scheme}://{host}:{serverapp.port}{base}"


def server_token(serverapp: Any) -> str | None:
    provider = getattr(serverapp, "identity_provider", None)
    token = getattr(provider, "token", None) if provider is not None else None
    if token:
        return str(token)
    # A JupyterHub single-user server authenticates with the hub's API token instead.
    return os.environ.get("JUPYTERHUB_API_TOKEN") or None


def kernel_env(serverapp: Any, base: dict[str, str] | None = None) -> dict[str, str]:
    """The variables to add to a kernel whose environment would otherwise be ``base``."""
    url = server_url(serverapp)
    if not url:
        return {}
    extra = {HOST_VAR: url}
    base = os.environ if base is None else base
    if not base.get(URL_VAR, "").strip():
        extra[URL_VAR] = url
        token = server_token(serverapp)
        if token:
            extra[TOKEN_VAR] = token
    return extra


def install(serverapp: Any, log: Any = None) -> bool:
    """Wrap ``serverapp.kernel_manager.start_kernel``; True when installed (once per manager)."""
    km = getattr(serverapp, "kernel_manager", None)
    if km is None or getattr(km, _MARK, False):
        return False
    if "Gateway" in type(km).__name__:  # remote kernels: 127.0.0.1 would not be this server there
        if log is not None:
            log.info("Perry: kernels run on a gateway; they are not handed PERRY_URL")
        return False
    original = km.start_kernel

    async def start_kernel(*args: Any, **kwargs: Any) -> Any:
        try:
            base = kwargs.get("env")
            extra = kernel_env(serverapp, base)
            if extra:
                kwargs["env"] = {**(os.environ if base is None else base), **extra}
        except Exception as e:  # never keep a kernel from starting
            if log is not None:
                log.warning("Perry: could not prepare the kernel environment: %s", e)
        result = original(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    km.start_kernel = start_kernel
    setattr(km, _MARK, True)
    return True
