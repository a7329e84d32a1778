"""URL routes of Perry's API; ExtensionApp prefixes them with the server's base_url."""

from __future__ import annotations

NAME = r"(?P<name>[^/]+)"
SESSION = r"(?P<session_id>[^/]+)"
# Any name reaches the handler, which answers a bad one in JSON (a route regex would give Jupyter's HTML 404).
TERM = r"(?P<term>[^/]+)"
PORT = r"(?P<port>[^/]+)"
PROXIED = r"(?P<path>/.*)?"  # none: the proxy adds the slash, so relative links resolve under it


def routes() -> list[tuple]:
    from .changes import ChangesHandler, DiffHandler
    from .engines import EngineHandler, EnginesHandler
    from .events import EventsSocket
    from .follow import TaskOutputHandler
    from .search import SessionSearchHandler
    from .image import ImageBuildHandler, ImageHandler
    from .phone import PhoneAssetHandler, PhonePageHandler
    from .proxy import PortSocket, PortsHandler, ProxyHandler, ProxyScriptHandler
    from .info import ConfigHandler, InfoHandler, NoRouteHandler, OpenAPIHandler
    from .sessions import AllUsageHandler, MessagesHandler, SessionHandler, SessionsHandler, UsageHandler
    from .tasks import TaskHandler, TasksHandler
    from .terminals import TerminalHandler, TerminalsHandler, WorkspaceTermSocket
    from .workspaces import (
        CloneHandler,
        ExecHandler,
        LogsHandler,
        MoveHandler,
        WorkspaceActionHandler,
        WorkspaceHandler,
        WorkspacesHandler,
    )

    api = "/perry/api"
    return [
        (f"{api}/info", InfoHandler),
        (f"{api}/config", ConfigHandler),
        (f"{api}/openapi.json", OpenAPIHandler),
        (f"{api}/events", EventsSocket),
        (f"{api}/image", ImageHandler),
        (f"{api}/image/build", ImageBuildHandler),
        (f"{api}/engines", EnginesHandler),
        (f"{api}/engines/{NAME}", EngineHandler),
        (f"{api}/workspaces", WorkspacesHandler),
        (f"{api}/workspaces/{NAME}", WorkspaceHandler),
        (f"{api}/workspaces/{NAME}/(?P<action>start|stop|sync)", WorkspaceActionHandler),
        (f"{api}/workspaces/{NAME}/move", MoveHandler),
        (f"{api}/workspaces/{NAME}/clone", CloneHandler),
        (f"{api}/workspaces/{NAME}/logs", LogsHandler),
        (f"{api}/workspaces/{NAME}/exec", ExecHandler),
        (f"{api}/usage", AllUsageHandler),
        (f"{api}/sessions/search", SessionSearchHandler),
        (f"{api}/workspaces/{NAME}/usage", UsageHandler),
        (f"{api}/workspaces/{NAME}/sessions", SessionsHandler),
        (f"{api}/workspaces/{NAME}/sessions/{SESSION}", SessionHandler),
        (f"{api}/workspaces/{NAME}/sessions/{SESSION}/messages", MessagesHandler),
        (f"{api}/workspaces/{NAME}/tasks", TasksHandler),
        (f"{api}/workspaces/{NAME}/tasks/(?P<task_id>[^/]+)", TaskHandler),
        (f"{api}/workspaces/{NAME}/tasks/(?P<task_id>[^/]+)/output", TaskOutputHandler),
        (f"{api}/workspaces/{NAME}/changes", ChangesHandler),
        (f"{api}/workspaces/{NAME}/changes/diff", DiffHandler),
        (f"{api}/workspaces/{NAME}/terminals", TerminalsHandler),
        (f"{api}/workspaces/{NAME}/terminals/{TERM}", TerminalHandler),
        (r"/perry/terminal/(?P<workspace>[^/]+)", WorkspaceTermSocket),
        (f"{api}/workspaces/{NAME}/ports", PortsHandler),
        (f"{api}/workspaces/{NAME}/ports/(?P<port>[^/]+)/connect", PortSocket),
        (f"/perry/proxy/{NAME}/{PORT}{PROXIED}", ProxyHandler),
        (f"/perry/proxy-absolute/{NAME}/{PORT}{PROXIED}", ProxyHandler, {"absolute": True}),
        (r"/perry/proxy\.js", ProxyScriptHandler),
        (r"/perry/?", PhonePageHandler),
        (r"/perry/sw\.js", PhoneAssetHandler, {"file": "sw.js"}),
        (r"/perry/manifest\.webmanifest", PhoneAssetHandler, {"file": "manifest.webmanifest"}),
        (r"/perry/phone/(?P<path>.+)", PhoneAssetHandler),
        (r"/perry/(?:api|terminal|proxy|proxy-absolute)(?:/.*)?", NoRouteHandler),
    ]
