"""``python -m gateway``: serve the Deployments API until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from gateway.app import create_app
from gateway.errors import GatewayError
from gateway.keys import SCHEMAS
from gateway.settings import GatewaySettings


def main() -> int:
    """Build settings once, then run the app; SIGTERM drains in-flight requests."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = GatewaySettings()
    try:
        app = create_app(settings)
    except GatewayError as exc:
        logging.getLogger("gateway").error("cannot start: %s", exc)
        return 2
    web.run_app(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        shutdown_timeout=settings.produce_timeout_s + 5,
        access_log=None,
        print=None,
    )
    # A schema the registry refused stopped the gateway: not a clean exit.
    return 2 if app[SCHEMAS].refused else 0


if __name__ == "__main__":
    sys.exit(main())
