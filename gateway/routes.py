"""The whole URL map of the gateway on one screen."""

from __future__ import annotations

from aiohttp import web

from gateway import handlers, oauth

__all__ = ["API_PREFIXES", "setup_routes"]

# The Connect form and the OAuth (on-premise) form of the same API.
API_PREFIXES = ("/rest/deployments/0.1", "/jira/deployments/0.1/cloud/{cloudId}")
DEPLOYMENT = (
    "/pipelines/{pipelineId}/environments/{environmentId}/deployments/{deploymentSequenceNumber}"
)


def setup_routes(app: web.Application) -> None:
    """Register every route."""
    for prefix in API_PREFIXES:
        app.router.add_post(prefix + "/bulk", handlers.submit_deployments)
        app.router.add_get(prefix + DEPLOYMENT, handlers.get_deployment, allow_head=False)
        app.router.add_delete(prefix + DEPLOYMENT, handlers.delete_deployment)
        app.router.add_delete(prefix + "/bulkByProperties", handlers.delete_by_properties)
        app.router.add_get(
            prefix + DEPLOYMENT + "/gating-status", handlers.get_gating_status, allow_head=False
        )
        # deploystream extension: approvers record gating decisions (APPROVE_GATING scope).
        app.router.add_post(prefix + DEPLOYMENT + "/gating-decision", handlers.decide_gating)
    app.router.add_post("/oauth/token", oauth.issue_token)
    app.router.add_get("/openapi.json", handlers.openapi_document, allow_head=False)
    app.router.add_get("/healthz", handlers.healthz, allow_head=False)
    app.router.add_get("/readyz", handlers.readyz, allow_head=False)
    app.router.add_get("/metrics", handlers.metrics, allow_head=False)
