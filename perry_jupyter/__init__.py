"""Perry for Jupyter: isolated Docker workspaces and their coding agents, from Jupyter."""

from ._version import __version__ as __version__


def _jupyter_server_extension_points():
    from .app import PerryApp

    return [{"module": "perry_jupyter.app", "app": PerryApp}]


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "perry-jupyter"}]


def load_ipython_extension(ipython):
    """`%load_ext perry_jupyter`: the `%perry` magics."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)
