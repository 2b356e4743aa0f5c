"""`detforge dedup`: near-duplicates within an image folder, or against an eval folder."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from detforge.cli.app import app, console, err_console


@app.command("dedup")
def dedup(
    folder: Path = typer.Argument(..., help="Image folder (searched recursively)."),
    against: Path | None = typer.Option(
        None,
        "--against",
        help="An evaluation image folder: list the files of FOLDER that duplicate one of its "
        "files (decontamination) instead of the duplicates within FOLDER.",
    ),
    pairs_out: Path = typer.Option(
        ...,
        "--pairs-out",
        help="CSV to write: a,b (paths relative to FOLDER and to EVAL_FOLDER or FOLDER), "
        "distance (pHash), dhash_distance (gradient hash), exact (same bytes).",
    ),
    groups_out: Path | None = typer.Option(
        None,
        "--groups-out",
        help="CSV of duplicate groups within FOLDER: file, kept (the copy to keep: most pixels, "
        "then largest file, then name), action (kept | duplicate), distance.",
    ),
    radius: int | None = typer.Option(
        None, "--radius", help="pHash Hamming radius (of 64 bits); default: the build's."
    ),
    confirm: int | None = typer.Option(
        None,
        "--confirm",
        help="Gradient-hash distance (of 128 bits) that confirms a pHash match; default: the "
        "build's.",
    ),
    engine: str = typer.Option("process", "--engine", help="process | ray."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Ray cluster to use with --engine ray (else RAY_ADDRESS)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Worker processes (default: all CPUs)."
    ),
) -> None:
    """Find duplicate and near-duplicate images in a folder, or the files of a folder that
    duplicate an evaluation folder's, with the build's exact search (no bucket skipped).

    Files that cannot be read or decoded are listed on stderr and in PAIRS.unreadable.csv,
    never skipped silently. Exits 1 on a bad argument.
    """
    import polars as pl

    from detforge.atomic import atomic_path
    from detforge.builders.dedup import DedupConfig
    from detforge.builders.dedup.folders import (
        folder_groups,
        folder_pairs,
        hash_folder,
        list_images,
    )

    if ray_address:
        os.environ["RAY_ADDRESS"] = ray_address
    default = DedupConfig()
    config = DedupConfig(
        phash_distance=default.phash_distance if radius is None else radius,
        dhash_distance=default.dhash_distance if confirm is None else confirm,
    )
    folders = [folder] + ([against] if against else [])
    hashed = []
    for where in folders:
        images, others = list_images(where)
        err_console.print(
            f"{where}: {len(images):,} image files"
            + (f", {len(others):,} other files ignored (not an image suffix)" if others else "")
        )
        hashed.append(hash_folder(where, engine=engine, workers=workers))
    bad = pl.concat(
        [
            h.filter(pl.col("hash_error").is_not_null()).select(
                folder=pl.lit(str(w)), file="file_name", error="hash_error"
            )
            for w, h in zip(folders, hashed, strict=True)
        ]
    )
    for row in bad.head(20).iter_rows():
        err_console.print(f"unreadable: {row[0]}/{row[1]}: {row[2]}", markup=False)
    if bad.height > 20:
        err_console.print(f"... and {bad.height - 20:,} more unreadable files")
    pairs = folder_pairs(
        hashed[0],
        config,
        against=hashed[1] if against else None,
        engine=engine,
        workers=workers,
    )
    with atomic_path(pairs_out) as tmp:
        pairs.write_csv(tmp)
    if bad.height:
        bad_out = pairs_out.with_suffix(".unreadable.csv")
        with atomic_path(bad_out) as tmp:
            bad.write_csv(tmp)
        err_console.print(f"{bad.height:,} unreadable file(s) listed in {bad_out}")
    summary = f"{pairs.height:,} pair(s) within pHash {config.phash_distance} / gradient {config.dhash_distance} -> {pairs_out}"
    if against:
        summary += f"; {pairs['a'].n_unique():,} file(s) of {folder} duplicate {against}"
    console.print(summary)
    if groups_out is not None:
        groups = folder_groups(hashed[0], config, engine=engine, workers=workers)
        with atomic_path(groups_out) as tmp:
            groups.write_csv(tmp)
        duplicates = int((groups["action"] == "duplicate").sum())
        console.print(
            f"{groups['kept'].n_unique():,} duplicate group(s), {duplicates:,} file(s) that "
            f"duplicate a kept one -> {groups_out}"
        )
