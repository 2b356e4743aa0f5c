"""The stage cache's canonical row order (byte-stable parquet) and its no-copy fast path."""

import polars as pl

from detforge.builders.stages import sorted_by


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "image_id": [3, 1, None, 1, 2, 3],
            "object_id": [9, 5, 1, 4, 7, 8],
            "tag": ["a", "b", "c", "d", "e", "f"],
        }
    )


def test_sorted_by_sorts_stably_with_nulls_last() -> None:
    frame = _frame()
    out = sorted_by(frame, ["image_id"])
    assert out.equals(frame.sort("image_id", nulls_last=True, maintain_order=True))
    assert out["tag"].to_list() == ["b", "d", "e", "a", "f", "c"]
    assert sorted_by(frame, ["image_id", "object_id"])["object_id"].to_list() == [4, 5, 7, 8, 9, 1]


def test_sorted_by_returns_a_sorted_frame_itself() -> None:
    ordered = _frame().sort("image_id", "object_id", nulls_last=True)
    assert sorted_by(ordered, ["image_id", "object_id"]) is ordered
    assert sorted_by(ordered.clear(), ["image_id"]).height == 0
