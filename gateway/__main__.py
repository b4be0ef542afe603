"""``python -m gateway``: serve the Deployments API until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

from pydantic import ValidationError

from deploystream import collector
from gateway.app import create_app
from gateway.errors import GatewayError
from gateway.keys import METRICS, SCHEMAS
from gateway.server import serve
from gateway.settings import GatewaySettings


def _loop_factory(settings: GatewaySettings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if settings.event_loop == "uvloop":
        import uvloop  # noqa: PLC0415  (only when chosen)

        return uvloop.new_event_loop
    return None


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
    # Each request allocates a few hundred short-lived objects (aiohttp's request, headers,
    # the answer) and keeps none.
    collector.tune()
    with asyncio.Runner(loop_factory=_loop_factory(settings)) as runner:
        runner.run(serve(app, settings, app[METRICS]))
    # A schema the registry refused stopped the gateway: not a clean exit.
    return 2 if app[SCHEMAS].refused else 0


if __name__ == "__main__":
    sys.exit(main())
