"""A built dataset as the frames the FiftyOne dataset is made of (polars only, no fiftyone).

``sample_frame`` has one row per FiftyOne sample: the dataset's images plus the
copies the build removed (duplicates, contaminated training images) when its
reports are found. ``box_frame`` has one row per ground-truth box with the
FiftyOne box ``[x, y, w, h]`` (relative) and the attributes shown in the App.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from detforge import schema
from detforge.boxes import pair_iou
from detforge.dataset import DetDataset
from detforge.errors import DetforgeError, InputError

#: reports of the build stages: (report name, stage folder prefix)
REPORTS = {"dup_groups": "dedup", "contamination": "decontaminate"}
#: IoU at or above which two boxes of different sources are one object
CONFLICT_IOU = 0.7


def find_tables(out: Path) -> Path:
    """The tables folder of a build output (``OUT/tables``), or ``OUT`` itself if it is one."""
    out = Path(out)
    for candidate in (out / "tables", out):
        if (candidate / "dataset.json").is_file():
            return candidate
    raise DetforgeError(f"{out}: no detforge dataset here (expected {out / 'tables'}/dataset.json)")


def build_reports(out: Path) -> dict[str, pl.DataFrame]:
    """The build's dedup and decontamination reports, where the build left them.

    Looks in ``OUT/report/<name>.parquet``, then in the stage cache
    ``OUT/.stages/<stage>-*/reports/<name>.parquet`` (one finished key per stage).
    """
    found: dict[str, pl.DataFrame] = {}
    for name, stage in REPORTS.items():
        candidates = [Path(out) / "report" / f"{name}.parquet"]
        candidates += sorted(Path(out).glob(f".stages/{stage}-*/reports/{name}.parquet"))
        for file in candidates:
            if file.is_file():
                found[name] = pl.read_parquet(file)
                break
    return found


def _resolve(frame: pl.DataFrame, roots: dict[str, str], where: str) -> pl.DataFrame:
    """Add ``filepath`` (absolute) from ``roots[source] / file_name``; unknown roots raise."""
    missing_roots = sorted(set(frame["source"].unique().to_list()) - set(roots))
    if missing_roots:
        raise InputError(where, None, "roots", f"no image root for source {missing_roots[0]!r}")
    root_map = pl.DataFrame(
        {"source": list(roots), "_root": [str(Path(r).absolute()) for r in roots.values()]}
    )
    return frame.join(root_map, on="source", how="left", maintain_order="left").with_columns(
        filepath=pl.concat_str(pl.col("_root"), pl.lit(os.sep), pl.col("file_name"))
    )


def check_files(samples: pl.DataFrame, where: str) -> None:
    """Raise :class:`InputError` naming the first missing image file (and how many are)."""
    exists = pl.Series([os.path.isfile(p) for p in samples["filepath"].to_list()])
    missing = samples.filter(~exists)
    if missing.height:
        first = missing.row(0, named=True)
        raise InputError(
            where,
            f"image_id {first['image_id']}",
            "file_name",
            f"image file {first['filepath']} not found ({missing.height} of {samples.height} "
            "images missing; check the dataset's roots in dataset.json)",
        )


def sample_frame(
    dataset: DetDataset,
    split: str | None,
    reports: dict[str, pl.DataFrame],
    where: str = "tables",
) -> pl.DataFrame:
    """One row per sample: ``image_id, source, source_image_id, split, file_name, filepath,
    width, height, dup_group, dup_count, removed, removed_reason, quarantine``.

    ``removed`` is null for the dataset's own images, ``duplicate`` / ``contamination``
    for copies the build removed (from its reports; they have no boxes any more).
    """
    images = dataset.images
    if split is not None:
        images = images.filter(pl.col("split") == split)
        if images.height == 0:
            have = sorted(dataset.images["split"].drop_nulls().unique().to_list())
            raise DetforgeError(f"{where}: no images in split {split!r} (splits: {have})")
    cols = ["image_id", "source", "source_image_id", "split", "file_name"]
    own = images.select(*cols, "width", "height", "dup_group").with_columns(
        removed=pl.lit(None, pl.String), removed_reason=pl.lit(None, pl.String)
    )
    parts = [own]
    dups = reports.get("dup_groups")
    if dups is not None and dups.height:
        removed = dups.filter(
            pl.col("action").is_in(["merged", "removed_cropped"])
            & pl.col("dup_group").is_in(own["image_id"].implode())
        )
        parts.append(
            removed.select(
                *cols,
                "dup_group",
                removed=pl.lit("duplicate"),
                removed_reason=pl.format("{}: {}", "action", "reason"),
            )
        )
    dirty = reports.get("contamination")
    if dirty is not None and dirty.height:
        parts.append(
            dirty.select(
                *(c for c in cols if c != "split"),
                split=pl.lit("train"),  # decontamination only ever drops training images
                removed=pl.lit("contamination"),
                removed_reason="reason",
            )
        )
    samples = (
        pl.concat(parts, how="diagonal_relaxed")
        .unique("image_id", keep="first", maintain_order=True)
        .with_columns(pl.col("width", "height").cast(pl.Int32))
    )
    samples = _resolve(samples, dataset.roots, where).drop("_root")
    samples = samples.with_columns(
        dup_count=pl.when(pl.col("dup_group").is_not_null()).then(
            pl.len().over("dup_group").cast(pl.Int64)
        )
    )
    notes = (
        dataset.quarantine.with_columns(pl.col("record").cast(pl.String))
        .group_by("source", "record")
        .agg(quarantine=pl.format("{} {}: {}", "file", "field", "reason").sort())
    )
    samples = samples.join(
        notes,
        left_on=["source", "source_image_id"],
        right_on=["source", "record"],
        how="left",
        maintain_order="left",
    )
    return samples.sort("image_id")


def label_conflicts(objects: pl.DataFrame, iou: float = CONFLICT_IOU) -> pl.DataFrame:
    """``object_id, conflict_with`` (list): boxes overlapping a box of another source with
    another unified label at IoU >= ``iou`` — one object labelled two ways after a merge."""
    boxes = schema.bbox_columns(
        objects.filter(pl.col("label").is_not_null()).select(
            "image_id", "object_id", "source", "label", "bbox"
        )
    ).drop("bbox")
    right = boxes.rename({c: f"{c}_b" for c in boxes.columns if c != "image_id"})
    pairs = boxes.join(right, on="image_id").filter(
        (pl.col("source") != pl.col("source_b")) & (pl.col("label") != pl.col("label_b"))
    )
    return (
        pairs.filter(pair_iou("_b") >= iou)
        .group_by("object_id")
        .agg(conflict_with=pl.col("object_id_b").sort())
        .sort("object_id")
    )


def box_frame(dataset: DetDataset, image_ids: pl.Series) -> pl.DataFrame:
    """One row per box of the given images: ``image_id, object_id, label (unified class name),
    box [x, y, w, h] relative, source, source_label, source_name, frequency (r/c/f as
    ``detforge evaluate`` bins it), iscrowd,
    carried, origin_image_id, merged_object_ids, conflict_with``."""
    objects = dataset.objects.filter(pl.col("image_id").is_in(image_ids.implode()))
    from detforge.evaluators.federated import frequency_bins

    # r/c/f exactly as `detforge evaluate` bins APr/APc/APf by default (LVIS's own field)
    names = dataset.categories.select(
        pl.col("id").alias("label"), pl.col("name").alias("label_name")
    )
    names = names.join(frequency_bins(dataset).select("label", "frequency"), on="label", how="left")
    source_names = dataset.source_categories.select(
        "source", "source_label", pl.col("name").alias("source_name")
    )
    conflicts = label_conflicts(objects)
    xyxy = schema.bbox_columns(objects)
    return (
        xyxy.join(names, on="label", how="left", maintain_order="left")
        .join(source_names, on=["source", "source_label"], how="left", maintain_order="left")
        .join(conflicts, on="object_id", how="left", maintain_order="left")
        .select(
            "image_id",
            "object_id",
            pl.col("label_name").alias("label"),
            pl.concat_list(
                "x1", "y1", pl.col("x2") - pl.col("x1"), pl.col("y2") - pl.col("y1")
            ).alias("box"),
            "source",
            "source_label",
            pl.col("source_name").fill_null(pl.col("source_label")),
            "frequency",
            (pl.col("is_crowd").fill_null(False) | pl.col("is_group_of").fill_null(False))
            .cast(pl.Int32)
            .alias("iscrowd"),
            (pl.col("origin_image_id").fill_null(pl.col("image_id")) != pl.col("image_id")).alias(
                "carried"
            ),
            pl.col("origin_image_id").fill_null(pl.col("image_id")),
            pl.col("merged_object_ids").fill_null([]),
            pl.col("conflict_with").fill_null([]),
        )
        .sort("image_id", "object_id")
    )
