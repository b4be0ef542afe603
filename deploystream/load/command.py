"""The ``deploystream load`` command: generated deployments, sent, summarised."""

from __future__ import annotations

import asyncio

import click
import orjson

from deploystream.load.driver import API, MAX_DURATION_S, Auth, Request, drive
from deploystream.load.generator import DeploymentGenerator, GeneratorConfig
from deploystream.load.results import format_summary

__all__ = ["load"]


@click.command("load")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="Base URL.")
@click.option("--client-id", envvar="DEPLOYSTREAM_CLIENT_ID", help="Client id (the tenant).")
@click.option(
    "--client-secret",
    envvar="DEPLOYSTREAM_CLIENT_SECRET",
    help="Client secret: OAuth client credentials (or the API token with --basic).",
)
@click.option("--token", envvar="DEPLOYSTREAM_TOKEN", help="A Bearer token to send as is.")
@click.option("--basic", is_flag=True, help="Send Basic client-id:client-secret instead of OAuth.")
@click.option("--rate", type=float, help="Requests per second (open loop); default closed loop.")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight (max).")
@click.option("--duration", default=10.0, show_default=True, help="Seconds (at most 3600).")
@click.option("--requests", "max_requests", type=int, help="Stop after this many requests.")
@click.option("--bulk-size", default=10, show_default=True, help="Deployments per request.")
@click.option("--out-of-order", default=0.05, show_default=True, help="Late updates fraction.")
@click.option("--pipelines", default=24, show_default=True, help="Distinct pipelines.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same deployments.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def load(
    url: str,
    client_id: str | None,
    client_secret: str | None,
    token: str | None,
    basic: bool,
    rate: float | None,
    concurrency: int,
    duration: float,
    max_requests: int | None,
    bulk_size: int,
    out_of_order: float,
    pipelines: int,
    seed: int,
    as_json: bool,
) -> None:
    """Send realistic deployments to URL and print rate, statuses and latency percentiles."""
    if token:
        auth = Auth.bearer(token)
    elif client_id and client_secret:
        auth = (
            Auth.basic(client_id, client_secret) if basic else Auth.oauth(client_id, client_secret)
        )
    else:
        msg = "give --token, or --client-id and --client-secret"
        raise click.UsageError(msg)
    if not 1 <= bulk_size <= 100:
        msg = "--bulk-size must be between 1 and 100 (the API's limit)"
        raise click.UsageError(msg)
    if concurrency < 1 or duration <= 0 or (rate is not None and rate <= 0):
        msg = "--concurrency, --duration and --rate must be positive"
        raise click.UsageError(msg)
    if duration > MAX_DURATION_S:
        msg = f"--duration is at most {MAX_DURATION_S:.0f}s"
        raise click.UsageError(msg)
    try:
        config = GeneratorConfig(seed=seed, out_of_order=out_of_order, pipelines=pipelines)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    generator = DeploymentGenerator(config)
    path = f"{API}/bulk"

    def next_request() -> Request:
        return Request("POST", path, generator.encoded_body(bulk_size), bulk_size)

    result = asyncio.run(
        drive(
            url,
            auth,
            next_request,
            concurrency=concurrency,
            rate=rate,
            duration_s=duration,
            max_requests=max_requests,
        )
    )
    if as_json:
        late = generator.late / generator.generated if generator.generated else 0.0
        summary = result.summary() | {"outOfOrderFraction": round(late, 4)}
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(format_summary(result, generator))
