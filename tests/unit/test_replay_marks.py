"""A replay skips the input records the restored tables already reflect, re-derives the
index where its changelog is behind, and applies the rest."""

from __future__ import annotations

from streams.deployments.progress import NONE, Marks


def test_records_below_the_state_mark_are_skipped_and_the_mark_itself_is_applied() -> None:
    marks = Marks(generation=3, state=100, index=100)
    assert marks.skip(99)
    assert not marks.skip(100)
    assert not marks.skip(101)


def test_index_is_repaired_only_where_its_changelog_is_behind_the_table() -> None:
    marks = Marks(generation=3, state=100, index=95)
    assert [o for o in range(90, 105) if marks.repair_index(o)] == [96, 97, 98, 99, 100]
    assert not any(Marks(3, 100, 100).repair_index(o) for o in range(90, 105))
    # An index ahead of the table needs no repair: applying again adds nothing twice.
    assert not any(Marks(3, 100, 120).repair_index(o) for o in range(90, 125))


def test_without_marks_nothing_is_skipped() -> None:
    marks = Marks(generation=1, state=NONE, index=NONE)
    assert not any(marks.skip(o) or marks.repair_index(o) for o in range(0, 50))
