"""The shared secret on ``/internal/...`` calls (gateway → worker, worker → worker).

Lookups read any tenant's data, so a worker answers them only to callers that present
``DEPLOYSTREAM_INTERNAL_SECRET`` in :data:`INTERNAL_SECRET_HEADER`, compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from pydantic import SecretStr

__all__ = ["INTERNAL_SECRET_HEADER", "MIN_SECRET_CHARS", "check_secret", "is_authorized"]

INTERNAL_SECRET_HEADER = "X-Deploystream-Internal-Secret"  # noqa: S105 (a header name)
MIN_SECRET_CHARS = 32


def check_secret(secret: SecretStr | None) -> str | None:
    """Why ``secret`` cannot be used, or ``None`` when it can."""
    if secret is None:
        return "DEPLOYSTREAM_INTERNAL_SECRET is required (the gateway's too)"
    if len(secret.get_secret_value()) < MIN_SECRET_CHARS:
        return f"DEPLOYSTREAM_INTERNAL_SECRET must be at least {MIN_SECRET_CHARS} characters"
    return None


def is_authorized(headers: Mapping[str, str], secret: SecretStr | None) -> bool:
    """True when ``headers`` carry the internal secret (never without a usable secret)."""
    if check_secret(secret) is not None:
        return False
    assert secret is not None
    presented = headers.get(INTERNAL_SECRET_HEADER, "")
    return hmac.compare_digest(presented.encode(), secret.get_secret_value().encode())
