"""Move the annotations of removed duplicate copies onto the kept copy.

Boxes are normalised xyxy, so a copy with the same framing (a resize or
re-encode) carries its boxes over unchanged; ``origin_image_id`` keeps the
copy they were drawn on and ``area`` is rescaled to the kept copy's pixels.
A cropped copy's boxes and image labels are dropped with it.

Label spaces stay per source, and the federated rule ("c is annotated on i if
c is in the label space of i's source, or (i, c) has an image label, or i has
a box of c") only looks at the kept copy's own source. So that the rule stays
right after a merge, every class of a merged copy's *other* source label space
that has no box on the kept image becomes an image label ``negative`` (that
source looked exhaustively and saw none), with ``source``/``source_label`` of
that source. An existing image label of the class on the kept image wins.

Copies can disagree: a ``negative`` on the kept image contradicted by a presence
of its class there (a box, a ``positive`` or a ``not_exhaustive`` label, from
either copy) keeps the presence as ``not_exhaustive``, as ``taxonomy.apply`` does
for conflicts: the class is there, and its boxes cannot be taken as complete.
The pair's negative and positive labels are replaced by that one row.
"""

from __future__ import annotations

import polars as pl

from detforge import schema


def moves(plan: pl.DataFrame, hashed: pl.DataFrame) -> pl.DataFrame:
    """Non-kept plan rows with the pixel-area ratio kept / copy."""
    pixels = hashed.select(
        "image_id",
        "source",
        px=pl.coalesce("width", "file_width").cast(pl.Float64)
        * pl.coalesce("height", "file_height").cast(pl.Float64),
    )
    kept_px = pixels.select(dup_group="image_id", kept_source="source", kept_px="px")
    return (
        plan.filter(pl.col("action") != "kept")
        .join(pixels, on="image_id")
        .join(kept_px, on="dup_group")
        .select(
            "image_id",
            "dup_group",
            "action",
            "source",
            "kept_source",
            ratio=pl.col("kept_px") / pl.col("px"),
        )
    )


def carry_objects(objects: pl.DataFrame, moved: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Objects after the carry, and per moved image ``boxes_carried`` / ``boxes_dropped``."""
    tagged = objects.join(
        moved.select("image_id", "dup_group", "action", "ratio"),
        on="image_id",
        how="left",
        maintain_order="left",
    )
    counts = (
        tagged.filter(pl.col("action").is_not_null())
        .group_by("image_id")
        .agg(
            boxes_carried=(pl.col("action") == "merged").sum().cast(pl.Int64),
            boxes_dropped=(pl.col("action") == "removed_cropped").sum().cast(pl.Int64),
        )
    )
    carried = tagged.filter(pl.col("action").is_null() | (pl.col("action") == "merged"))
    is_carried = pl.col("action") == "merged"
    out = carried.with_columns(
        image_id=pl.when(is_carried).then("dup_group").otherwise("image_id"),
        origin_image_id=pl.when(is_carried)
        .then(pl.coalesce("origin_image_id", "image_id"))
        .otherwise("origin_image_id"),
        area=pl.when(is_carried).then(pl.col("area") * pl.col("ratio")).otherwise("area"),
    )
    return schema.conform(out.drop("dup_group", "action", "ratio"), "objects"), counts


def carry_image_labels(
    image_labels: pl.DataFrame,
    label_spaces: pl.DataFrame,
    objects: pl.DataFrame,
    moved: pl.DataFrame,
) -> tuple[pl.DataFrame, int, int]:
    """Image labels after the carry (see the module doc), how many negatives were derived and
    how many (image, class) pairs were turned ``not_exhaustive`` by a contradicted negative."""
    target = moved.select("image_id", "dup_group", "action")
    tagged = image_labels.join(target, on="image_id", how="left", maintain_order="left")
    rows = tagged.filter(pl.col("action").is_null() | (pl.col("action") == "merged")).with_columns(
        image_id=pl.coalesce("dup_group", "image_id")
    )
    rows = schema.conform(rows.drop("dup_group", "action"), "image_labels").unique(
        maintain_order=True
    )
    boxed = objects.filter(pl.col("label").is_not_null()).select("image_id", "label").unique()
    merged = moved.filter(
        (pl.col("action") == "merged") & (pl.col("source") != pl.col("kept_source"))
    )
    derived = (
        merged.select(image_id="dup_group", space="source")
        .unique()
        .join(
            label_spaces.filter(pl.col("label").is_not_null()),
            left_on="space",
            right_on="source",
        )
        .select("image_id", source="space", source_label="source_label", label="label")
        .join(boxed, on=["image_id", "label"], how="anti")
        .join(rows.select("image_id", "label").drop_nulls(), on=["image_id", "label"], how="anti")
        .sort("image_id", "label", "source", "source_label")
        .unique(["image_id", "label"], keep="first", maintain_order=True)
        .with_columns(status=pl.lit("negative"))
    )
    conflicts = _conflicts(rows, objects, moved.select(image_id="dup_group").unique())
    rows = rows.join(
        conflicts.select("image_id", "label"),
        on=["image_id", "label"],
        how="anti",
        maintain_order="left",
    )
    out = pl.concat(
        [rows, schema.conform(conflicts, "image_labels"), schema.conform(derived, "image_labels")]
    )
    return out, derived.height, conflicts.height


def _conflicts(rows: pl.DataFrame, objects: pl.DataFrame, kept_ids: pl.DataFrame) -> pl.DataFrame:
    """One ``not_exhaustive`` row per (kept image, class) whose negative meets a presence,
    with the source of that presence (the first by source, source label)."""
    cols = ["image_id", "source", "source_label", "label"]
    on_kept = rows.join(kept_ids, on="image_id", how="semi").filter(pl.col("label").is_not_null())
    negated = on_kept.filter(pl.col("status") == "negative").select("image_id", "label")
    present = pl.concat(
        [
            on_kept.filter(pl.col("status") != "negative").select(cols),
            objects.join(kept_ids, on="image_id", how="semi")
            .filter(pl.col("label").is_not_null())
            .select(cols),
        ]
    )
    return (
        present.join(negated, on=["image_id", "label"], how="semi")
        .sort(cols)
        .unique(["image_id", "label"], keep="first", maintain_order=True)
        .with_columns(status=pl.lit("not_exhaustive"))
    )
