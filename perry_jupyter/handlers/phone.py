"""The phone page: `<base_url>/perry/`, its web app manifest, service worker and assets.

All of it is behind Jupyter's auth like JupyterLab's own pages: a visitor without a cookie
is sent to Jupyter's login page and back. The page is one HTML shell and one bundle built
from src/phone/ (perry_jupyter/static/phone/build/, made by `jlpm build:prod`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from .base import AUTH_RESOURCE, PerryMixin

STATIC = Path(__file__).resolve().parent.parent / "static" / "phone"
BUNDLE = STATIC / "build" / "phone.js"


class PageMixin(PerryMixin):
    """A page, not an API: errors as Jupyter's HTML pages, no workspace in the path."""

    workspace_argument = None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        JupyterHandler.write_error(self, status_code, **kwargs)  # type: ignore[arg-type]


class PhonePageHandler(PageMixin, JupyterHandler):
    """`/perry/`: the page's HTML shell, with the server's base URL in it."""

    @web.addslash  # /perry goes to /perry/: the shell's links are relative to it
    @web.authenticated
    async def get(self) -> None:
        await self.require("read", AUTH_RESOURCE)
        if not BUNDLE.is_file():
            raise web.HTTPError(503, "the phone page is not built: run `jlpm build:prod` in the source tree")
        _ = self.xsrf_token  # sets the _xsrf cookie the page's POSTs send back as X-XSRFToken
        config = json.dumps({"baseUrl": self.base_url}).replace("</", "<\\/")
        page = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{config}}", config)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        # Revalidated on every visit, so an update reaches the page (the service worker is network-first).
        self.set_header("Cache-Control", "no-cache")
        self.finish(page)


class PhoneAssetHandler(PageMixin, JupyterHandler, web.StaticFileHandler):
    """The page's bundle, icons, manifest and service worker, to signed-in users only."""

    def initialize(self, file: str | None = None) -> None:  # type: ignore[override]
        # The manifest and the worker live at /perry/ itself: the worker's scope is where it is served.
        self.file = file
        web.StaticFileHandler.initialize(self, path=str(STATIC))

    @web.authenticated
    async def get(self, path: str | None = None, include_body: bool = True) -> None:  # type: ignore[override]
        await self.require("read", AUTH_RESOURCE)
        path = self.file or path or ""
        if path == "index.html":
            raise web.HTTPError(404)  # the template: the page is /perry/
        await web.StaticFileHandler.get(self, path, include_body)

    async def head(self, path: str | None = None) -> None:  # type: ignore[override]
        await self.get(path, include_body=False)

    def set_extra_headers(self, path: str) -> None:
        # Revalidated each time (304s keep it cheap): the service worker's copy is the offline one.
        self.set_header("Cache-Control", "no-cache")

    def get_content_type(self) -> str:
        if self.absolute_path and self.absolute_path.endswith(".webmanifest"):
            return "application/manifest+json"
        return super().get_content_type()
