"""Domain errors raised by service rules and translated by the entrypoints.

Messages must be safe to show to the caller: never personal data, never
whether someone else's record exists.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class; `code` is the machine code clients see."""

    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class InvalidArgument(DomainError):
    code = "invalid"


class NotFound(DomainError):
    code = "not_found"


class PermissionDenied(DomainError):
    code = "forbidden"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Conflict(DomainError):
    code = "conflict"


class Collision(Conflict):
    """A concurrent write took the same unique value first (raised by UnitOfWork.commit)."""

    code = "conflict"

    def __init__(self) -> None:
        super().__init__("the change collided with another one; try again", "conflict")


class WrongRegion(DomainError):
    """The subject's home region is not this deployment's region."""

    code = "wrong_region"


class Unavailable(DomainError):
    """A dependency needed to complete the change safely is down; the caller may retry."""

    code = "service_unavailable"


class Throttled(DomainError):
    """Too many attempts; `retry_after` says in how many seconds to try again."""

    code = "throttled"

    def __init__(self, message: str, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code)
        self.retry_after = max(1, retry_after)
