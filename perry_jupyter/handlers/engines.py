"""The Docker engines workspaces run on: their health, and run-time additions and removals."""

from __future__ import annotations

from .base import PerryHandler, api
from .terminals import TERMINALS

# An added engine makes this server run `ssh` or open connections as its own user: what Jupyter's
# terminals need, so a deployment that denies terminals denies this too.
ADD_FIELDS = {"name": "name", "address": "address", "sshHost": "ssh_host", "sshKey": "ssh_key",
              "tlsCa": "tls_ca", "tlsCert": "tls_cert", "tlsKey": "tls_key", "bindAddress": "bind_address"}


class EnginesHandler(PerryHandler):
    workspace_argument = None  # the name is an engine's

    @api
    async def get(self) -> None:
        self.reply({"engines": await self.blocking(self.perry.engines_status)})

    @api
    async def post(self) -> None:
        await self.require(*TERMINALS)
        body = self.json_body(*ADD_FIELDS)
        settings = {ADD_FIELDS[k]: v for k, v in body.items() if k not in ("name", "address")}
        engine = await self.blocking(self.perry.add_engine, body.get("name"), body.get("address"), **settings)
        self.reply(engine, status=201)


class EngineHandler(PerryHandler):
    workspace_argument = None  # the name is an engine's

    @api
    async def delete(self, name: str) -> None:
        await self.require(*TERMINALS)
        await self.blocking(self.perry.remove_engine, name)
        self.reply(None, status=204)
