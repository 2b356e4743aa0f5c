"""Near-duplicate search over 64-bit hashes by multi-index hashing (never all pairs).

Split every hash into ``radius + 1`` disjoint bit chunks. Two hashes within
Hamming distance ``radius`` differ in at most ``radius`` chunks, so by the
pigeonhole principle they agree exactly on at least one: the candidates are
the pairs sharing a chunk value, and each candidate is verified with a
vectorised popcount of the XOR. Per chunk, the hashes are sorted by (group,
chunk value) and the pairs inside each run of equal values are generated with
numpy in blocks of ``BLOCK`` pairs, so memory stays bounded. A chunk value shared by
more than ``max_bucket`` hashes (blank or near-constant images all hash
alike) is skipped for that chunk and counted, so one degenerate bucket cannot
make the search quadratic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from detforge.builders.dedup.engines import progress

MAX_BUCKET = 4096
BLOCK = 1 << 22
PAIRS = pl.Schema({"i": pl.Int64, "j": pl.Int64, "distance": pl.Int32})


@dataclass(frozen=True)
class PairSearch:
    """Verified pairs ``(i, j, distance)`` plus what the bucket cap skipped."""

    pairs: pl.DataFrame
    capped_buckets: int
    capped_hashes: int


def chunk_bounds(radius: int, bits: int = 64) -> list[tuple[int, int]]:
    """``(shift, width)`` of the ``radius + 1`` chunks covering ``bits`` bits."""
    n = radius + 1
    if not 1 <= n <= bits:
        raise ValueError(f"radius must be in [0, {bits - 1}], got {radius}")
    widths = [bits // n + (1 if k < bits % n else 0) for k in range(n)]
    shifts = np.concatenate([[0], np.cumsum(widths)[:-1]])
    return [(int(s), w) for s, w in zip(shifts, widths, strict=True)]


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance of two uint64 arrays."""
    return np.bitwise_count(np.bitwise_xor(a, b, dtype=np.uint64))


def _dense(values: list[pl.Series | None], sizes: list[int]) -> np.ndarray:
    """One dense int code per element of the concatenated group columns (0 when none)."""
    if all(v is None for v in values):
        return np.zeros(sum(sizes), np.int64)
    parts = [
        v.cast(pl.String) if v is not None else pl.Series([None] * n, dtype=pl.String)
        for v, n in zip(values, sizes, strict=True)
    ]
    return pl.concat(parts).rank("dense").fill_null(0).to_numpy().astype(np.int64)


def _chunk_pairs(
    hashes: np.ndarray, groups: np.ndarray, side: np.ndarray, shift: int, width: int, cap: int
) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], int, int]:
    """Candidate position pairs sharing chunk ``(shift, width)`` within a group.

    ``side`` is all 0 for a self search (pairs p < q), or 0/1 for left/right
    (pairs left x right). Returns an iterator over blocks of at most about
    ``BLOCK`` ``(p, q)`` positions into ``hashes``, and the number of capped
    buckets and of hashes in them.
    """
    keys = (hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)
    order = np.lexsort((side, keys, groups))
    k, g, s = keys[order], groups[order], side[order]
    new = np.ones(len(order), bool)
    new[1:] = (k[1:] != k[:-1]) | (g[1:] != g[:-1])
    bucket = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(order)))
    ends = (starts + sizes)[bucket]
    if side.any():  # left rows pair with the bucket's right rows, which sort after them
        lefts = np.add.reduceat(1 - s, starts) if len(starts) else starts
        first = np.where(s == 0, (starts + lefts)[bucket], ends)
    else:
        first = np.arange(len(order)) + 1
    capped = sizes > cap
    counts = np.where(capped[bucket], 0, ends - first).astype(np.int64)
    done = np.cumsum(counts)

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        a = 0
        while a < len(order) and done[-1] > (done[a - 1] if a else 0):
            base = done[a - 1] if a else 0
            b = max(int(np.searchsorted(done, base + BLOCK, side="right")), a + 1)
            c = counts[a:b]
            rep = np.repeat(np.arange(a, b), c)
            offsets = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
            yield order[rep], order[first[rep] + offsets]
            a = b

    return blocks(), int(capped.sum()), int(sizes[capped].sum())


def near_pairs(
    hashes: pl.Series,
    radius: int,
    *,
    others: pl.Series | None = None,
    groups: pl.Series | None = None,
    other_groups: pl.Series | None = None,
    max_bucket: int = MAX_BUCKET,
) -> PairSearch:
    """Every pair of hashes within Hamming ``radius``.

    Without ``others``: pairs ``i < j`` within ``hashes``. With ``others``: pairs
    ``(i, j)`` with ``i`` indexing ``hashes`` and ``j`` indexing ``others``.
    ``groups`` / ``other_groups`` restrict pairs to equal group values (e.g. a
    split). Null hashes never pair. Rows are sorted by ``(i, j)``.
    """
    columns = [hashes] if others is None else [hashes, others]
    sizes = [c.len() for c in columns]
    every = pl.concat([c.cast(pl.UInt64) for c in columns])
    valid = every.is_not_null().to_numpy()
    positions = np.flatnonzero(valid)  # position in ``every`` of each searched hash
    values = every.fill_null(0).to_numpy()[valid]
    group = _dense([groups, other_groups][: len(columns)], sizes)[valid]
    side = (positions >= sizes[0]).astype(np.int8)
    found, n_capped, n_capped_hashes = [], 0, 0
    chunks = chunk_bounds(radius)
    with progress() as bar:
        task = bar.add_task("near-duplicate search", total=len(chunks))
        for shift, width in chunks:
            blocks, capped, in_capped = _chunk_pairs(values, group, side, shift, width, max_bucket)
            n_capped, n_capped_hashes = n_capped + capped, n_capped_hashes + in_capped
            for p, q in blocks:
                distance = hamming(values[p], values[q])
                keep = distance <= radius
                i, j = positions[p[keep]], positions[q[keep]]
                if others is None:
                    i, j = np.minimum(i, j), np.maximum(i, j)
                else:
                    j = j - sizes[0]
                found.append(pl.DataFrame({"i": i, "j": j, "distance": distance[keep]}))
            bar.advance(task)
    pairs = pl.concat(found).cast(PAIRS) if found else pl.DataFrame(schema=PAIRS)
    return PairSearch(
        pairs=pairs.unique(["i", "j"]).sort("i", "j"),
        capped_buckets=n_capped,
        capped_hashes=n_capped_hashes,
    )
