"""Domain errors: what commands and queries raise when a request cannot be done as asked.

    DomainError
    ├── NotFound        a thing the request names does not exist              -> 404
    ├── Conflict        it clashes with what exists (a name taken, ...)        -> 409
    ├── Forbidden       reserved or protected: no request can do it            -> 403
    ├── Busy            contended; the same request may succeed later          -> 503 + Retry-After
    ├── Unprocessable   well-formed, but not a request that can be carried out -> 422
    └── BadRequest      refused where Prefect answers 400 (a bad parameter template, ...) -> 400

They say what went wrong in domain terms, for a person; the API's error middleware is the one
place that turns them into HTTP answers (Prefect's {"detail": ...} shape), and the CLI prints
them. Commands never build HTTP responses.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a command or query raises for a request it cannot carry out."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class Unprocessable(DomainError):
    pass


class Forbidden(DomainError):
    pass


class BadRequest(DomainError):
    pass


class Busy(DomainError):
    """The resource stayed contended for every attempt; ``retry_after`` seconds is a fair wait."""

    def __init__(self, detail: str, *, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


__all__ = ["BadRequest", "Busy", "Conflict", "DomainError", "Forbidden", "NotFound", "Unprocessable"]
