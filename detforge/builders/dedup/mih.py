"""Exact near-duplicate search over 64-bit hashes: multi-index hashing with substitution.

Every pair within Hamming ``radius`` is found; nothing is capped or skipped.

1. Identical hashes (within a group) collapse to one *node* first: blank or
   near-constant images all hash alike, and a node costs one search however many
   rows share it.
2. The search (Norouzi et al., "Fast Search in Hamming Space with Multi-Index
   Hashing", with the generalised pigeonhole bound): ``m`` disjoint bit chunks
   with thresholds ``tau_k``, ``sum(tau_k + 1) == radius + 1``. Two hashes within
   ``radius`` differ in at most ``tau_k`` bits of some chunk ``k`` (else they would
   differ in ``radius + 1`` bits), so each query reads, per chunk, the buckets of
   every key within ``tau_k`` bits of its own (a direct-address table over the
   chunk's key), and verifies each candidate with a popcount of the XOR. A pair is
   kept only by the first chunk that can witness it, so it comes out once.
   :func:`plan_chunks` picks ``m``, the chunk width and the thresholds from a cost
   model (keys read + candidates verified); at millions of hashes that is three
   21-22-bit chunks.
3. The inner loop is compiled (:mod:`.kernel`); queries are split into shards run
   on the build's engine (process pool or Ray, :func:`.engines.run_tasks`). Each
   worker builds the table once. Small searches are a blocked numpy brute force.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from math import comb

import numpy as np
import polars as pl

PAIRS = pl.Schema({"i": pl.Int64, "j": pl.Int64, "distance": pl.Int32})
#: at most this many (query, value) comparisons are done by brute force (no table, no compile)
BRUTE_FORCE_MAX = 20_000_000
#: widest chunk key: its direct-address table has 2**width + 1 offsets
MAX_WIDTH = 23
#: queries per shard (a shard is one task for a worker)
SHARD = 250_000


@dataclass(frozen=True)
class PairSearch:
    """Result of :func:`near_pairs`.

    ``pairs`` (i, j, distance): rows with identical hashes in a group form one node
    whose representative is its first row; each other member is paired with it at
    distance 0, and distinct nodes within the radius are paired through their
    representatives. ``node`` / ``other_node`` give each row's representative
    (-1 for a null hash). :meth:`expand` lists every row pair.
    """

    pairs: pl.DataFrame
    node: np.ndarray
    other_node: np.ndarray | None
    nodes: int  # distinct (group, hash) values searched

    def expand(self) -> pl.DataFrame:
        """Every pair of rows within the radius (quadratic in the size of a node)."""
        left = pl.DataFrame({"i": np.arange(len(self.node)), "ni": self.node}).filter(
            pl.col("ni") >= 0
        )
        if self.other_node is None:
            links = self.pairs.filter(pl.col("distance") > 0)
            between = (
                links.join(left, left_on="i", right_on="ni", suffix="_a")
                .join(left, left_on="j", right_on="ni", suffix="_b")
                .select(
                    i=pl.min_horizontal("i_a", "i_b"),
                    j=pl.max_horizontal("i_a", "i_b"),
                    distance="distance",
                )
            )
            within = (
                left.join(left, on="ni", suffix="_b")
                .filter(pl.col("i") < pl.col("i_b"))
                .select("i", j="i_b", distance=pl.lit(0, pl.Int32))
            )
            return pl.concat([between, within]).cast(PAIRS).sort("i", "j")
        right = pl.DataFrame({"j": np.arange(len(self.other_node)), "nj": self.other_node})
        return (
            self.pairs.join(left, left_on="i", right_on="ni", suffix="_a")
            .join(right, left_on="j", right_on="nj", suffix="_b")
            .select(i="i_a", j="j_b", distance="distance")
            .cast(PAIRS)
            .sort("i", "j")
        )


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance of two uint64 arrays."""
    return np.bitwise_count(np.bitwise_xor(a, b, dtype=np.uint64))


def _probes(width: int, tau: int) -> int:
    return sum(comb(width, t) for t in range(tau + 1))


def plan_chunks(n_queries: int, n_values: int, radius: int) -> list[tuple[int, int, int]]:
    """``(shift, width, tau)`` of each chunk for a search of ``n_queries`` against
    ``n_values`` hashes at ``radius``: the plan with the fewest keys read plus
    candidates verified (chunks need not cover all 64 bits: the bound holds on any
    disjoint chunks)."""
    if not 0 <= radius <= 63:
        raise ValueError(f"radius must be in [0, 63], got {radius}")
    best: tuple[float, list[tuple[int, int, int]]] | None = None
    for m in range(1, min(radius + 1, 64) + 1):
        units = radius + 1  # sum of (tau + 1) over the chunks
        taus = [units // m - 1 + (1 if k < units % m else 0) for k in range(m)]
        for width in range(1, min(MAX_WIDTH, 64 // m) + 1):
            reads = sum(_probes(width, t) * (1 + n_values / 2**width) for t in taus)
            cost = n_queries * reads + m * (2**width + n_values)
            if best is None or cost < best[0]:
                best = (cost, [(k * width, width, t) for k, t in enumerate(taus)])
    assert best is not None
    return best[1]


def _masks(width: int, tau: int) -> np.ndarray:
    """Every ``width``-bit key difference of at most ``tau`` bits, fewest bits first."""
    out = [0]
    for t in range(1, tau + 1):
        out.extend(sum(1 << b for b in bits) for bits in itertools.combinations(range(width), t))
    return np.array(out, np.uint64)


@dataclass(frozen=True)
class Table:
    """The multi-index table over ``values`` (arguments of :func:`.kernel.search`)."""

    chunks: list[tuple[int, int, int]]
    sorted_values: np.ndarray
    orders: np.ndarray
    offsets: np.ndarray
    offset_starts: np.ndarray
    masks: np.ndarray
    mask_starts: np.ndarray

    @classmethod
    def build(cls, values: np.ndarray, chunks: list[tuple[int, int, int]]) -> Table:
        index = np.int32 if len(values) < 2**31 else np.int64
        sorted_values, orders, offsets, masks = [], [], [], []
        for shift, width, tau in chunks:
            keys = _keys(values, shift, width)
            order = np.argsort(keys, kind="stable")
            orders.append(order.astype(index))
            sorted_values.append(values[order])
            bounds = np.zeros(2**width + 1, index)
            np.cumsum(np.bincount(keys, minlength=2**width), out=bounds[1:])
            offsets.append(bounds)
            masks.append(_masks(width, tau))
        return cls(
            chunks=chunks,
            sorted_values=np.stack(sorted_values),
            orders=np.stack(orders),
            offsets=np.concatenate(offsets),
            offset_starts=np.cumsum([0] + [len(o) for o in offsets[:-1]]).astype(np.int64),
            masks=np.concatenate(masks),
            mask_starts=np.cumsum([0] + [len(m) for m in masks]).astype(np.int64),
        )

    def search(
        self, queries: np.ndarray, query_ids: np.ndarray, radius: int, self_search: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from detforge.builders.dedup.kernel import search

        query_orders = np.stack(
            [np.argsort(_keys(queries, s, w), kind="stable") for s, w, _ in self.chunks]
        )
        shifts, widths, taus = (np.array(c, np.int64) for c in zip(*self.chunks, strict=True))
        return search(
            queries,
            query_ids,
            query_orders,
            self.sorted_values,
            self.orders,
            self.offsets,
            self.offset_starts,
            shifts,
            widths,
            taus,
            self.masks,
            self.mask_starts,
            radius,
            self_search,
        )


def _keys(values: np.ndarray, shift: int, width: int) -> np.ndarray:
    return ((values >> np.uint64(shift)) & np.uint64(2**width - 1)).astype(np.int64)


# -- one worker's share -------------------------------------------------------
_TABLE: dict[str, object] = {}


def _init_worker(values: np.ndarray, chunks: list[tuple[int, int, int]]) -> None:
    """Pool initialiser: build the table once per worker process."""
    _TABLE["values"] = values
    _TABLE["table"] = Table.build(values, chunks)


def search_shard(
    shard: tuple[np.ndarray, np.ndarray, int, bool],
    values: np.ndarray | None = None,
    chunks: list[tuple[int, int, int]] | None = None,
) -> np.ndarray:
    """Pairs ``[[query_id, j, distance], ...]`` of one shard of queries (``values`` /
    ``chunks`` given: build the table here, e.g. in a Ray task)."""
    queries, query_ids, radius, self_search = shard
    if values is not None and chunks is not None:
        _init_worker(values, chunks)
    table = _TABLE["table"]
    assert isinstance(table, Table)
    i, j, d = table.search(queries, query_ids, radius, self_search)
    return np.stack([i, j, d.astype(np.int64)], axis=1) if len(i) else np.empty((0, 3), np.int64)


def _brute(queries: np.ndarray, values: np.ndarray, radius: int, self_search: bool) -> np.ndarray:
    """The same pairs as the table search, from blocks of the full distance matrix."""
    found = []
    step = max(1, 4_000_000 // max(1, len(values)))
    for a in range(0, len(queries), step):
        dist = np.bitwise_count(queries[a : a + step, None] ^ values[None, :])
        hit = dist <= radius
        if self_search:
            hit &= np.arange(len(values))[None, :] > np.arange(a, a + len(dist))[:, None]
        qi, j = np.nonzero(hit)
        found.append(np.stack([qi + a, j, dist[qi, j].astype(np.int64)], axis=1))
    return np.concatenate(found) if found else np.empty((0, 3), np.int64)


def _search_values(
    queries: np.ndarray,
    values: np.ndarray | None,
    radius: int,
    *,
    engine: str,
    workers: int | None,
) -> np.ndarray:
    """``[[q, j, d]]`` for ``queries`` against ``values`` (``values=None``: a self search
    of ``queries``, pairs ``q < j``)."""
    self_search = values is None
    db = queries if values is None else values
    if len(queries) == 0 or len(db) == 0:
        return np.empty((0, 3), np.int64)
    if len(queries) * len(db) <= BRUTE_FORCE_MAX:
        return _brute(queries, db, radius, self_search)
    from detforge.builders.dedup.engines import run_tasks

    chunks = plan_chunks(len(queries), len(db), radius)
    ids = np.arange(len(queries), dtype=np.int64)
    workers = workers or os.cpu_count() or 1
    size = max(1, min(SHARD, -(-len(queries) // workers)))
    shards = [
        (queries[a : a + size], ids[a : a + size], radius, self_search)
        for a in range(0, len(queries), size)
    ]
    parts = run_tasks(
        search_shard,
        shards,
        init=_init_worker,
        initargs=(db, chunks),
        engine=engine,
        workers=workers,
        description="near-duplicate search",
    )
    _TABLE.clear()  # the in-process table, when the search ran here
    return np.concatenate(parts) if parts else np.empty((0, 3), np.int64)


def _dense(values: list[pl.Series | None], sizes: list[int]) -> np.ndarray:
    """One dense int code per element of the concatenated group columns (0 when none)."""
    if all(v is None for v in values):
        return np.zeros(sum(sizes), np.int64)
    parts = [
        v.cast(pl.String) if v is not None else pl.Series([None] * n, dtype=pl.String)
        for v, n in zip(values, sizes, strict=True)
    ]
    return pl.concat(parts).rank("dense").fill_null(0).to_numpy().astype(np.int64)


def _nodes(values: np.ndarray, group: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row its node's representative row (-1 when null), and per node its
    representative row, value and group (rows of one side and group with one value
    are one node)."""
    rows = np.flatnonzero(valid)
    frame = pl.DataFrame({"row": rows, "g": group[rows], "v": values[rows]})
    reps = frame.group_by("g", "v").agg(pl.col("row").min().alias("rep")).sort("rep")
    node = np.full(len(values), -1, np.int64)
    joined = frame.join(reps, on=["g", "v"])
    node[joined["row"].to_numpy()] = joined["rep"].to_numpy()
    return node, reps["rep"].to_numpy(), reps["v"].to_numpy(), reps["g"].to_numpy()


def near_pairs(
    hashes: pl.Series,
    radius: int,
    *,
    others: pl.Series | None = None,
    groups: pl.Series | None = None,
    other_groups: pl.Series | None = None,
    engine: str = "process",
    workers: int | None = None,
) -> PairSearch:
    """Every pair of hashes within Hamming ``radius`` (exact: see the module doc).

    Without ``others``: pairs ``i < j`` within ``hashes``. With ``others``: pairs
    ``(i, j)`` with ``i`` indexing ``hashes`` and ``j`` indexing ``others``.
    ``groups`` / ``other_groups`` restrict pairs to equal group values (e.g. a
    split). Null hashes never pair. Rows of ``.pairs`` are sorted by ``(i, j)``;
    see :class:`PairSearch` for how identical hashes appear.
    """
    if not 0 <= radius <= 63:
        raise ValueError(f"radius must be in [0, 63], got {radius}")
    columns = [hashes] if others is None else [hashes, others]
    sizes = [c.len() for c in columns]
    every = pl.concat([c.cast(pl.UInt64) for c in columns])
    valid = every.is_not_null().to_numpy()
    values = every.fill_null(0).to_numpy()
    group = _dense([groups, other_groups][: len(columns)], sizes)
    side = np.arange(len(values)) >= sizes[0]
    node, reps, node_values, node_groups = _nodes(values, group * 2 + side, valid)
    right = (node_groups % 2).astype(bool)
    node_groups = node_groups // 2
    found = [np.empty((0, 3), np.int64)]
    opts = {"engine": engine, "workers": workers}
    for g in np.unique(node_groups):
        if others is None:
            at = np.flatnonzero(node_groups == g)
            qj = _search_values(node_values[at], None, radius, **opts)
            found.append(np.stack([reps[at[qj[:, 0]]], reps[at[qj[:, 1]]], qj[:, 2]], axis=1))
        else:
            left_at = np.flatnonzero((node_groups == g) & ~right)
            right_at = np.flatnonzero((node_groups == g) & right)
            # index the larger side, query with the smaller one
            swap = len(left_at) > len(right_at)
            q_at, v_at = (right_at, left_at) if swap else (left_at, right_at)
            qj = _search_values(node_values[q_at], node_values[v_at], radius, **opts)
            i, j = reps[q_at[qj[:, 0]]], reps[v_at[qj[:, 1]]]
            i, j = (j, i) if swap else (i, j)
            found.append(np.stack([i, j - sizes[0], qj[:, 2]], axis=1))
    between = np.concatenate(found)
    frames = [pl.DataFrame(between, schema=["i", "j", "distance"], orient="row")]
    if others is None:
        lo = np.minimum(frames[0]["i"].to_numpy(), frames[0]["j"].to_numpy())
        hi = np.maximum(frames[0]["i"].to_numpy(), frames[0]["j"].to_numpy())
        frames[0] = pl.DataFrame({"i": lo, "j": hi, "distance": frames[0]["distance"]})
        members = np.flatnonzero((node >= 0) & (node != np.arange(len(node))))
        frames.append(pl.DataFrame({"i": node[members], "j": members, "distance": 0}))
    pairs = pl.concat([f.cast(PAIRS) for f in frames]).sort("i", "j")
    return PairSearch(
        pairs=pairs,
        node=node[: sizes[0]],
        other_node=None if others is None else _shift(node[sizes[0] :], sizes[0]),
        nodes=len(reps),
    )


def _shift(node: np.ndarray, offset: int) -> np.ndarray:
    return np.where(node >= 0, node - offset, -1)
