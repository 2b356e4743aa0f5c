"""Hashes of image files, cached per file (path, size, mtime), and their attachment to
an images table. The per-file work (OpenCV, PIL) is in :mod:`.phash`, imported only
when some file has to be read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from detforge.atomic import atomic_path

#: one row per hashed file (``error`` is null when the file hashed fine)
HASHES = pl.Schema(
    {
        "path": pl.String,
        "sha256": pl.String,
        "phash": pl.UInt64,
        "dhash": pl.Array(pl.UInt64, 2),
        "width": pl.Int32,
        "height": pl.Int32,
        "error": pl.String,
    }
)
_CACHE_KEY = {"path": pl.String, "size": pl.Int64, "mtime_ns": pl.Int64}
CACHE_FILE = "image_hashes.parquet"


def _stat(paths: list[str]) -> pl.DataFrame:
    sizes, mtimes = [], []
    for p in paths:
        try:
            st = os.stat(p)
            sizes.append(st.st_size)
            mtimes.append(st.st_mtime_ns)
        except OSError:
            sizes.append(None)
            mtimes.append(None)
    return pl.DataFrame({"path": paths, "size": sizes, "mtime_ns": mtimes}, schema=_CACHE_KEY)


Note = Callable[[str], None]


def _read_cache(cache_dir: Path | None, note: Note | None) -> pl.DataFrame:
    file = cache_dir / CACHE_FILE if cache_dir else None
    empty = pl.DataFrame(schema={**_CACHE_KEY, **HASHES})
    if file is None or not file.is_file():
        return empty
    try:
        cached = pl.read_parquet(file)
    except (OSError, pl.exceptions.PolarsError) as error:  # damaged on disk: hash again
        if note is not None:
            note(f"{file}: unreadable ({str(error).splitlines()[0]}); hashing the images again")
        return empty
    # a cache written before a hash was added is re-hashed, not half used
    return cached if cached.schema == empty.schema else empty


def hash_images(
    paths: Sequence[str | Path],
    *,
    engine: str = "process",
    workers: int | None = None,
    cache_dir: Path | None = None,
    note: Note | None = None,
) -> pl.DataFrame:
    """SHA-256, pHash (UInt64), gradient hash (2 x UInt64) and size of every image file,
    in the order given.

    Columns: ``path, sha256, phash, dhash, width, height, error, bytes`` (file size). A file that cannot be
    read or decoded gets nulls and a one-line ``error``; it is never dropped.
    With ``cache_dir``, results are cached in ``image_hashes.parquet`` keyed by
    ``(path, size, mtime_ns)`` so a rebuild does not re-read unchanged files; a damaged
    cache is hashed again and rewritten, with a ``note``.
    """
    from detforge.builders.dedup.engines import run_batches

    wanted = pl.DataFrame({"path": [str(p) for p in paths]}, schema={"path": pl.String})
    unique = wanted.unique("path", maintain_order=True)
    stats = _stat(unique["path"].to_list())
    cache = _read_cache(cache_dir, note)
    found = stats.join(cache, on=list(_CACHE_KEY), how="inner").filter(pl.col("error").is_null())
    todo = stats.join(found.select("path"), on="path", how="anti")
    if todo.height:  # only then load OpenCV (see .phash)
        from detforge.builders.dedup.phash import hash_batch

        fresh = run_batches(hash_batch, todo["path"].to_list(), engine=engine, workers=workers)
    else:
        fresh = pl.DataFrame(schema=HASHES)
    if cache_dir is not None and fresh["error"].is_null().any():
        new_rows = todo.join(fresh, on="path").filter(
            pl.col("size").is_not_null() & pl.col("error").is_null()
        )
        keep = cache.join(new_rows.select("path"), on="path", how="anti")
        merged = pl.concat([keep, new_rows.select(cache.columns)]).sort("path")
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_dir / CACHE_FILE) as tmp:
            merged.write_parquet(tmp)
    known = pl.concat([found.select(HASHES.names()), fresh.select(HASHES.names())])
    return (
        wanted.join(known, on="path", how="left", maintain_order="left")
        .cast(HASHES)
        .join(stats.select("path", bytes="size"), on="path", how="left", maintain_order="left")
    )


def image_paths(images: pl.DataFrame, roots: dict[str, str]) -> pl.Series:
    """Absolute file path of every image row: ``roots[source] / file_name``."""
    from detforge.builders.dedup.config import DedupError

    missing = sorted(set(images["source"].unique().to_list()) - set(roots))
    if missing:
        raise DedupError(f"no image root for source(s) {', '.join(map(str, missing))}")
    root = pl.col("source").replace_strict({s: str(Path(r)) for s, r in roots.items()})
    return images.select(pl.concat_str(root, pl.lit(os.sep), pl.col("file_name")).alias("path"))[
        "path"
    ]


def attach_hashes(
    images: pl.DataFrame,
    roots: dict[str, str],
    *,
    engine: str = "process",
    workers: int | None = None,
    cache_dir: Path | None = None,
    read_files: bool = True,
    note: Note | None = None,
) -> pl.DataFrame:
    """``images`` with ``sha256``/``phash``/``dhash`` filled where null, plus ``file_width``,
    ``file_height`` (the file's own size), ``file_size`` (bytes) and ``hash_error`` (null
    when hashed).

    Rows that already carry both hashes (an earlier stage hashed them) are not re-read;
    with ``read_files=False`` (nothing to match on) no file is read at all.
    """
    done = pl.col("sha256").is_not_null() & pl.col("phash").is_not_null()
    done = done & pl.col("dhash").is_not_null()
    images = images.with_row_index("_row")
    todo = images.filter(~done) if read_files else images.clear()
    hashes = hash_images(
        image_paths(todo, roots).to_list() if todo.height else [],
        engine=engine,
        workers=workers,
        cache_dir=cache_dir,
        note=note,
    )
    fresh = todo.with_columns(
        sha256=hashes["sha256"],
        phash=hashes["phash"],
        dhash=hashes["dhash"],
        file_width=hashes["width"],
        file_height=hashes["height"],
        file_size=hashes["bytes"],
        hash_error=hashes["error"],
    )
    known = (images.filter(done) if read_files else images).with_columns(
        file_width=pl.col("width"),
        file_height=pl.col("height"),
        file_size=pl.lit(None, pl.Int64),
        hash_error=pl.lit(None, pl.String),
    )
    return pl.concat([known, fresh]).sort("_row").drop("_row")
