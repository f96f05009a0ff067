"""The one root error of Moorage and its kinds.

    MoorageError                 anything Moorage reports to a person
     ├── InvalidInput            input that breaks a rule; carries {field: message}  -> 422
     ├── NotFound                a named thing does not exist                          -> 404
     ├── Conflict                the request clashes with current state                -> 409/422
     ├── Unauthorized            no token, or a token the master does not know         -> 401
     └── Forbidden               a valid token that may not do this                    -> 403

Every message says what is wrong, where, and how to fix it. The master maps these to HTTP in
one place (``moorage.master.errors``); the CLI prints them on stderr and exits 1.
"""

from __future__ import annotations

__all__ = ["Conflict", "Forbidden", "InvalidInput", "MoorageError", "NotFound", "Unauthorized"]


class MoorageError(Exception):
    """Root of every error Moorage shows to a user."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def payload(self) -> object:
        """The JSON value of the ``error`` key in an API response."""
        return self.message


class InvalidInput(MoorageError):
    """One or more fields break a rule; ``errors`` maps each field (or path) to its message."""

    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)

    @classmethod
    def one(cls, field: str, message: str) -> InvalidInput:
        return cls({field: message})

    def payload(self) -> object:
        return self.errors


class NotFound(MoorageError):
    status = 404


class Conflict(MoorageError):
    status = 409


class Unauthorized(MoorageError):
    status = 401


class Forbidden(MoorageError):
    status = 403
