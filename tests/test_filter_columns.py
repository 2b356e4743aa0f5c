import polars as pl
import pytest

from detforge.memory import filter_columns


def _uneven() -> tuple[pl.DataFrame, pl.Series]:
    """A frame whose columns are chunked differently, and a mask chunked a third way."""
    a = pl.concat([pl.Series("a", [1, 2, 3]), pl.Series("a", [4, 5, 6, 7])], rechunk=False)
    b = pl.Series("b", list("abcdefg"))
    c = pl.concat([pl.Series("c", [0.5] * 5), pl.Series("c", [1.5] * 2)], rechunk=False)
    frame = pl.DataFrame([a, b, c])
    mask = pl.concat(
        [pl.Series([True, False]), pl.Series([True, True, False, None, True])], rechunk=False
    )
    return frame, mask


def test_filter_columns_equals_filter_on_unevenly_chunked_frames() -> None:
    frame, mask = _uneven()
    assert frame["a"].n_chunks() == 2 and frame["b"].n_chunks() == 1
    out = filter_columns(frame, mask)
    assert out.equals(frame.filter(mask))
    assert out["a"].to_list() == [1, 3, 4, 7]
    assert out.n_chunks("all") == [1, 1, 1]


def test_filter_columns_selects_columns_in_order() -> None:
    frame, mask = _uneven()
    out = filter_columns(frame, mask, ["c", "a"])
    assert out.columns == ["c", "a"]
    assert out.equals(frame.select("c", "a").filter(mask))


def test_filter_columns_rejects_a_mask_of_another_length() -> None:
    frame, _ = _uneven()
    with pytest.raises(pl.exceptions.ShapeError):
        filter_columns(frame, pl.Series([True, False]))
