"""Every error of a value against a msgspec type, each naming its field as Jira does.

msgspec stops at the first error and words it its own way (``Expected `str` of length <=
255 - at `$.url```). That is the fast path for valid deployments; for an invalid one this
module walks the same types and reports every error, e.g. ``'url' is required`` and
``'pipeline.displayName' must be at most 255 characters``. Because it reads the constraints
from the msgspec types themselves (``msgspec.inspect``), the two cannot drift apart: a value in
which this walk finds no error decodes with those types.

Unknown fields are ignored, as the decoder ignores them.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import msgspec
from msgspec import inspect

from gateway.formats import DESCRIPTIONS, is_digit_string

__all__ = ["schema_errors"]


@cache
def _info(root: type) -> inspect.Type:
    return inspect.type_info(root)


def schema_errors(value: Any, root: type[msgspec.Struct]) -> list[str]:
    """The errors of ``value`` (plain JSON data) against the Struct type ``root``; empty when
    it is valid."""
    errors: list[str] = []
    _walk(value, _info(root), "", errors)
    return errors


def _name(path: str) -> str:
    return f"'{path}'" if path else "The deployment"


def _walk(value: Any, info: inspect.Type, path: str, errors: list[str]) -> None:
    if isinstance(info, inspect.UnionType):
        _union(value, info, path, errors)
    elif isinstance(info, inspect.StructType):
        _struct(value, info, path, errors)
    elif isinstance(info, inspect.ListType):
        _list(value, info, path, errors)
    elif isinstance(info, inspect.StrType):
        _str(value, info, path, errors)
    elif isinstance(info, inspect.IntType):
        _int(value, info, path, errors)
    elif isinstance(info, inspect.LiteralType):
        if value not in info.values or type(value) is not type(info.values[0]):
            choices = ", ".join(str(v) for v in info.values)
            errors.append(f"{_name(path)} must be one of: {choices}")
    elif not isinstance(info, inspect.NoneType | inspect.AnyType):
        msg = f"no error description for {info!r}"
        raise TypeError(msg)


def _union(value: Any, info: inspect.UnionType, path: str, errors: list[str]) -> None:
    types = [t for t in info.types if not isinstance(t, inspect.NoneType)]
    if value is None and len(types) < len(info.types):
        return
    tagged = [t for t in types if isinstance(t, inspect.StructType) and t.tag_field]
    if tagged:
        _tagged(value, tagged, path, errors)
    elif len(types) == 1:
        _walk(value, types[0], path, errors)
    else:
        msg = f"no error description for the union {info!r}"
        raise TypeError(msg)


def _tagged(value: Any, options: list[inspect.StructType], path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{_name(path)} must be an object")
        return
    field = options[0].tag_field
    assert field is not None
    where = f"{path}.{field}" if path else field
    tag = value.get(field)
    if tag is None:
        errors.append(f"{_name(where)} is required")
    elif not isinstance(tag, str):
        errors.append(f"{_name(where)} must be a string")
    else:
        chosen = next((o for o in options if o.tag == tag), None)
        if chosen is None:
            choices = ", ".join(str(o.tag) for o in options)
            errors.append(f"{_name(where)} must be one of: {choices}")
        else:
            _struct(value, chosen, path, errors)


def _struct(value: Any, info: inspect.StructType, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{_name(path)} must be an object")
        return
    for field in info.fields:
        where = f"{path}.{field.encode_name}" if path else field.encode_name
        present = value.get(field.encode_name)
        if present is None and field.required:
            errors.append(f"{_name(where)} is required")
        elif field.encode_name in value:
            _walk(present, field.type, where, errors)


def _list(value: Any, info: inspect.ListType, path: str, errors: list[str]) -> None:
    if not isinstance(value, list):
        errors.append(f"{_name(path)} must be an array")
        return
    if info.min_length is not None and len(value) < info.min_length:
        plural = "item" if info.min_length == 1 else "items"
        errors.append(f"{_name(path)} must have at least {info.min_length} {plural}")
    if info.max_length is not None and len(value) > info.max_length:
        errors.append(f"{_name(path)} must have at most {info.max_length} items, got {len(value)}")
    for index, item in enumerate(value):
        _walk(item, info.item_type, f"{path}[{index}]", errors)


def _str(value: Any, info: inspect.StrType, path: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f"{_name(path)} must be a string")
        return
    if info.max_length is not None and len(value) > info.max_length:
        errors.append(f"{_name(path)} must be at most {info.max_length} characters")
    elif info.pattern is not None and re.search(info.pattern, value) is None:
        description = DESCRIPTIONS.get(info.pattern, f"must match {info.pattern}")
        errors.append(f"{_name(path)} {description}")


def _int(value: Any, info: inspect.IntType, path: str, errors: list[str]) -> None:
    low, high = info.ge, info.le
    out_of_range = f"{_name(path)} must be between {low} and {high}"
    if isinstance(value, str) and is_digit_string(value):
        # Digit strings in range were made integers before the walk: this one is too long.
        errors.append(out_of_range)
    elif not isinstance(value, int) or isinstance(value, bool):
        errors.append(f"{_name(path)} must be an integer")
    elif (low is not None and value < low) or (high is not None and value > high):
        errors.append(out_of_range)
