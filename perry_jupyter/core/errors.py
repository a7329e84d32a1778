"""Errors that carry the HTTP status and code every client sees."""

from __future__ import annotations


class PerryError(Exception):
    """An error with a stable machine code and a message meant for people."""

    code = "internal"
    status = 500

    def __init__(self, message: str, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInput(PerryError):
    code = "invalid"
    status = 400


class NotFound(PerryError):
    code = "not_found"
    status = 404


class Conflict(PerryError):
    code = "conflict"
    status = 409


class EngineUnavailable(PerryError):
    code = "engine_unavailable"
    status = 503
