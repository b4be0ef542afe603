"""``python -m chaos --seeds``: ranges and lists of seeds."""

from __future__ import annotations

import click
import pytest

from chaos.__main__ import parse_seeds


def test_seed_ranges_and_lists_expand_in_order() -> None:
    assert parse_seeds("1-5") == [1, 2, 3, 4, 5]
    assert parse_seeds("3,9") == [3, 9]
    assert parse_seeds("1-3, 7") == [1, 2, 3, 7]
    assert parse_seeds("4") == [4]


@pytest.mark.parametrize("text", ["", "a", "5-2", "1-", "1-x"])
def test_malformed_seed_lists_are_refused(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_seeds(text)
