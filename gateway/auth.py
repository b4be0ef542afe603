"""Who is calling: the tenant of a request.

Until client authentication lands, the gateway only runs in development mode, where every
request belongs to the configured development tenant. The tenant is part of every key already.
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import GatewayError
from gateway.settings import GatewaySettings

__all__ = ["Authenticator", "ConfigurationError"]


class ConfigurationError(GatewayError):
    """The gateway cannot start with these settings."""


class Authenticator:
    """Resolves the tenant of each request."""

    def __init__(self, settings: GatewaySettings) -> None:
        if not settings.dev_mode:
            msg = (
                "client authentication is not configured; set DEPLOYSTREAM_DEV_MODE=true to run "
                "the unauthenticated development mode"
            )
            raise ConfigurationError(msg)
        self._dev_tenant = settings.dev_tenant

    def tenant(self, request: web.Request) -> str:
        """The tenant that owns everything this request reads or writes."""
        del request
        return self._dev_tenant
