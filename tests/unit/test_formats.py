"""Value formats match whole values: no trailing newline, no lookalike digits, no other
schemes; dates exist; int64 text is plain digits."""

from __future__ import annotations

import re

import pytest

from gateway.errors import BadRequest
from gateway.formats import (
    INT64_MAX,
    INT64_MIN,
    ISSUE_ID_OR_KEY,
    ISSUE_KEY,
    RFC3339,
    URL,
    int64_of,
    is_real_date,
)
from gateway.handlers import parse_long


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("42", 42), ("+42", 42), ("-42", -42), ("000042", 42), (str(INT64_MAX), INT64_MAX)],
)
def test_plain_digit_strings_are_int64s(text: str, value: int) -> None:
    assert int64_of(text) == value
    assert parse_long(text, "n") == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 42",
        "42 ",
        "42\n",
        "4_2",
        "1e3",
        "1.5",
        "0x2a",
        "\u0664\u0662",
        "+-1",
        str(INT64_MAX + 1),
        str(INT64_MIN - 1),
        "9" * 5000,
    ],
    ids=repr,
)
def test_anything_else_is_not_an_int64(text: str) -> None:
    assert int64_of(text) is None
    with pytest.raises(BadRequest, match="deploymentSequenceNumber: must be a 64-bit integer"):
        parse_long(text, "deploymentSequenceNumber")


@pytest.mark.parametrize("pattern", [URL, RFC3339, ISSUE_KEY, ISSUE_ID_OR_KEY])
def test_no_pattern_lets_a_trailing_newline_through(pattern: str) -> None:
    valid = {
        URL: "https://ci.example.com/x",
        RFC3339: "2018-01-20T23:27:25Z",
        ISSUE_KEY: "ABC-1",
        ISSUE_ID_OR_KEY: "10001",
    }[pattern]
    assert re.search(pattern, valid)
    for suffix in ("\n", "\r\n", " ", "\x00"):
        assert re.search(pattern, valid + suffix) is None, repr(suffix)


@pytest.mark.parametrize(
    ("date", "real"),
    [
        ("2024-02-29", True),
        ("2023-02-29", False),
        ("2000-02-29", True),
        ("2100-02-29", False),
        ("0000-02-29", True),
        ("2023-02-28", True),
        ("2023-02-30", False),
        ("2023-04-30", True),
        ("2023-04-31", False),
        ("2023-12-31", True),
    ],
)
def test_dates_must_exist(date: str, real: bool) -> None:
    assert is_real_date(f"{date}T00:00:00Z") is real
