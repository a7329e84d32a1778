"""The workspace image: its status, and builds streamed as JSON lines."""

from __future__ import annotations

from ..core.errors import InvalidInput
from .base import PerryHandler, api


class ImageHandler(PerryHandler):
    @api
    async def get(self) -> None:
        self.reply(await self.blocking(self.perry.image_status))


class ImageBuildHandler(PerryHandler):
    @api
    async def post(self) -> None:
        body = self.json_body("bootstrap", "noCache", "agents", "engine", "copyFrom", "dockerfile", "tag")
        bootstrap, no_cache, agents = body.get("bootstrap"), body.get("noCache", False), body.get("agents")
        if bootstrap not in (None, True, False) or not isinstance(no_cache, bool):
            raise InvalidInput("bootstrap must be true, false or null and noCache a boolean")
        engine = body.get("engine")
        if engine is not None and engine not in self.perry.engines.names():
            raise InvalidInput(f"there is no engine {engine!r}; `perry engines` lists them")
        if agents is not None:
            from ..core.settings import PATCHABLE

            PATCHABLE["imageAgents"][1](agents)  # a bad list is a 400 before anything starts
        if body.get("dockerfile") is not None or body.get("tag") is not None:
            from ..core.image import validate_reference

            validate_reference(body.get("tag"), "tag")  # a bad request is a 400 before anything starts
            if body.get("copyFrom") is not None or agents is not None or bootstrap is not None:
                raise InvalidInput("dockerfile and tag build your own image: copyFrom, agents and bootstrap "
                                   "are for Perry's workspace image")

            def work(progress):
                return self.perry.build_derived_image(body.get("dockerfile"), body["tag"], engine=engine,
                                                      progress=progress)
        elif body.get("copyFrom") is not None:
            # No registry between engines: the image streams from one engine's save into the other's load.
            def work(progress):
                return self.perry.copy_image(body["copyFrom"], engine or self.perry.engines.default, progress=progress)
        else:
            def work(progress):
                return self.perry.build_image(bootstrap=bootstrap, no_cache=no_cache, agents=agents, engine=engine,
                                              progress=progress)
        await self.stream_progress(work, "image")
