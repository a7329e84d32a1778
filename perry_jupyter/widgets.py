"""``from perry_jupyter.widgets import WorkspaceManager, SessionViewer`` as the README shows;
the widgets live in perry_jupyter.notebook.widgets."""

from .notebook.widgets import ChangesViewer, SessionViewer, WorkspaceManager

__all__ = ["WorkspaceManager", "SessionViewer", "ChangesViewer"]
