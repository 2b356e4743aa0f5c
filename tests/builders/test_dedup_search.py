"""pHash definition and the multi-index-hashing search, against reference implementations."""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import polars as pl
import pytest
from PIL import Image

from detforge.builders.dedup import hash_images, near_pairs, synth
from detforge.builders.dedup.mih import chunk_bounds, hamming
from detforge.builders.dedup.phash import phash_pixels

PAIRS = pl.Schema({"i": pl.Int64, "j": pl.Int64, "distance": pl.Int32})


def brute_force(a: np.ndarray, b: np.ndarray | None, radius: int) -> pl.DataFrame:
    """Every pair within ``radius`` from the full distance matrix."""
    other = a if b is None else b
    dist = np.bitwise_count(a[:, None] ^ other[None, :])
    hit = dist <= radius
    if b is None:
        hit = np.triu(hit, k=1)
    i, j = np.nonzero(hit)
    return pl.DataFrame({"i": i, "j": j, "distance": dist[i, j]}).cast(PAIRS).sort("i", "j")


def planted_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random hashes, a third of them copies of others with 0-9 random bits flipped."""
    base = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    base ^= rng.integers(0, 2, n).astype(np.uint64)
    for k in range(0, n, 3):
        flips = rng.choice(64, int(rng.integers(0, 10)), replace=False)
        mask = np.bitwise_or.reduce(np.uint64(1) << flips.astype(np.uint64), initial=np.uint64(0))
        base[k] = base[(k * 7 + 1) % n] ^ mask
    return base


@pytest.mark.parametrize("radius", [0, 3, 6, 9])
def test_mih_equals_brute_force(radius: int) -> None:
    rng = np.random.default_rng(radius)
    hashes = planted_hashes(rng, 600)
    found = near_pairs(pl.Series(hashes), radius).pairs
    expected = brute_force(hashes, None, radius)
    assert expected.height >= 20  # planted pairs exist at every radius
    assert found.equals(expected)


def test_mih_bipartite_and_groups_equal_brute_force() -> None:
    rng = np.random.default_rng(11)
    hashes = planted_hashes(rng, 500)
    left, right = hashes[:300], hashes[300:]
    found = near_pairs(pl.Series(left), 6, others=pl.Series(right)).pairs
    assert found.height > 0 and found.equals(brute_force(left, right, 6))
    groups = pl.Series(rng.integers(0, 3, 500))
    grouped = near_pairs(pl.Series(hashes), 6, groups=groups).pairs
    g = groups.to_numpy()
    every = brute_force(hashes, None, 6)
    same = every.filter(pl.Series(g[every["i"].to_numpy()] == g[every["j"].to_numpy()]))
    assert 0 < same.height < every.height and grouped.equals(same)


def test_chunks_cover_all_bits_once() -> None:
    for radius in range(0, 20):
        bounds = chunk_bounds(radius)
        assert len(bounds) == radius + 1
        assert sorted(bit for s, w in bounds for bit in range(s, s + w)) == list(range(64))


def test_huge_bucket_is_capped_and_counted() -> None:
    hashes = pl.Series([0] * 50 + [2**64 - 1], dtype=pl.UInt64)
    search = near_pairs(hashes, 2, max_bucket=20)
    assert search.pairs.height == 0
    assert search.capped_buckets == 3 and search.capped_hashes == 150
    assert near_pairs(hashes, 2).pairs.height == 50 * 49 // 2


def test_phash_equals_imagehash_on_the_same_pixels() -> None:
    """Exact: the same 32x32 grayscale input gives imagehash.phash's bits, bit for bit."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        gray = np.asarray(Image.fromarray(synth.photo(rng, 32, 32)).convert("L"))
        reference = int(str(imagehash.phash(Image.fromarray(gray))), 16)
        assert phash_pixels(gray) == reference


def test_phash_of_files_within_a_few_bits_of_imagehash(tmp_path: Path) -> None:
    """On files, only the downscaling differs (libjpeg 1/8 decode + INTER_AREA vs PIL's
    full decode + LANCZOS): most hashes are identical, none further than 4 bits."""
    rng = np.random.default_rng(5)
    paths = [synth.save(synth.photo(rng), tmp_path / f"{k}.jpg") for k in range(40)]
    ours = hash_images(paths, workers=1)["phash"].to_numpy()
    theirs = np.array([int(str(imagehash.phash(Image.open(p))), 16) for p in paths], np.uint64)
    dist = hamming(ours, theirs)
    assert np.median(dist) == 0 and dist.max() <= 4


def test_pairs_generated_in_small_blocks_are_the_same(monkeypatch) -> None:
    from detforge.builders.dedup import mih

    rng = np.random.default_rng(8)
    hashes = planted_hashes(rng, 300)
    hashes[:40] = hashes[0]  # one big bucket: its pairs span many blocks
    monkeypatch.setattr(mih, "BLOCK", 7)
    found = near_pairs(pl.Series(hashes), 6).pairs
    assert found.equals(brute_force(hashes, None, 6))
    left, right = hashes[:150], hashes[150:]
    assert near_pairs(pl.Series(left), 6, others=pl.Series(right)).pairs.equals(
        brute_force(left, right, 6)
    )
