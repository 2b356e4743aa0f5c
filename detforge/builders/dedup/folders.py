"""Dedup and decontamination of plain image folders (``detforge dedup``), with the build's
hashes, search, confirmation and grouping."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge.builders.dedup.config import DedupConfig, DedupError
from detforge.builders.dedup.hashing import hash_images
from detforge.builders.dedup.images import dhash_distance, near_edges, nodes, plan_groups
from detforge.builders.dedup.mih import hamming

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".jfif")
PAIRS = pl.Schema(
    {
        "a": pl.String,
        "b": pl.String,
        "distance": pl.Int32,  # pHash distance
        "dhash_distance": pl.Int32,  # gradient-hash distance
        "exact": pl.Boolean,  # same bytes
    }
)


def list_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """Image files under ``folder`` (recursive, sorted) and the other files found."""
    if not folder.is_dir():
        raise DedupError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    images = [p for p in files if p.suffix.lower() in SUFFIXES]
    return images, [p for p in files if p.suffix.lower() not in SUFFIXES]


def hash_folder(
    folder: Path, *, engine: str = "process", workers: int | None = None
) -> pl.DataFrame:
    """One row per image file: ``image_id`` (row), ``file_name`` (relative), its hashes and
    size (``file_*``), ``hash_error`` (why it could not be hashed, else null)."""
    images, _ = list_images(folder)
    hashed = hash_images(images, engine=engine, workers=workers)
    return hashed.select(
        image_id=pl.int_range(pl.len(), dtype=pl.Int64),
        source=pl.lit("folder"),
        split=pl.lit(""),
        file_name=pl.Series([str(p.relative_to(folder)) for p in images], dtype=pl.String),
        sha256="sha256",
        phash="phash",
        dhash="dhash",
        width="width",
        height="height",
        file_width="width",
        file_height="height",
        file_size="bytes",
        hash_error="error",
    )


def _pair_rows(left: pl.DataFrame, right: pl.DataFrame, i: pl.Series, j: pl.Series) -> pl.DataFrame:
    a, b = left[i], right[j]
    frame = pl.DataFrame(
        {
            "a": a["file_name"],
            "b": b["file_name"],
            "distance": hamming(
                a["phash"].fill_null(0).to_numpy(), b["phash"].fill_null(0).to_numpy()
            ),
            "dhash_distance": dhash_distance(a["dhash"], b["dhash"]),
            "exact": a["sha256"] == b["sha256"],
            "both": a["phash"].is_not_null() & b["phash"].is_not_null(),
        }
    )
    return frame.select(
        "a",
        "b",
        distance=pl.when("both").then("distance"),
        dhash_distance=pl.when("both").then("dhash_distance"),
        exact="exact",
    )


def _members(node: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"node": node}).with_row_index("row").drop_nulls("node")


def folder_pairs(
    hashed: pl.DataFrame,
    config: DedupConfig,
    *,
    against: pl.DataFrame | None = None,
    engine: str = "process",
    workers: int | None = None,
) -> pl.DataFrame:
    """Every pair of files that are duplicates (:data:`PAIRS`): within ``hashed``, or from
    ``hashed`` to ``against``. Files with identical hashes pair with each other too."""
    node = nodes(hashed, config)
    other = against if against is not None else hashed
    other_node = nodes(against, config) if against is not None else node
    edges, _ = near_edges(
        hashed,
        node,
        config,
        others=against,
        other_node=other_node if against is not None else None,
        engine=engine,
        workers=workers,
    )
    left, right = _members(node), _members(other_node)
    links = [edges]
    if against is None:  # files sharing a node are duplicates of each other
        links.append(left.select(a="node", b="node").unique())
    elif config.exact:  # same bytes without a decodable image: matched by SHA-256
        exact = (
            hashed.with_row_index("i")
            .filter(pl.col("phash").is_null())
            .join(other.with_row_index("j"), on="sha256")
        )
        links.append(exact.select(a=pl.col("i").cast(pl.Int64), b=pl.col("j").cast(pl.Int64)))
    pairs = (
        pl.concat(links)
        .join(left.select(a="node", i="row"), on="a")
        .join(right.select(b="node", j="row"), on="b")
        .select("i", "j")
    )
    if against is None:
        pairs = pairs.filter(pl.col("i") != pl.col("j")).select(
            i=pl.min_horizontal("i", "j"), j=pl.max_horizontal("i", "j")
        )
    pairs = pairs.unique().sort("i", "j")
    return _pair_rows(hashed, other, pairs["i"], pairs["j"]).cast(PAIRS)


def folder_groups(
    hashed: pl.DataFrame,
    config: DedupConfig,
    *,
    engine: str = "process",
    workers: int | None = None,
) -> pl.DataFrame:
    """``file, kept, action, distance``: every file of a duplicate group, the group's kept
    file (most pixels, then largest file, then name order) and ``kept`` / ``duplicate``."""
    plan, _ = plan_groups(hashed, config, engine=engine, workers=workers)
    names = hashed.select("image_id", "file_name")
    return (
        plan.join(names, on="image_id")
        .join(names.rename({"image_id": "dup_group", "file_name": "kept"}), on="dup_group")
        .select(
            file="file_name",
            kept="kept",
            action=pl.when(pl.col("action") == "kept")
            .then(pl.lit("kept"))
            .otherwise(pl.lit("duplicate")),
            distance="distance",
        )
        .sort("kept", "file")
    )
