"""Typed keys of what the gateway keeps on its aiohttp Application."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import Authenticator, Principal
from gateway.bodies import BodyBudget
from gateway.issues.replica import IssueReplica
from gateway.limits import RecordLimit
from gateway.lookups import WorkerClient
from gateway.metrics import GatewayMetrics
from gateway.producer import EventProducer
from gateway.query.client import QueryClient
from gateway.query.feed import ChangeStreams
from gateway.ratelimit import RateLimiter
from gateway.schemas import SchemaRegistration
from gateway.settings import GatewaySettings

__all__ = [
    "AUTH",
    "BODIES",
    "FAILURES",
    "ISSUES",
    "LIMITER",
    "METRICS",
    "OPENAPI",
    "PRINCIPAL",
    "PRODUCER",
    "QUERIES",
    "RECORD_LIMIT",
    "SCHEMAS",
    "SETTINGS",
    "STREAMS",
    "WORKERS",
]

SETTINGS = web.AppKey("settings", GatewaySettings)
SCHEMAS = web.AppKey("schemas", SchemaRegistration)
METRICS = web.AppKey("metrics", GatewayMetrics)
PRODUCER = web.AppKey("producer", EventProducer)
WORKERS = web.AppKey("workers", WorkerClient)
AUTH = web.AppKey("auth", Authenticator)
OPENAPI = web.AppKey("openapi", bytes)
LIMITER = web.AppKey("limiter", RateLimiter)
ISSUES = web.AppKey("issues", IssueReplica)
QUERIES = web.AppKey("queries", QueryClient)
STREAMS = web.AppKey("streams", ChangeStreams)
#: Failed authentications by source address (never by the client id they name).
FAILURES = web.AppKey("auth_failures", RateLimiter)
BODIES = web.AppKey("bodies", BodyBudget)
RECORD_LIMIT = web.AppKey("record_limit", RecordLimit)
PRINCIPAL = web.RequestKey("principal", Principal)
