"""Imports of Jupyter's dependencies that `perry serve` defers until they are used.

jsonschema registers its ``iri`` format check with ``rfc3987_syntax`` when that is installed
(Jupyter pulls it in with ``jsonschema[format-nongpl]``), and importing it compiles its Lark
grammars: about 0.8 s on a 2-core machine, nearly half of a bare Jupyter Server's start, spent
before the server answers anything. No schema Jupyter or Perry validates uses that format
(jupyter-server/jupyter_server#1559). So the server's process imports a stand-in under that name
whose check imports the real module, grammar and all, the first time it is called.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from typing import Any

IRI_MODULE = "rfc3987_syntax"


def defer_iri_grammar() -> None:
    """Put the stand-in in place, unless the real module is loaded already or is not installed."""
    if IRI_MODULE in sys.modules:
        return
    spec = importlib.util.find_spec(IRI_MODULE)
    if spec is None:
        return
    stand_in = _StandIn(IRI_MODULE)
    stand_in.__spec__ = spec  # what importlib.util.find_spec answers for a loaded module
    sys.modules[IRI_MODULE] = stand_in


class _StandIn(types.ModuleType):
    """``rfc3987_syntax`` until one of its names is used, then the module itself."""

    def __init__(self, name: str):
        super().__init__(name, "stand-in for rfc3987_syntax until it is used (perry_jupyter/lazy_imports.py)")
        self._lock = threading.Lock()
        self._real: types.ModuleType | None = None

    def is_valid_syntax(self, term: str, value: str) -> bool:
        return self._load().is_valid_syntax(term, value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._load(), name)

    def _load(self) -> types.ModuleType:
        with self._lock:
            if self._real is None:
                del sys.modules[IRI_MODULE]
                try:
                    self._real = importlib.import_module(IRI_MODULE)
                except BaseException:
                    sys.modules[IRI_MODULE] = self
                    raise
            return self._real
