"""Value formats of the Jira contract: what a valid URL, timestamp, issue key or int64 is.

Every pattern matches the whole value (``\\A…\\Z``): ``$`` would also match before a trailing
newline, so ``"ABC-1\\n"`` would pass and be republished as is. Character classes are spelled
out in ASCII because Jira's validation is Java's, where ``\\w`` and ``\\d`` are ASCII.

The patterns are given to msgspec (``Meta(pattern=...)``), which checks them in the fast path;
:data:`DESCRIPTIONS` says in words what each one requires, for the error messages.
"""

from __future__ import annotations

import re

__all__ = [
    "DESCRIPTIONS",
    "INT64_MAX",
    "INT64_MIN",
    "ISSUE_ID_OR_KEY",
    "ISSUE_KEY",
    "RFC3339",
    "URL",
    "int64_of",
    "is_digit_string",
    "is_issue_key",
    "is_real_date",
    "is_rfc3339",
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: An absolute http(s) URL without whitespace or control characters (``javascript:``,
#: ``data:`` and relative references are refused). The scheme is case-insensitive.
URL = r"\A[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#\x00-\x1f\x7f][^\s\x00-\x1f\x7f]*\Z"
#: RFC 3339 ``date-time``; whether the date exists is :func:`is_real_date`'s question.
RFC3339 = (
    r"\A[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:"
    r"([0-5][0-9]|60)(\.[0-9]{1,9})?([Zz]|[+\-]([01][0-9]|2[0-3]):[0-5][0-9])\Z"
)
ISSUE_KEY = r"\A[A-Za-z0-9_]{1,255}-[0-9]{1,255}\Z"
#: An issue key or a numeric issue id (the contract's ``(\w{1,255}-\d{1,255}|\d{1,255})``).
ISSUE_ID_OR_KEY = r"\A([A-Za-z0-9_]{1,255}-[0-9]{1,255}|[0-9]{1,255})\Z"

DESCRIPTIONS: dict[str, str] = {
    URL: "must be an absolute http or https URL",
    RFC3339: "must be an RFC 3339 date-time such as 2018-01-20T23:27:25.000Z",
    ISSUE_KEY: "must be an issue key such as ABC-123",
    ISSUE_ID_OR_KEY: "must be an issue key such as ABC-123 or a numeric issue id",
}

_ISSUE_KEY = re.compile(ISSUE_KEY)
_RFC3339 = re.compile(RFC3339)
# Optionally signed decimal digits; at most 19 significant ones fit in an int64, so longer
# strings never reach int() (which refuses more than 4300 digits with a ValueError).
_DIGITS = re.compile(r"([+-]?)0*([0-9]{1,19})")
_ALL_DIGITS = re.compile(r"[+-]?[0-9]+")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def int64_of(text: str) -> int | None:
    """The int64 a plain digit string (optionally signed) stands for; None for anything else:
    ``"1e3"``, ``"1.5"``, ``" 42"``, ``"4_2"``, non-ASCII digits, or a value out of range."""
    match = _DIGITS.fullmatch(text)
    if match is None:
        return None
    value = int(match.group(1) + match.group(2))
    return value if INT64_MIN <= value <= INT64_MAX else None


def is_digit_string(text: str) -> bool:
    """Optionally signed ASCII digits, whatever their number (for a range message)."""
    return _ALL_DIGITS.fullmatch(text) is not None


def is_issue_key(text: str) -> bool:
    """Whether ``text`` is an issue key (whole value)."""
    return _ISSUE_KEY.match(text) is not None


def is_rfc3339(text: str) -> bool:
    """Whether ``text`` has the form of an RFC 3339 date-time (whole value)."""
    return _RFC3339.match(text) is not None


def is_real_date(timestamp: str) -> bool:
    """Whether the date of an :data:`RFC3339` timestamp exists (no February 30th, and February
    29th only in leap years of the proleptic Gregorian calendar)."""
    day = int(timestamp[8:10])
    if day <= 28:
        return True
    month = int(timestamp[5:7])
    if day > _DAYS[month - 1]:
        return False
    if month != 2 or day != 29:
        return True
    year = int(timestamp[:4])
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
