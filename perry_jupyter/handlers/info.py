"""Server facts, configuration and the OpenAPI document."""

from __future__ import annotations

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
