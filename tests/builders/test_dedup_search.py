"""pHash definition and the exact multi-index-hashing search, against reference implementations."""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import polars as pl
import pytest
from PIL import Image

from detforge.builders.dedup import hash_images, mih, near_pairs, synth
from detforge.builders.dedup.mih import hamming, plan_chunks
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


@pytest.fixture(params=["brute force", "table"])
def method(request, monkeypatch) -> str:
    """Run each search test both ways: blocked brute force and the compiled table search."""
    if request.param == "table":
        monkeypatch.setattr(mih, "BRUTE_FORCE_MAX", 0)
    return request.param


@pytest.mark.parametrize("radius", [0, 3, 6, 10])
def test_search_equals_brute_force(radius: int, method: str) -> None:
    rng = np.random.default_rng(radius)
    hashes = planted_hashes(rng, 600)
    search = near_pairs(pl.Series(hashes), radius, workers=1)
    expected = brute_force(hashes, None, radius)
    assert expected.height >= 20  # planted pairs exist at every radius
    assert search.pairs.equals(expected) and search.expand().equals(expected)


def test_bipartite_and_groups_equal_brute_force(method: str) -> None:
    rng = np.random.default_rng(11)
    hashes = planted_hashes(rng, 500)
    left, right = hashes[:300], hashes[300:]
    found = near_pairs(pl.Series(left), 6, others=pl.Series(right), workers=1).pairs
    assert found.height > 0 and found.equals(brute_force(left, right, 6))
    # the larger side is indexed either way round
    swapped = near_pairs(pl.Series(right), 6, others=pl.Series(left), workers=1).pairs
    assert swapped.select(i="j", j="i", distance="distance").sort("i", "j").equals(found)
    groups = pl.Series(rng.integers(0, 3, 500))
    grouped = near_pairs(pl.Series(hashes), 6, groups=groups, workers=1).expand()
    g = groups.to_numpy()
    every = brute_force(hashes, None, 6)
    same = every.filter(pl.Series(g[every["i"].to_numpy()] == g[every["j"].to_numpy()]))
    assert 0 < same.height < every.height and grouped.equals(same)


def test_identical_hashes_collapse_to_one_node(method: str) -> None:
    """5,000 copies of one hash (blank images) cost one node: the pairs link each copy to
    the first, not every copy to every other, and expand() gives all pairs."""
    rng = np.random.default_rng(4)
    hashes = planted_hashes(rng, 300)
    blank = np.full(5000, hashes[7], np.uint64)
    every = np.concatenate([hashes, blank])
    search = near_pairs(pl.Series(every), 6, workers=1)
    assert search.nodes == len(np.unique(hashes))
    assert (search.node[300:] == 7).all()
    stars = search.pairs.filter(pl.col("i") == 7, pl.col("distance") == 0)
    assert stars.height == 5000  # one link per copy
    assert search.pairs.height < 5000 + brute_force(hashes, None, 6).height + 1
    small = np.concatenate([hashes, blank[:40]])
    assert near_pairs(pl.Series(small), 6, workers=1).expand().equals(brute_force(small, None, 6))
    left, right = (
        np.concatenate([hashes[:100], blank[:30]]),
        np.concatenate([hashes[100:], blank[:20]]),
    )
    bip = near_pairs(pl.Series(left), 6, others=pl.Series(right), workers=1)
    assert bip.expand().equals(brute_force(left, right, 6))


def test_null_hashes_never_pair(method: str) -> None:
    hashes = pl.Series([5, None, 5, None, 7], dtype=pl.UInt64)
    search = near_pairs(hashes, 2, workers=1)
    assert search.expand().rows() == [(0, 2, 0), (0, 4, 1), (2, 4, 1)]
    assert search.node.tolist() == [0, -1, 0, -1, 4]


def test_plan_reads_few_keys_and_is_exact_by_construction() -> None:
    """The pigeonhole bound needs sum(tau + 1) = radius + 1 over disjoint chunks."""
    for n in (10_000, 1_000_000, 3_500_000):
        for radius in range(0, 14):
            chunks = plan_chunks(n, n, radius)
            assert sum(t + 1 for _, _, t in chunks) == radius + 1
            bits = [b for s, w, _ in chunks for b in range(s, s + w)]
            assert len(bits) == len(set(bits)) and max(bits) < 64
    assert [w for _, w, _ in plan_chunks(3_500_000, 3_500_000, 10)] == [21, 21, 21]


def test_parallel_shards_equal_one_worker(monkeypatch) -> None:
    from detforge.builders.dedup import engines

    monkeypatch.setattr(mih, "BRUTE_FORCE_MAX", 0)
    monkeypatch.setattr(mih, "SHARD", 150)
    rng = np.random.default_rng(9)
    hashes = planted_hashes(rng, 900)
    pools = []
    real = engines.ProcessPoolExecutor

    class Spy(real):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(engines, "ProcessPoolExecutor", Spy)
    one = near_pairs(pl.Series(hashes), 8, workers=1).pairs
    two = near_pairs(pl.Series(hashes), 8, workers=2).pairs
    assert pools == [2] and two.equals(one) and one.equals(brute_force(hashes, None, 8))


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


def test_jpeg_size_equals_pil(tmp_path: Path) -> None:
    """The header read that skips PIL's set-up gives PIL's size on baseline, progressive and
    EXIF-carrying JPEGs and on real photos, and declines everything else."""
    import io

    from detforge.builders.dedup.phash import jpeg_size
    from tests.conftest import SHARED_DATA

    rng = np.random.default_rng(6)
    img = Image.fromarray(synth.photo(rng, 123, 77))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated (the stored size is still reported)
    variants = {
        "baseline": {"quality": 90},
        "progressive": {"quality": 80, "progressive": True},
        "exif": {"exif": exif},
        "subsampled": {"subsampling": 2, "quality": 60},
    }
    datas = []
    for name, options in variants.items():
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", **options)
        datas.append((name, buffer.getvalue()))
    datas += [(p.name, p.read_bytes()) for p in sorted(SHARED_DATA.rglob("*.jpg"))]
    assert len(datas) > 5
    for name, data in datas:
        assert jpeg_size(data) == Image.open(io.BytesIO(data)).size, name
    png = io.BytesIO()
    img.save(png, "PNG")
    for other in (png.getvalue(), b"", b"\xff\xd8", datas[0][1][:12], b"not an image"):
        assert jpeg_size(other) is None
