"""Union branches named up front, so fastavro does not have to guess them.

Given a plain value for a union with a record, array or map branch, fastavro's writer
validates the whole value against each branch in turn to choose one: an array of 60
association records is walked twice, once to validate it and once to write it. That guess
was about a third of the gateway's encode time. fastavro's tuple notation,
``(branch name, value)``, names the branch instead; :func:`union_tagger` builds, once per
schema, a function that rewrites a record into that notation wherever the branch is certain
from the Python type alone. Unions of primitives only are left alone (fastavro picks those
cheaply), and so are values whose branch the Python type cannot tell apart (two record
branches, both dicts): fastavro still decides those, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Tagger", "union_tagger"]

Tagger = Callable[[Any], Any]

_NAMED = frozenset({"record", "enum", "fixed", "error"})
_COMPLEX = frozenset({"record", "error", "array", "map"})
_PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "bytes": bytes,
    "boolean": bool,
    "int": int,
    "long": int,
    "float": float,
    "double": float,
    "array": list,
    "map": dict,
    "record": dict,
    "error": dict,
    "enum": str,
    "fixed": bytes,
}


def union_tagger(schema: Any, named: Mapping[str, Any]) -> Tagger | None:
    """A function rewriting values of ``schema`` into tuple notation; None when the schema
    has no union worth naming. ``named`` is fastavro's named-schema map of the same parse."""
    return _Builder(named).build(schema)


class _Builder:
    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.done: dict[str, Tagger | None] = {}

    def build(self, schema: Any) -> Tagger | None:
        if isinstance(schema, str):
            return self._named(schema)
        if isinstance(schema, list):
            return self._union(schema)
        kind = schema["type"]
        if kind in ("record", "error"):
            return self._record(schema)
        if kind == "array":
            return _each(self.build(schema["items"]))
        if kind == "map":
            return _each_value(self.build(schema["values"]))
        return None

    def _named(self, name: str) -> Tagger | None:
        if name not in self.named:
            return None  # a primitive
        if name not in self.done:
            # Recursive types end here untagged rather than recursing forever.
            self.done[name] = None
            self.done[name] = self.build(self.named[name])
        return self.done[name]

    def _resolve(self, schema: Any) -> Any:
        return self.named.get(schema, schema) if isinstance(schema, str) else schema

    def _union(self, branches: list[Any]) -> Tagger | None:
        options: list[tuple[type, str, Tagger | None]] = []
        complex_branch = False
        for branch in branches:
            if branch == "null":
                continue
            resolved = self._resolve(branch)
            kind = resolved if isinstance(resolved, str) else resolved["type"]
            complex_branch = complex_branch or kind in _COMPLEX
            name = resolved["name"] if kind in _NAMED else kind
            options.append((_PYTHON_TYPES.get(kind, object), name, self.build(branch)))
        return _tag_union(options) if complex_branch else None

    def _record(self, schema: Mapping[str, Any]) -> Tagger | None:
        fields = [(field["name"], self.build(field["type"])) for field in schema["fields"]]
        tagged = [(name, tag) for name, tag in fields if tag is not None]
        if not tagged:
            return None

        def tag_record(value: Any) -> Any:
            if type(value) is not dict:
                return value
            out = dict(value)
            for name, tag in tagged:
                if name in out:
                    out[name] = tag(out[name])
            return out

        return tag_record


def _tag_union(options: list[tuple[type, str, Tagger | None]]) -> Tagger:
    by_name = {name: tag for _, name, tag in options}
    by_type = {python: (name, tag) for python, name, tag in options}
    # Two branches with one Python type (two records, int and long): the type cannot tell
    # which, so such values stay plain and fastavro decides, as it would without us.
    if len(by_type) < len(options):
        by_type = {}

    def tag_union(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is tuple:
            name, inner = value
            tag = by_name.get(name)
            return (name, tag(inner)) if tag is not None else value
        # Exact types: a bool is an int and must not be named "long".
        match = by_type.get(type(value))
        if match is None:
            return value
        name, tag = match
        return (name, tag(value) if tag is not None else value)

    return tag_union


def _each(tag: Tagger | None) -> Tagger | None:
    if tag is None:
        return None
    return lambda value: [tag(item) for item in value] if type(value) is list else value


def _each_value(tag: Tagger | None) -> Tagger | None:
    if tag is None:
        return None
    return lambda value: (
        {key: tag(item) for key, item in value.items()} if type(value) is dict else value
    )
