"""The compiled inner loop of the near-duplicate search (numba).

One call searches a range of query hashes against a multi-index table of
database hashes (see :mod:`.mih` for the method). Numba compiles it on first use
and caches the machine code beside this file (or in ``NUMBA_CACHE_DIR``), so a
worker process pays the compile once per install, not per build.

Why numba: the search is billions of tiny, data-dependent steps (flip a few bits
of a key, read a bucket, XOR, popcount, compare); numpy would need one
temporary array per step and ran 10-20x slower in measurements, and numba installs
from PyPI as a wheel, with no compiler on the user's machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(cache=True, inline="always")
def popcount(x: np.uint64) -> np.int64:
    """Set bits of a uint64 (SWAR; LLVM turns it into one popcnt instruction)."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@njit(cache=True)
def search(
    queries: np.ndarray,
    query_ids: np.ndarray,
    query_orders: np.ndarray,
    sorted_values: np.ndarray,
    orders: np.ndarray,
    offsets: np.ndarray,
    offset_starts: np.ndarray,
    shifts: np.ndarray,
    widths: np.ndarray,
    taus: np.ndarray,
    masks: np.ndarray,
    mask_starts: np.ndarray,
    radius: int,
    self_search: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``(query_id, j, distance)`` with ``popcount(queries[q] ^ value_j) <= radius``.

    Per chunk ``k`` of the table: ``sorted_values[k]`` holds the database values sorted
    by the chunk's key, ``orders[k]`` their positions ``j``, and
    ``offsets[offset_starts[k] + key]`` the start of a key's bucket. For each query the
    keys within ``taus[k]`` bits of its own (``masks[mask_starts[k]:mask_starts[k + 1]]``)
    are read, queries taken in ``query_orders[k]`` (sorted by that chunk's key, so
    consecutive queries read neighbouring buckets from cache). A pair is reported only
    by the first chunk whose key is within its ``tau``, so each pair comes once; with
    ``self_search`` the queries are database values and only ``j > query_id`` is kept.
    """
    capacity = 1024
    out_i = np.empty(capacity, np.int64)
    out_j = np.empty(capacity, np.int64)
    out_d = np.empty(capacity, np.int32)
    n = 0
    for k in range(len(shifts)):
        width_mask = (np.uint64(1) << np.uint64(widths[k])) - np.uint64(1)
        base = offset_starts[k]
        for qpos in range(len(queries)):
            q = query_orders[k, qpos]
            value = queries[q]
            qid = query_ids[q]
            key = (value >> np.uint64(shifts[k])) & width_mask
            for m in range(mask_starts[k], mask_starts[k + 1]):
                probe = base + np.int64(key ^ masks[m])
                for p in range(offsets[probe], offsets[probe + 1]):
                    diff = value ^ sorted_values[k, p]
                    d = popcount(diff)
                    if d > radius:
                        continue
                    j = orders[k, p]
                    if self_search and j <= qid:
                        continue
                    earlier = False  # found by an earlier chunk already?
                    for e in range(k):
                        part = (diff >> np.uint64(shifts[e])) & (
                            (np.uint64(1) << np.uint64(widths[e])) - np.uint64(1)
                        )
                        if popcount(part) <= taus[e]:
                            earlier = True
                            break
                    if earlier:
                        continue
                    if n == capacity:
                        capacity *= 2
                        grown_i = np.empty(capacity, np.int64)
                        grown_j = np.empty(capacity, np.int64)
                        grown_d = np.empty(capacity, np.int32)
                        grown_i[:n] = out_i[:n]
                        grown_j[:n] = out_j[:n]
                        grown_d[:n] = out_d[:n]
                        out_i, out_j, out_d = grown_i, grown_j, grown_d
                    out_i[n] = qid
                    out_j[n] = j
                    out_d[n] = d
                    n += 1
    return out_i[:n], out_j[:n], out_d[:n]
