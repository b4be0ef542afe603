"""The bench's query phase: a mix of first pages and next pages by cursor, and a target per
query in the report."""

from __future__ import annotations

import random

import orjson

from bench.phases.queries import Browse
from bench.targets import evaluate


def first(rng: random.Random) -> str:
    return f"/q/issues/OPS-{rng.randint(1, 3)}/deployments"


def page(values: int, cursor: str | None) -> bytes:
    return orjson.dumps({"values": [{}] * values, "next": cursor})


def test_pages_with_a_next_page_are_followed_by_cursor_some_of_the_time() -> None:
    browse = Browse(first, seed=1, follow=0.5)
    followed = 0
    for _ in range(200):
        request = browse.request()
        assert "cursor=" not in request.path  # nothing waits: a first page
        browse.answered(request, 200, page(50, "a/b+c="), 0.0)
        after = browse.request()
        if "cursor=" in after.path:
            followed += 1
            # Same query, the cursor percent-encoded, the default limit.
            assert after.path == f"{request.path}?cursor=a%2Fb%2Bc%3D"
            browse.answered(after, 200, page(7, None), 0.0)
        else:
            browse.answered(after, 200, page(50, None), 0.0)
    assert 60 < followed < 140
    assert browse.pages == {"first": 400 - followed, "next": followed}
    assert browse.values == (400 - followed) * 50 + followed * 7


def test_errors_and_last_pages_queue_nothing() -> None:
    browse = Browse(first, seed=2, follow=1.0)
    request = browse.request()
    browse.answered(request, 503, b"[]", 0.0)
    browse.answered(request, 200, page(3, None), 0.0)
    assert "cursor=" not in browse.request().path
    assert browse.pages == {"first": 1}


def test_each_query_has_a_p99_target_of_50_ms() -> None:
    results = {
        "queries": {
            "issue": {"p99Ms": 12.0},
            "pipelines": {"p99Ms": 51.0},
            "environments": {"p99Ms": 50.0},
        }
    }
    verdicts = {t["name"]: t["result"] for t in evaluate(results) if "Query" in t["name"]}
    assert verdicts == {
        "Query p99, 16 clients: deployments of an issue": "pass",
        "Query p99, 16 clients: pipelines": "miss",
        "Query p99, 16 clients: latest per environment": "pass",
        "Query p99, 16 clients: an environment's deployments": "n/a",
    }
