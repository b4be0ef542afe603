"""``POST /oauth/token``: the OAuth 2.0 client credentials grant (RFC 6749 section 4.4).

Errors use OAuth's shape. Wrong secrets are throttled by the address they come from, never by
the client id they name, and only a client that authenticated gets a rate-limit bucket.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from gateway.clients import Scope
from gateway.errors import BadRequest, OAuthError, TooManyRequests
from gateway.handlers import JSON, json_response, read_body
from gateway.keys import AUTH, FAILURES, LIMITER
from gateway.middleware import client_source
from gateway.validation import reject_duplicate_keys

__all__ = ["issue_token"]

FORM = "application/x-www-form-urlencoded"


async def _token_request(request: web.Request) -> dict[str, str]:
    body = await read_body(request, 16 * 1024)
    if request.content_type == JSON:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise OAuthError("invalid_request", "The body is not valid JSON.") from exc
        if not isinstance(data, dict):
            raise OAuthError("invalid_request", "The body must be a JSON object.")
        try:
            reject_duplicate_keys(body.decode("utf-8"))
        except (BadRequest, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_request", "Each parameter may be given once.") from exc
        return {str(k): v for k, v in data.items() if isinstance(v, str)}
    if request.content_type == FORM:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OAuthError("invalid_request", "The body is not UTF-8.") from exc
        pairs = parse_qsl(text, keep_blank_values=True)
        form = dict(pairs)
        if len(form) != len(pairs):
            raise OAuthError("invalid_request", "Each parameter may be given once.")
        return form
    raise OAuthError("invalid_request", f"Send the token request as {JSON} or {FORM}.")


async def issue_token(request: web.Request) -> web.Response:
    """``POST /oauth/token``: OAuth 2.0 client credentials → a short-lived access token."""
    app = request.app
    form = await _token_request(request)
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic ") and client_id is None:
        # client_secret_basic (RFC 6749 section 2.3.1)
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "Client authentication failed.", status=401) from exc
        client_id, _, client_secret = decoded.partition(":")
    if form.get("grant_type") != "client_credentials":
        raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials.")
    if not client_id or not client_secret:
        raise OAuthError("invalid_request", "client_id and client_secret are required.")
    # Wrong secrets are throttled by where they come from, never by the client id they name:
    # guessing at a client's secret must not lock the client out. A source over its limit
    # is refused before its credentials are even checked.
    source = client_source(request)
    failures = app[FAILURES].peek(source)
    if not failures.allowed:
        raise TooManyRequests(headers={"Retry-After": str(failures.retry_after_s)})
    client = app[AUTH].client_credentials(client_id, client_secret)
    if client is None:
        app[FAILURES].take(source)
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    # Only a client that authenticated gets a bucket: unknown ids cost no memory.
    verdict = app[LIMITER].take(
        f"token:{client.id}", rate=client.rate_limit_per_s, burst=client.rate_limit_burst
    )
    if not verdict.allowed:
        raise TooManyRequests(headers=verdict.headers())
    requested = form.get("scope", "").split()
    try:
        scopes = frozenset(Scope.parse(name) for name in requested) or client.scopes
    except ValueError as exc:
        raise OAuthError("invalid_scope", str(exc)) from exc
    if not scopes <= client.scopes:
        raise OAuthError("invalid_scope", "The client is not allowed the requested scope.")
    response = json_response(app[AUTH].issue_token(client, scopes))
    response.headers["Cache-Control"] = "no-store"
    return response
