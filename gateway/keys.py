"""Typed keys of what the gateway keeps on its aiohttp Application."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import Authenticator, Principal
from gateway.bodies import BodyBudget
from gateway.events import EventCodecs
from gateway.limits import RecordLimit
from gateway.lookups import WorkerClient
from gateway.metrics import GatewayMetrics
from gateway.producer import EventProducer
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings

__all__ = [
    "AUTH",
    "BODIES",
    "CODECS",
    "FAILURES",
    "LIMITER",
    "METRICS",
    "OPENAPI",
    "PRINCIPAL",
    "PRODUCER",
    "RECORD_LIMIT",
    "SETTINGS",
    "WORKERS",
]

SETTINGS = web.AppKey("settings", GatewaySettings)
CODECS = web.AppKey("codecs", EventCodecs)
METRICS = web.AppKey("metrics", GatewayMetrics)
PRODUCER = web.AppKey("producer", EventProducer)
WORKERS = web.AppKey("workers", WorkerClient)
AUTH = web.AppKey("auth", Authenticator)
OPENAPI = web.AppKey("openapi", bytes)
LIMITER = web.AppKey("limiter", RateLimiter)
#: Failed authentications by source address (never by the client id they name).
FAILURES = web.AppKey("auth_failures", RateLimiter)
BODIES = web.AppKey("bodies", BodyBudget)
RECORD_LIMIT = web.AppKey("record_limit", RecordLimit)
PRINCIPAL = web.RequestKey("principal", Principal)
