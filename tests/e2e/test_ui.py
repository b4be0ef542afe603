"""The web view in a real browser (Debian's Chromium driven by Playwright) against a real
stack: sign-in, the board updating live from the change stream, an environment's history a
page at a time, the issue view, a gating decision by an approver, and hostile values (markup
in names, ``javascript:`` URLs written past the gateway's validation) rendered inert.

One stack and one browser for the module. ``DEPLOYSTREAM_UI_SCREENSHOT=<file.png>`` saves
the board as the README shows it (docs/ui-board.png was taken so).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from confluent_kafka import Producer
from playwright.sync_api import BrowserContext, Page, expect

from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from gateway.events import EventCodecs, deployment_submitted
from gateway.ui.routes import CONTENT_SECURITY_POLICY
from gateway.validation import DeploymentData, validate_deployment
from schemas.registry import FramedCodec, SchemaRegistry
from tests.e2e.browser import Watched, chromium
from tests.e2e.conftest import (
    CLIENTS,
    Stack,
    secret_of,
    start_stack,
    webhook_secret_of,
    write_clients_file,
)
from tests.e2e.test_deployments_api import deployment
from tests.e2e.test_issue_registry import deliver, webhook_event

Q = "/rest/deploystream/1"
# A release manager: reads, writes and deletes its deployments and decides their gates.
RELEASES = "releases"
LIVE_MS = 20_000  # a change reaches the page through Kafka, a worker and the state topic

expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def stack(
    kafka: ProvidedBroker,
    schema_registry: ProvidedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("ui")
    releases = {
        "scopes": ["READ", "WRITE", "DELETE", "APPROVE_GATING"],
        "webhookSecret": webhook_secret_of(RELEASES),
    }
    clients = {**CLIENTS, RELEASES: releases}
    clients_file = write_clients_file(tmp / "ui-clients.yaml", clients)
    running = start_stack(
        kafka, schema_registry, tmp, env={"DEPLOYSTREAM_CLIENTS_FILE": str(clients_file)}
    )
    yield running
    running.http.close()
    running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with chromium(
        tmp_path_factory.mktemp("chromium-profile"), viewport={"width": 1280, "height": 860}
    ) as context:
        yield context


@pytest.fixture
def watched(browser: BrowserContext) -> Iterator[Watched]:
    """A new tab; after the test, it must have logged no error (a CSP violation is one)."""
    tab = Watched.open(browser)
    yield tab
    tab.page.close()
    assert tab.errors == []


def sign_in(tab: Watched, stack: Stack, client_id: str, hash_route: str = "") -> Page:
    page = tab.page
    page.goto(f"{stack.base_url}/ui/{hash_route}")
    page.get_by_label("Client id").fill(client_id)
    page.get_by_label("Client secret").fill(secret_of(client_id))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who-name")).to_have_text(client_id)
    expect(page.locator("#live")).to_have_text("Live", timeout=LIVE_MS)
    return page


def submit(stack: Stack, client_id: str, *deployments: dict[str, Any]) -> None:
    with stack.client(client_id) as http:
        response = http.post("/rest/deployments/0.1/bulk", json={"deployments": list(deployments)})
    assert response.status_code == 202, response.text
    assert response.json()["rejectedDeployments"] == []


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="seconds")


def shipped(
    pipeline: tuple[str, str],
    environment: tuple[str, str, str],
    number: int,
    state: str,
    minutes: float,
    **changes: Any,
) -> dict[str, Any]:
    """A deployment of ``pipeline`` (id, name) to ``environment`` (id, name, type)."""
    pipeline_id, pipeline_name = pipeline
    environment_id, environment_name, environment_type = environment
    fields: dict[str, Any] = {
        "displayName": f"{pipeline_name} {number // 10}.{number % 10}.0",
        "url": f"https://ci.example.com/{pipeline_id}/{number}",
        "description": f"{pipeline_name} to {environment_name}",
        "lastUpdated": ago(minutes),
        "state": state,
        "issueKeys": ["REL-1"],
        "pipeline": {
            "id": pipeline_id,
            "displayName": pipeline_name,
            "url": f"https://ci.example.com/{pipeline_id}",
        },
        "environment": {
            "id": environment_id,
            "displayName": environment_name,
            "type": environment_type,
        },
    }
    return deployment(number=number, usn=changes.pop("usn", 1), **{**fields, **changes})


def cell(page: Page, pipeline: str, environment: str) -> Any:
    return page.locator(f'td[data-pipeline="{pipeline}"][data-environment="{environment}"]')


# --- the page and its files ---------------------------------------------------------------


def test_pages_carry_a_strict_policy_and_files_are_cached_by_version(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as http:
        assert http.get("/").headers["Location"] == "/ui/"
        page = http.get("/ui/")
        assert page.status_code == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        policy = page.headers["Content-Security-Policy"]
        assert policy == CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Cache-Control"] == "no-cache"
        # No inline script or style: every script has a src, and nothing has a style.
        assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []
        assert "<style" not in page.text and "style=" not in page.text
        again = http.get("/ui/", headers={"If-None-Match": page.headers["ETag"]})
        assert again.status_code == 304 and again.content == b""

        script = re.search(r'src="(/ui/static/[0-9a-f]{12}/app\.js)"', page.text)
        assert script is not None
        app = http.get(script.group(1))
        assert app.status_code == 200
        assert app.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert app.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert app.headers["X-Content-Type-Options"] == "nosniff"
        cached = http.get(script.group(1), headers={"If-None-Match": app.headers["ETag"]})
        assert cached.status_code == 304
        # Another release's path: today's file, not cached for a year under that name.
        other = http.get("/ui/static/000000000000/app.js")
        assert other.status_code == 200 and other.headers["Cache-Control"] == "no-cache"
        assert other.content == app.content
        assert http.get(script.group(1).replace("app.js", "nope.js")).status_code == 404
        assert not any(path.startswith("/ui") for path in http.get("/openapi.json").json()["paths"])


# --- sign-in ------------------------------------------------------------------------------


def test_sign_in_keeps_credentials_out_of_urls_and_storage_and_signs_out(
    stack: Stack, watched: Watched
) -> None:
    page = watched.page
    page.goto(f"{stack.base_url}/ui/")
    # Keyboard: the id field has focus, Tab goes to the secret, then to the button.
    expect(page.get_by_label("Client id")).to_be_focused()
    page.keyboard.type(RELEASES)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Client secret")).to_be_focused()
    page.keyboard.type("not-the-secret")
    page.keyboard.press("Tab")
    button = page.get_by_role("button", name="Sign in")
    expect(button).to_be_focused()
    outline = button.evaluate("b => getComputedStyle(b).outlineStyle")
    assert outline != "none", "keyboard focus must be visible"
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Sign-in failed")
    # The browser logs the refused token request itself; nothing else may be logged.
    assert len(watched.errors) == 1 and "401" in watched.errors[0], watched.errors
    watched.errors.clear()

    page.get_by_label("Client secret").fill(secret_of(RELEASES))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Board")).to_be_visible()
    expect(page.locator("#who-name")).to_have_text(RELEASES)
    expect(page.locator("#live")).to_have_text("Live", timeout=LIVE_MS)
    stored = page.evaluate("() => JSON.stringify(sessionStorage)")
    token = orjson.loads(orjson.loads(stored)["deploystream.session"])["token"]
    assert secret_of(RELEASES) not in stored and "not-the-secret" not in stored
    assert page.evaluate("() => localStorage.length") == 0
    assert page.context.cookies() == []
    for url in watched.urls:
        assert secret_of(RELEASES) not in url and token not in url and "not-the-secret" not in url
        assert quote(token, safe="") not in url

    page.reload()  # the session lasts as long as the tab
    expect(page.locator("#who-name")).to_have_text(RELEASES)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


# --- the board, live ----------------------------------------------------------------------

STOREFRONT = ("storefront", "Storefront")
PAYMENTS = ("payments-api", "Payments API")
INDEXER = ("search-indexer", "Search indexer")
DEV = ("dev", "Development", "development")
STAGING = ("staging", "Staging", "staging")
PROD_EU = ("prod-eu", "Production EU", "production")
PROD_US = ("prod-us", "Production US", "production")


def releases_board() -> list[dict[str, Any]]:
    """What a release manager's board looks like on an ordinary afternoon."""
    return [
        shipped(STOREFRONT, DEV, 144, "in_progress", 1),
        shipped(STOREFRONT, STAGING, 143, "successful", 38),
        shipped(STOREFRONT, PROD_EU, 141, "successful", 190),
        shipped(STOREFRONT, PROD_US, 141, "successful", 185),
        shipped(PAYMENTS, DEV, 88, "successful", 12),
        shipped(PAYMENTS, STAGING, 87, "failed", 25),
        shipped(PAYMENTS, PROD_EU, 85, "rolled_back", 300),
        shipped(PAYMENTS, PROD_US, 86, "pending", 4),
        shipped(INDEXER, DEV, 23, "cancelled", 55),
        shipped(INDEXER, STAGING, 22, "successful", 1440),
        shipped(INDEXER, PROD_EU, 21, "successful", 4000),
    ]


def test_a_submitted_deployment_appears_on_the_board_without_a_reload(
    stack: Stack, watched: Watched, tmp_path: Path
) -> None:
    page = sign_in(watched, stack, RELEASES)
    expect(page.get_by_role("heading", name="Board")).to_be_visible()
    expect(cell(page, "storefront", "prod-eu")).to_have_count(0)
    page.evaluate("() => { window.sameDocument = true; }")

    submit(stack, RELEASES, *releases_board())
    shown = cell(page, "storefront", "prod-eu")
    expect(shown).to_be_visible(timeout=LIVE_MS)
    expect(cell(page, "search-indexer", "prod-eu")).to_be_visible(timeout=LIVE_MS)
    expect(shown).to_contain_text("Successful")
    expect(shown).to_contain_text("#141")
    expect(shown).to_contain_text("ago")
    name = shown.get_by_role("link", name="Storefront 14.1.0")
    expect(name).to_have_attribute("href", "https://ci.example.com/storefront/141")
    expect(cell(page, "payments-api", "staging")).to_contain_text("Failed")
    expect(cell(page, "payments-api", "staging")).to_have_class(re.compile(r"\bstate-failed\b"))
    # Environments from development to production, pipelines by name; nothing wider than
    # the window at 1280 px.
    headers = page.locator("table.board thead th").all_inner_texts()
    assert [h.split("\n")[0] for h in headers] == [
        "Pipeline",
        "Development",
        "Staging",
        "Production EU",
        "Production US",
    ]
    rows = page.locator("table.board tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.pipeline)"
    )
    assert rows == ["payments-api", "search-indexer", "storefront"]
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    screenshot = Path(os.environ.get("DEPLOYSTREAM_UI_SCREENSHOT") or tmp_path / "board.png")
    page.set_viewport_size({"width": 1280, "height": 560})  # the board, not empty page below
    page.screenshot(path=str(screenshot), full_page=True, animations="disabled")
    page.set_viewport_size({"width": 1280, "height": 860})
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A later deployment takes the cell; an older one arriving late does not.
    submit(stack, RELEASES, shipped(STOREFRONT, PROD_EU, 143, "in_progress", 0))
    expect(shown).to_contain_text("#143", timeout=LIVE_MS)
    expect(shown).to_contain_text("In progress")
    submit(stack, RELEASES, shipped(STOREFRONT, PROD_EU, 142, "failed", 0))
    submit(stack, RELEASES, shipped(STOREFRONT, PROD_EU, 143, "successful", 0, usn=2))
    expect(shown).to_contain_text("Successful", timeout=LIVE_MS)
    expect(shown).to_contain_text("#143")
    # A deleted latest deployment gives its cell back to the one before; the last one, the cell.
    with stack.client(RELEASES) as http:
        for pipeline, environment, number in [
            ("storefront", "prod-eu", 143),
            ("payments-api", "prod-us", 86),
        ]:
            assert http.delete(stack.path(pipeline, environment, number)).status_code == 202
    expect(shown).to_contain_text("#142", timeout=LIVE_MS)
    expect(shown).to_contain_text("Failed")
    expect(cell(page, "payments-api", "prod-us")).to_have_count(0, timeout=LIVE_MS)
    assert page.evaluate("() => window.sameDocument") is True, "the page was reloaded"

    # Phone width: the board stacks, nothing scrolls sideways, each cell names its environment.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    expect(shown.locator(".env-label")).to_be_visible()
    expect(shown.locator(".env-label")).to_have_text("Production EU")
    page.set_viewport_size({"width": 1280, "height": 860})


# --- history and the issue view -------------------------------------------------------------

DOCS = ("docs-site", "Docs site")
PREVIEW = ("preview", "Preview", "testing")
DOCS_PROD = ("production", "Production", "production")


def test_history_pages_through_an_environment_and_the_issue_view_shows_where_it_is_live(
    stack: Stack, watched: Watched
) -> None:
    # What the issue registry knows, as Jira's webhook tells it.
    assert deliver(
        stack, webhook_event("jira:issue_created", "REL-8", "10008"), RELEASES
    ).is_success
    with stack.client(RELEASES) as http:
        deadline = time.monotonic() + 30
        while "issue" not in http.get(f"{Q}/issues/REL-8/deployments").json():
            assert time.monotonic() < deadline, "the gateway never learnt of REL-8"
            time.sleep(0.2)
    submit(
        stack,
        RELEASES,
        *[
            shipped(DOCS, PREVIEW, n, "successful", 100 - n, issueKeys=[f"DOC-{n}"])
            for n in range(1, 22)
        ],
        shipped(DOCS, PREVIEW, 22, "successful", 2, issueKeys=["REL-8"]),
        shipped(DOCS, PREVIEW, 23, "failed", 1, issueKeys=["REL-8"]),
        shipped(DOCS, DOCS_PROD, 22, "successful", 1, issueKeys=["REL-8"]),
    )
    # Pages are counted below: every deployment must be applied before the history opens
    # (one applied later arrives live, at the top, and is a row more on the first page).
    with stack.client(RELEASES) as http:
        deadline = time.monotonic() + 30
        listed = f"{Q}/pipelines/docs-site/environments/preview/deployments?limit=50"
        while len(http.get(listed).json()["values"]) < 23:
            assert time.monotonic() < deadline, "the workers never applied all 23"
            time.sleep(0.2)
    page = sign_in(watched, stack, RELEASES)
    history = cell(page, "docs-site", "preview").get_by_role("link", name="History of Preview")
    expect(history).to_be_visible(timeout=LIVE_MS)
    history.click()
    expect(page.get_by_role("heading", name="History of Preview")).to_be_visible()
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(20)
    older = page.get_by_role("button", name="Load older deployments")
    older.click()
    expect(rows).to_have_count(23)
    expect(older).to_be_hidden()
    numbers = [int(n) for n in rows.evaluate_all("rs => rs.map(r => r.dataset.number)")]
    assert numbers == list(range(23, 0, -1))

    page.get_by_role("navigation").get_by_role("link", name="Issues").click()
    page.get_by_label("Issue key").fill("REL-8")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#/issues/REL-8$"))
    expect(page.get_by_text("Summary of REL-8")).to_be_visible(timeout=LIVE_MS)
    expect(page.locator(".issue-status")).to_have_text("In Progress")
    expect(page.locator(".live-in")).to_have_text("Live in Docs site / Production")
    places = page.locator(".places li")
    expect(places).to_have_count(2)
    expect(page.locator('.places li[data-environment="preview"]')).to_contain_text("Failed")
    expect(page.locator("table.list tbody tr")).to_have_count(3)


# --- gating -----------------------------------------------------------------------------------

CHECKOUT = ("checkout", "Checkout")
CHECKOUT_PROD = ("prod", "Production", "production")
GATED = [{"command": "initiate_deployment_gating"}]


def test_an_approver_allows_an_awaiting_gate_and_others_get_no_buttons(
    stack: Stack, watched: Watched, browser: BrowserContext
) -> None:
    submit(stack, RELEASES, shipped(CHECKOUT, CHECKOUT_PROD, 7, "pending", 1, commands=GATED))
    page = sign_in(watched, stack, RELEASES)
    number = cell(page, "checkout", "prod").get_by_role("link", name="Deployment 7: details")
    expect(number).to_be_visible(timeout=LIVE_MS)
    number.click()
    expect(page.get_by_role("heading", name="Checkout 0.7.0")).to_be_visible()
    gating = page.locator("section.gating")
    expect(gating).to_contain_text("Awaiting approval", timeout=LIVE_MS)
    expect(gating.get_by_role("link", name="REL-1")).to_have_attribute(
        "href", "https://jira.test/browse/REL-1"
    )
    # By keyboard: the reason, then Tab to Allow, Enter.
    page.get_by_label("Reason (optional)").fill("change window open")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Allow")).to_be_focused()
    page.keyboard.press("Enter")
    expect(gating).to_contain_text("Allowed", timeout=LIVE_MS)
    expect(gating.get_by_role("button")).to_have_count(0)
    with stack.client(RELEASES) as http:
        status = http.get(
            "/rest/deployments/0.1/pipelines/checkout/environments/prod/deployments/7/gating-status"
        )
    assert status.json()["gatingStatus"] == "allowed"

    # alpha may read its own gate but not decide it: no buttons. A deep link survives sign-in.
    submit(stack, "alpha", shipped(CHECKOUT, CHECKOUT_PROD, 8, "pending", 1, commands=GATED))
    other = Watched.open(browser)
    try:
        page = sign_in(other, stack, "alpha", "#/deployments/checkout/prod/8")
        gating = page.locator("section.gating")
        expect(gating).to_contain_text("Awaiting approval", timeout=LIVE_MS)
        expect(gating).to_contain_text("An approver")
        expect(page.get_by_role("button", name="Allow")).to_have_count(0)
        expect(page.get_by_role("button", name="Prevent")).to_have_count(0)
    finally:
        other.page.close()
    assert other.errors == []


# --- hostile values ---------------------------------------------------------------------------

MARKUP = {
    "displayName": "<img src=x onerror=\"window.hacked='name'\">",
    "description": "<script>window.hacked='description'</script>",
    "label": '"><svg onload="window.hacked=\'label\'">',
}


def submit_past_validation(stack: Stack, tenant: str, item: dict[str, Any], **raw: Any) -> None:
    """Write a submission straight to the topic with ``raw`` fields the gateway would refuse
    (a ``javascript:`` URL): any producer can, and the page must stay safe."""
    validated = validate_deployment(orjson.dumps(item))
    assert isinstance(validated, DeploymentData), validated
    with SchemaRegistry(stack.config.registry_url) as registry:
        events = FramedCodec("DeploymentEvent", registry)
        events.register(f"{stack.config.topic}-value")
        codecs = EventCodecs(events)
        event = deployment_submitted(codecs, tenant, validated, {}, None)
        record = codecs.event.decode(event.value)
        stored = record["payload"][1]["deployment"]
        for name, value in raw.items():
            if isinstance(value, dict):
                stored[name] = {**stored[name], **value}
            else:
                stored[name] = value
        value = codecs.event.encode(record)
    producer = Producer(
        {"bootstrap.servers": stack.config.bootstrap, "partitioner": "murmur2_random"}
    )
    producer.produce(stack.config.topic, value, event.key)
    assert producer.flush(30) == 0


def test_markup_and_javascript_urls_in_deployments_are_rendered_inert(
    stack: Stack, watched: Watched
) -> None:
    page = sign_in(watched, stack, "alpha")
    hostile = ("<b onmouseover=\"window.hacked='pipeline'\">evil</b>", "Evil")
    submit(
        stack,
        "alpha",
        shipped(("evil", hostile[0]), ("env", "<i>env</i>", "testing"), 1, "failed", 1, **MARKUP),
    )
    submit_past_validation(
        stack,
        "alpha",
        shipped(("evil", "Evil"), ("js", "JS", "staging"), 2, "successful", 1),
        url="javascript:window.hacked='url'",
        pipeline={"url": " JaVaScRiPt:window.hacked='pipeline-url'"},
    )
    submit_past_validation(
        stack,
        "alpha",
        shipped(("evil", "Evil"), ("data", "Data", "production"), 3, "successful", 1),
        url="data:text/html,<script>window.hacked='data'</script>",
    )
    marked = cell(page, "evil", "env")
    expect(marked).to_be_visible(timeout=LIVE_MS)
    expect(cell(page, "evil", "js")).to_be_visible(timeout=LIVE_MS)
    expect(cell(page, "evil", "data")).to_be_visible(timeout=LIVE_MS)
    expect(marked.locator(".cell-name")).to_have_text(MARKUP["displayName"])
    expect(page.locator("table.board thead")).to_contain_text("<i>env</i>")

    script_url = cell(page, "evil", "js").get_by_text("Evil 0.2.0")
    expect(script_url).to_have_class(re.compile(r"\bunlinked\b"))
    script_url.click()
    page.locator("th.pipeline").first.hover()
    marked.get_by_role("link", name="Deployment 1: details").click()
    expect(page.get_by_role("heading", name=MARKUP["displayName"])).to_be_visible()
    expect(page.locator(".facts")).to_contain_text(MARKUP["description"])
    expect(page.locator(".facts")).to_contain_text(MARKUP["label"])
    page.go_back()
    cell(page, "evil", "js").get_by_role("link", name="Deployment 2: details").click()
    expect(page.locator(".facts")).to_contain_text("javascript:window.hacked='url'")
    expect(page.locator(".facts")).to_contain_text("not linked")

    assert page.evaluate("() => window.hacked") is None
    assert page.locator("main img, main svg, main script, main iframe, main b, main i").count() == 0
    hrefs = page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.href)")
    assert hrefs and all(h.startswith(("http://", "https://")) for h in hrefs), hrefs
    assert not any(url.endswith("/x") for url in watched.urls), "the <img> must not load"
    # The page's own check, as the board and details use it.
    checks = page.evaluate(
        """async () => {
            const src = document.querySelector('script[type=module]').src;
            const { safeHref } = await import(new URL('dom.js', src));
            return [
                'javascript:alert(1)', ' JavaScript:alert(1)', 'java\\tscript:alert(1)',
                'data:text/html,x', 'vbscript:x', '/relative', 'https://ok.example/a b',
            ].map(safeHref);
        }"""
    )
    assert checks == [None, None, None, None, None, None, "https://ok.example/a%20b"]
