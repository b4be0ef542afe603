"""Gateway errors: one root, HTTP errors as data rendered by one middleware."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

__all__ = [
    "BadRequest",
    "GatewayError",
    "HTTPError",
    "KafkaUnavailable",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "UnsupportedMediaType",
]


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class HTTPError(GatewayError):
    """An error answered to the client as ``status`` and a JSON array of ``{"message"}``."""

    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "An unknown error has occurred."

    def __init__(self, *messages: str, headers: dict[str, str] | None = None) -> None:
        self.messages: Sequence[str] = messages or (self.default_message,)
        self.headers = headers or {}
        super().__init__("; ".join(self.messages))


class BadRequest(HTTPError):
    """The request as a whole is malformed."""

    status = 400
    default_message = "Request has incorrect format."


class NotFound(HTTPError):
    """No data found for the given ID."""

    status = 404
    default_message = "No data found for the given deployment ID."


class PayloadTooLarge(HTTPError):
    """Body or deployment count over the limit."""

    status = 413
    default_message = "Data is too large. Submit fewer deployments in each payload."


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
