"""``python -m gateway``: serve the Deployments API until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys

from pydantic import ValidationError

from gateway.app import create_app
from gateway.errors import GatewayError
from gateway.keys import METRICS, SCHEMAS
from gateway.server import serve
from gateway.settings import GatewaySettings


def main() -> int:
    """Build settings once, then serve; SIGTERM drains in-flight requests."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("gateway")
    try:
        settings = GatewaySettings.load()
        app = create_app(settings)
    except (GatewayError, ValidationError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    asyncio.run(serve(app, settings, app[METRICS]))
    # A schema the registry refused stopped the gateway: not a clean exit.
    return 2 if app[SCHEMAS].refused else 0


if __name__ == "__main__":
    sys.exit(main())
