"""Duplicate keys in a submission, and where they are.

RFC 8259 leaves duplicate keys undefined and msgspec keeps the last one: we never resolve them
silently, so what is stored is never a guess between two values the client sent. Where the
duplicate is decides what it rejects: inside one deployment, that deployment (per item means
per item); anywhere else in the body (the body object itself, ``properties``,
``providerMetadata``, an unknown member), the request.

One pass of the standard library's parser notices whether the body has any duplicate at all,
which is almost never; only then a second pass finds where they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Duplicates", "find_duplicates"]


@dataclass(frozen=True, slots=True)
class Duplicates:
    """Paths of the keys given more than once: in the envelope, and per deployment index
    (paths relative to the deployment)."""

    envelope: tuple[str, ...] = ()
    items: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.envelope or self.items)


class _Object(list[tuple[str, Any]]):
    """A JSON object as the parser read it: every (key, value) pair, repeated keys too."""


def find_duplicates(text: str) -> Duplicates:
    """The duplicate keys of ``text`` (valid JSON whose top level is an object).

    Raises RecursionError for nesting deeper than the parser allows, like ``json.loads``.
    """
    found: list[bool] = []
    json.loads(text, object_pairs_hook=_detector(found))
    if not found:
        return Duplicates()
    return _locate(json.loads(text, object_pairs_hook=_Object))


def _detector(found: list[bool]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            found.append(True)
        return result

    return unique


def _locate(body: Any) -> Duplicates:
    if not isinstance(body, _Object):
        return Duplicates(tuple(_paths(body, "")))
    envelope = _repeated(body, "")
    items: dict[int, tuple[str, ...]] = {}
    for name, value in body:
        if name == "deployments" and isinstance(value, list) and not isinstance(value, _Object):
            for index, item in enumerate(value):
                paths = _paths(item, "")
                if paths:
                    items[index] = tuple(paths)
        else:
            envelope.extend(_paths(value, name))
    return Duplicates(tuple(envelope), items)


def _repeated(node: _Object, path: str) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for name, _ in node:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return [f"{path}.{name}" if path else name for name in repeated]


def _paths(root: Any, root_path: str) -> list[str]:
    """Paths of every repeated key under ``root``, in document order. Iterative: the parser
    accepts nesting about as deep as Python's recursion limit."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(root, root_path)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Object):
            found.extend(_repeated(node, path))
            children = [(v, f"{path}.{k}" if path else k) for k, v in node]
        elif isinstance(node, list):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(node)]
        else:
            continue
        stack.extend(reversed(children))
    return found
