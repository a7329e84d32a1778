"""Server facts, configuration and the OpenAPI document."""

from __future__ import annotations

from ..core.errors import NotFound
from ..openapi import openapi_document
from .base import PerryHandler, api


class InfoHandler(PerryHandler):
    @api
    async def get(self) -> None:
        self.reply(await self.blocking(self.perry.info))


class ConfigHandler(PerryHandler):
    @api
    async def get(self) -> None:
        self.reply(self.perry.config())

    @api
    async def patch(self) -> None:
        self.reply(await self.blocking(self.perry.update_config, self.json_body()))


class OpenAPIHandler(PerryHandler):
    @api
    async def get(self) -> None:
        self.reply(openapi_document(self.base_url))


class NoRouteHandler(PerryHandler):
    """Any other address under Perry's: a JSON 404 like the rest of the API, not Jupyter's HTML page."""

    @api
    async def get(self, *args: str) -> None:
        raise NotFound(f"no such address in Perry's API: {self.request.method} {self.request.path[:200]}; "
                       "see /perry/api/openapi.json")

    post = put = patch = delete = get
