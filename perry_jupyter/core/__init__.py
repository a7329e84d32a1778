"""Perry's core: workspaces, state, images and events.

Nothing in this package imports tornado or Jupyter; the server handlers, the
CLI and the tests all drive the same objects.
"""
