"""The whole URL map of the gateway on one screen."""

from __future__ import annotations

from aiohttp import web

from gateway import handlers, oauth
from gateway.issues import webhook
from gateway.query import changes
from gateway.query import handlers as queries
from gateway.ui.routes import setup_ui_routes

__all__ = ["API_PREFIXES", "QUERY_PREFIXES", "setup_routes"]

# The Connect form and the OAuth (on-premise) form of the same API.
API_PREFIXES = ("/rest/deployments/0.1", "/jira/deployments/0.1/cloud/{cloudId}")
# deploystream's own API, in the same two forms.
QUERY_PREFIXES = ("/rest/deploystream/1", "/jira/deploystream/1/cloud/{cloudId}")
ENVIRONMENTS = "/pipelines/{pipelineId}/environments"
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
    for prefix in QUERY_PREFIXES:
        get = app.router.add_get
        get(prefix + "/issues/{issueKey}/deployments", queries.issue_deployments, allow_head=False)
        get(prefix + "/pipelines", queries.list_pipelines, allow_head=False)
        get(prefix + ENVIRONMENTS, queries.pipeline_environments, allow_head=False)
        get(
            prefix + ENVIRONMENTS + "/{environmentId}/deployments",
            queries.environment_deployments,
            allow_head=False,
        )
        get(prefix + "/changes", changes.changes, allow_head=False)
    # deploystream extension: Jira's issue webhooks feed the issue registry (signed, per tenant).
    app.router.add_post("/rest/deploystream/1/jira-webhook/{tenant}", webhook.receive_jira_webhook)
    app.router.add_post("/oauth/token", oauth.issue_token)
    # Where tools that start from the site URL discover the cloudId of the OAuth URL form.
    app.router.add_get("/_edge/tenant_info", handlers.tenant_info, allow_head=False)
    app.router.add_get("/openapi.json", handlers.openapi_document, allow_head=False)
    app.router.add_get("/healthz", handlers.healthz, allow_head=False)
    app.router.add_get("/readyz", handlers.readyz, allow_head=False)
    app.router.add_get("/metrics", handlers.metrics, allow_head=False)
    # The web view at /ui/ (and / to it): pages over the API above, not API operations.
    setup_ui_routes(app)
