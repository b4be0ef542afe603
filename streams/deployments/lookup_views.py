"""Batched lookups (``POST /internal/lookups``) and the assignment the gateway routes by.

The gateway sends each worker the keys of the partitions that worker owns (it learns who owns
what from ``GET /internal/assignment``, every second) in one request per batch of concurrent
lookups, and gets back each one rendered as the API answers it: one hop, one request for
many lookups, JSON rendered once. A key whose partition the worker does not own (the
gateway's map is a moment behind a rebalance) is forwarded, batched per owner, once; when
the owner does not answer, or the partition is moving or recovering, that key's answer is
"retry" and the gateway asks again.

Wire format: :mod:`schemas.lookups`. Only callers presenting the internal secret are
answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import faust
import orjson
from faust.web import Request, Response, View
from pydantic import SecretStr
from yarl import URL

from schemas.lookups import (
    BINARY,
    Answer,
    Status,
    decode_answers,
    decode_keys,
    encode_answers,
    encode_keys,
    partition_of,
)
from streams.deployments.renderings import Listings, Renderer
from streams.deployments.views import (
    FORWARD_TIMEOUT,
    FORWARDED_HEADER,
    render_deployment,
    without_nulls,
)
from streams.internal_auth import is_authorized
from streams.metrics import WorkerMetrics
from streams.web import is_ready

__all__ = [
    "ASSIGNMENT_PATH",
    "LOOKUPS_PATH",
    "RENDERINGS",
    "LookupServer",
    "register_lookup_views",
]

LOOKUPS_PATH = "/internal/lookups"
ASSIGNMENT_PATH = "/internal/assignment"
JSON = "application/json"

#: How a found deployment is rendered, by the request's ``view``: ``deployment`` is the
#: contract's DeploymentData (the body of a lookup), ``stored`` also has its properties,
#: provider metadata and gating (what the gateway's gating endpoints need).
RENDERINGS: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "deployment": lambda stored: orjson.dumps(without_nulls(stored["deployment"])),
    "stored": lambda stored: orjson.dumps(render_deployment(stored)),
}


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", url.port or 80)


@dataclass
class LookupServer:
    """What answers the lookups of one worker: its table and where the others are."""

    app: faust.App
    table: Any
    topic: tuple[str, int]
    decode: Callable[[bytes], dict[str, Any]]
    metrics: WorkerMetrics
    rebuilding: Callable[[], bool]
    internal: dict[str, str]
    renderer: Renderer | None = None

    @property
    def me(self) -> URL:
        """This worker's advertised URL."""
        return URL(str(self.app.conf.canonical_url))

    def ready(self) -> bool:
        """Tables recovered, no rebalance and no index rebuild under way."""
        return is_ready(self.app) and not self.rebuilding()

    def owned(self) -> set[int]:
        """The partitions this worker applies (and so whose table it answers for)."""
        topic = self.topic[0]
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    def read(
        self, key: bytes, partition: int, view: str, opened: dict[int, Listings] | None = None
    ) -> Answer:
        """``key`` from its partition's RocksDB, rendered: a ``deployment`` from the listing
        kept beside it (streams.deployments.renderings), when there is a renderer. ``opened``
        keeps the partitions' listings for the keys of one request."""
        db = self.table.data._dbs.get(partition)
        if db is None:
            return Answer(Status.RETRY, b"partition not open here yet")
        if view == "deployment" and self.renderer is not None:
            opened = {} if opened is None else opened
            listings = opened.get(partition)
            if listings is None:
                listings = opened[partition] = self.renderer.listings(db)
            listed = listings.current(key)
            if listed is None:
                self.metrics.lookups.labels("missing").inc()
                return Answer(Status.ABSENT)
            self.metrics.lookups.labels("found").inc()
            return Answer(Status.FOUND, listed.lookup)
        raw = db.get(key)
        if raw is None:
            self.metrics.lookups.labels("missing").inc()
            return Answer(Status.ABSENT)
        self.metrics.lookups.labels("found").inc()
        return Answer(Status.FOUND, RENDERINGS[view](self.decode(raw)))

    async def forward(self, owner: URL, keys: list[bytes], view: str) -> list[Answer]:
        """Ask ``owner`` for ``keys``, once; "retry" for every key when it does not answer."""
        url = owner.with_path(LOOKUPS_PATH).with_query(view=view)
        headers = {FORWARDED_HEADER: str(self.me), "Content-Type": BINARY, **self.internal}
        try:
            async with self.app.http_client.post(
                url, data=encode_keys(keys), headers=headers, timeout=FORWARD_TIMEOUT
            ) as response:
                body = await response.read()
                if response.status != 200:
                    why = f"owner {owner} answered {response.status}".encode()
                    return [Answer(Status.RETRY, why)] * len(keys)
            self.metrics.lookups.labels("forwarded").inc(len(keys))
            return decode_answers(body, len(keys))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            why = f"owner {owner} unreachable ({type(exc).__name__})".encode()
            return [Answer(Status.RETRY, why)] * len(keys)

    async def answer(self, keys: list[bytes], view: str, forwarded: bool) -> list[Answer]:
        """One answer per key: read here, forwarded to its owner (unless this request was
        forwarded already), or "retry"."""
        if not self.ready():
            self.metrics.lookups.labels("unavailable").inc(len(keys))
            return [Answer(Status.RETRY, b"rebalance or recovery under way")] * len(keys)
        mine, me, partitions = self.owned(), _ident(self.me), self.topic[1]
        answers: list[Answer] = [_NOBODY] * len(keys)
        elsewhere: dict[URL, list[int]] = {}
        opened: dict[int, Listings] = {}
        for index, key in enumerate(keys):
            partition = partition_of(key, partitions)
            if partition in mine:
                answers[index] = self.read(key, partition, view, opened)
                continue
            try:
                owner: URL | None = URL(str(self.app.router.key_store(self.table.name, key)))
            except (KeyError, TypeError):
                owner = None  # no assignment yet, or no metadata for the topic yet
            if owner is None or forwarded or _ident(owner) == me:
                # Nobody, or we ourselves per a router one step behind: asked again later.
                self.metrics.lookups.labels("unavailable").inc()
            else:
                elsewhere.setdefault(owner, []).append(index)
        if elsewhere:
            groups = list(elsewhere.items())
            results = await asyncio.gather(
                *(self.forward(owner, [keys[i] for i in at], view) for owner, at in groups)
            )
            for (_, at), found in zip(groups, results, strict=True):
                for index, one in zip(at, found, strict=True):
                    answers[index] = one
        return answers


_NOBODY = Answer(Status.RETRY, b"partition not assigned here")


def register_lookup_views(server: LookupServer, secret: SecretStr | None) -> None:
    """Mount the batched lookup and assignment views on the worker's web server."""

    class Internal(View):
        def refused(self, status: int, message: str) -> Response:
            body = orjson.dumps([{"message": message}])
            return self.bytes(body, content_type=JSON, status=status)

    class Lookups(Internal):
        async def post(self, request: Request) -> Response:
            if not is_authorized(request.headers, secret):
                server.metrics.lookups.labels("unauthorized").inc()
                return self.refused(401, "Unauthorized: internal calls need the secret.")
            view = request.query.get("view", "stored")
            if view not in RENDERINGS:
                return self.refused(400, f"view: one of {', '.join(RENDERINGS)}")
            try:
                keys = decode_keys(await request.read())
            except ValueError as exc:
                return self.refused(400, f"body: {exc}")
            answers = await server.answer(keys, view, FORWARDED_HEADER in request.headers)
            return self.bytes(encode_answers(answers), content_type=BINARY)

    class Assignment(Internal):
        async def get(self, request: Request) -> Response:
            if not is_authorized(request.headers, secret):
                return self.refused(401, "Unauthorized: internal calls need the secret.")
            ready = server.ready()
            body = {
                "url": str(server.me),
                "ready": ready,
                "partitions": sorted(server.owned()) if ready else [],
                "partitionCount": server.topic[1],
            }
            return self.bytes(orjson.dumps(body), content_type=JSON)

    server.app.page(LOOKUPS_PATH)(Lookups)
    server.app.page(ASSIGNMENT_PATH)(Assignment)
