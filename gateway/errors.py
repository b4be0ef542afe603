"""Gateway errors: one root, HTTP errors as data rendered by one middleware."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import ClassVar

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "HTTPError",
    "KafkaUnavailable",
    "NotFound",
    "OAuthError",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
]


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class HTTPError(GatewayError):
    """An error answered to the client as ``status`` and a JSON array of ``{"message"}``.

    Subclasses are data: a docstring, ``status``, ``default_message`` and, where the answer
    always carries some, ``default_headers``.
    """

    status: int = 500
    default_message: ClassVar[str] = "An unknown error has occurred."
    default_headers: ClassVar[Mapping[str, str]] = MappingProxyType({})
    #: Close the connection after answering (the client is not to be trusted with it).
    close_connection: ClassVar[bool] = False

    def __init__(self, *messages: str, headers: Mapping[str, str] | None = None) -> None:
        self.messages: Sequence[str] = messages or (self.default_message,)
        # A dict of its own: the middleware adds rate-limit headers to it.
        self.headers = {**self.default_headers, **(headers or {})}
        super().__init__("; ".join(self.messages))

    def body(self) -> object:
        """The JSON body: the API's documented ``[{"message": ...}]``."""
        return [{"message": m} for m in self.messages]


class BadRequest(HTTPError):
    """The request as a whole is malformed."""

    status = 400
    default_message = "Request has incorrect format."


class Unauthorized(HTTPError):
    """Missing, malformed, expired or wrongly signed credentials. Never says which."""

    status = 401
    default_message = "Unauthorized: missing or invalid credentials."
    default_headers = MappingProxyType(
        {"WWW-Authenticate": 'Bearer realm="deploystream", JWT, Basic realm="deploystream"'}
    )


class Forbidden(HTTPError):
    """Authenticated, but without the scope this operation requires."""

    status = 403
    default_message = "Forbidden: the client lacks the scope this operation requires."


class TooManyRequests(HTTPError):
    """The client's rate limit is exhausted."""

    status = 429
    default_message = "API rate limit has been exceeded."


class OAuthError(HTTPError):
    """An error of the token endpoint, in OAuth 2.0's shape (RFC 6749 section 5.2)."""

    status = 400

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status

    def body(self) -> object:
        """``{"error": ..., "error_description": ...}``."""
        return {"error": self.error, "error_description": self.messages[0]}


class NotFound(HTTPError):
    """No data found for the given ID."""

    status = 404
    default_message = "No data found for the given deployment ID."


class Conflict(HTTPError):
    """The request does not fit the current state of the resource."""

    status = 409
    default_message = "The request conflicts with the current state."


class PayloadTooLarge(HTTPError):
    """Body or deployment count over the limit."""

    status = 413
    default_message = "Data is too large. Submit fewer deployments in each payload."


class RequestTimeout(HTTPError):
    """The body did not arrive in time; the connection is closed after the answer."""

    status = 408
    default_message = "The request body did not arrive in time."
    close_connection = True


class UnsupportedMediaType(HTTPError):
    """Body is not ``application/json``."""

    status = 415
    default_message = "Content-Type must be application/json."


class ServiceUnavailable(HTTPError):
    """A dependency (Kafka, a worker) cannot serve right now; the client should retry."""

    status = 503
    default_message = "Service is unavailable; retry later."


class KafkaUnavailable(ServiceUnavailable):
    """Kafka did not acknowledge the events in time; nothing was reported accepted."""

    default_message = "Kafka did not acknowledge the submission in time; retry later."
