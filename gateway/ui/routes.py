"""The web view's routes: the page at ``/ui/``, its files under ``/ui/static/<version>/``.

These are pages, not API operations: no credentials (the page signs in with the API's own
token endpoint and calls the API from the browser), and not in ``/openapi.json``. Every
answer carries a strict Content-Security-Policy: scripts, styles and connections from this
origin only, nothing inline, no framing, and Trusted Types required, so even a mistaken
``innerHTML`` with data would throw instead of parsing it.
"""

from __future__ import annotations

from types import MappingProxyType

from aiohttp import web

from gateway.ui.assets import Asset, Assets, load_assets

__all__ = ["CONTENT_SECURITY_POLICY", "UI_ASSETS", "setup_ui_routes"]

UI_ASSETS = web.AppKey("ui_assets", Assets)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        # Forms are handled by the page's scripts; none is ever submitted by the browser, so
        # a secret typed into the sign-in form can never end up in a URL.
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
SECURITY_HEADERS = MappingProxyType(
    {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
)
PAGE = "/ui/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _serve(request: web.Request, asset: Asset, cache_control: str) -> web.Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": cache_control}
    if etag_matches(request.headers.get("If-None-Match"), asset.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})


async def page(request: web.Request) -> web.Response:
    """``GET /ui/``: the web view (one page; its views are routed in the browser)."""
    return _serve(request, request.app[UI_ASSETS].index, REVALIDATE)


async def static_file(request: web.Request) -> web.Response:
    """``GET /ui/static/{version}/{name}``: one of the page's files."""
    assets = request.app[UI_ASSETS]
    asset = assets.files.get(request.match_info["name"])
    if asset is None:
        return web.Response(
            status=404, text="Not found.", headers={**SECURITY_HEADERS, "Cache-Control": REVALIDATE}
        )
    if request.match_info["version"] == assets.version:
        return _serve(request, asset, IMMUTABLE)
    # A page of another release (another gateway during a rolling upgrade): today's file,
    # never cached under a name that promises another content.
    return _serve(request, asset, REVALIDATE)


async def to_page(request: web.Request) -> web.Response:
    """``GET /`` and ``GET /ui``: to the web view."""
    del request
    raise web.HTTPFound(PAGE, headers=SECURITY_HEADERS)


def setup_ui_routes(app: web.Application) -> None:
    """Read the web view's files and register its routes."""
    app[UI_ASSETS] = load_assets()
    app.router.add_get("/", to_page, allow_head=False)
    app.router.add_get("/ui", to_page, allow_head=False)
    app.router.add_get(PAGE, page, allow_head=False)
    app.router.add_get("/ui/static/{version}/{name:.+}", static_file, allow_head=False)
