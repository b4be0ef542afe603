"""Query results rendered once: a bounded cache of listed deployments' JSON.

Listing a deployment costs decoding its stored Avro (~20 µs) and rendering its JSON (~5 µs),
and the deployments a query returns are mostly the same ones again and again (an
environment's latest, an issue's recent ones: what dashboards and the web view ask for).
Each cached rendering is kept with the exact stored bytes it was made from and what decides
the index entries those bytes carry (:class:`~streams.deployments.index.Carried`), so a hit
is exact: the stored bytes read now must be those bytes (any change, delete or rewrite is a
miss), and an entry is current if they carry it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from streams.deployments.index import Carried, carried_by
from streams.deployments.views import render_listed

__all__ = ["Listed", "Renderings"]


class Listed(NamedTuple):
    """One stored deployment as queries list it."""

    raw: bytes
    carried: Carried
    json: bytes


class Renderings:
    """At most ``capacity`` renderings, least recently used dropped first (0: none kept)."""

    def __init__(self, decode: Callable[[bytes], dict[str, Any]], capacity: int) -> None:
        self._decode = decode
        self._capacity = capacity
        self._items: OrderedDict[bytes, Listed] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def listed(self, key: bytes, raw: bytes) -> Listed:
        """The rendering of ``key`` stored as ``raw``."""
        held = self._items.get(key)
        if held is not None and held.raw == raw:
            self._items.move_to_end(key)
            self.hits += 1
            return held
        self.misses += 1
        stored = self._decode(raw)
        made = Listed(raw, carried_by(stored), orjson.dumps(render_listed(stored)))
        if self._capacity:
            self._items[key] = made
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return made
