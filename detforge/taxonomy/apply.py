"""The map stage: a dataset in its sources' label spaces → the unified label space.

Semantics (every source class ``s`` mapped to unified class ``u`` is a subset of ``u``):

- ``exact``/``synonym``: ``s`` is ``u``.  ``merge``: ``u`` is the union of the
  source's merge classes feeding it (several source classes, one concept).
  ``parent``: ``s`` is a narrower kind of ``u`` (sedan → car, Man → person);
  the source's other kinds of ``u`` are not annotated.  ``drop``: no class.
- Boxes get ``label`` from the mapping; boxes of dropped classes are REMOVED
  from ``objects`` (every later stage wants labelled boxes) and counted in the
  drop report. Images are kept even when they lose every box: their
  annotation facts (label spaces, negatives) still hold.
- ``u`` is *complete* on an image (all its instances boxed) when a covering
  set of its source classes is complete there: one ``exact``/``synonym``
  class, or every ``merge`` class when the source has no exact one. ``parent``
  classes never cover. A source class is complete where it is in the
  source's label space, has a positive/negative verified label, or has a box
  (the federated rule), and is not ``not_exhaustive``.
- ``label_spaces``: ``u`` is exhaustive for a source when its label-space
  classes cover ``u`` (Objects365: exact/synonym/merge targets, not
  parent-only ones). One row per covering source class.
- ``image_labels`` per (image, ``u``): present (a box, a positive or a
  not_exhaustive label of any feeding class) but not complete →
  ``not_exhaustive`` (e.g. a box of a parent-mapped class); present, complete
  and verified positive → ``positive``; ``negative`` when nothing says ``u`` is
  present and a covering set says it is absent: one ``exact``/``synonym``
  negative (no sedan does not mean no car; no Man does not mean no person), or
  negatives of every merge class. Other merge/parent negatives are dropped and
  counted; negative-vs-present conflicts keep the presence (as ``not_exhaustive``)
  and are reported.
  Label-space classes need no rows (absent = negative there already).
"""

from __future__ import annotations

import polars as pl

from detforge import schema
from detforge.dataset import DetDataset
from detforge.errors import DetforgeError, InputError
from detforge.taxonomy.model import Taxonomy

COVERING = ("exact", "synonym")
REPORT = pl.Schema(
    {
        "source": pl.String,
        "source_label": pl.String,
        "source_name": pl.String,
        "label": pl.Int32,
        "label_name": pl.String,
        "relation": pl.String,
        "reason": pl.String,
        "boxes": pl.Int64,
        "images": pl.Int64,
        "image_labels": pl.Int64,
    }
)
DROPPED_CLASS = "class dropped"
NEGATIVE_NOT_IMPLIED = "negative of a merge/parent class does not imply the unified class"
CONFLICT = "negative contradicted by presence"

KEY = ["source", "source_label"]


def _check_complete(dataset: DetDataset, taxonomy: Taxonomy) -> None:
    """Every source class used in the data needs a mapping row (never dropped by omission)."""
    used = pl.concat(
        [
            dataset.objects.select(KEY),
            dataset.image_labels.select(KEY),
            dataset.label_spaces.select(KEY),
            dataset.source_categories.select(KEY),
        ]
    ).unique()
    missing = used.join(taxonomy.mapping.select(KEY), on=KEY, how="anti").sort(KEY)
    if missing.height:
        shown = ", ".join(f"{s}:{lbl}" for s, lbl in missing.head(10).iter_rows())
        more = f" and {missing.height - 10} more" if missing.height > 10 else ""
        where = taxonomy.path / "mapping.csv" if taxonomy.path else f"taxonomy {taxonomy.name}"
        raise InputError(
            where,
            None,
            "source_label",
            f"no mapping row for {missing.height} source class(es) in the data: {shown}{more}",
        )


def _relabel_objects(objects: pl.DataFrame, mapping: pl.DataFrame) -> pl.DataFrame:
    return objects.drop("label").join(
        mapping.select(*KEY, "label"), on=KEY, how="left", maintain_order="left"
    )


def _class_stats(mapping: pl.DataFrame) -> pl.DataFrame:
    """Per (source, label): how many exact/synonym and merge classes feed it."""
    return mapping.group_by("source", "label").agg(
        pl.col("relation").is_in(COVERING).sum().alias("n_exact"),
        (pl.col("relation") == "merge").sum().alias("n_merge"),
    )


def _covers(exact: pl.Expr, merges: pl.Expr) -> pl.Expr:
    """A set of complete source classes covers ``u``: an exact one, or all merge ones."""
    return (exact > 0) | (
        (pl.col("n_exact") == 0) & (pl.col("n_merge") > 0) & (merges == pl.col("n_merge"))
    )


def _label_spaces(label_spaces: pl.DataFrame, mapped: pl.DataFrame, stats: pl.DataFrame):
    """Unified label spaces and, per (source, label), the merge classes in the space."""
    space = label_spaces.select(KEY).unique().join(mapped, on=KEY)
    per_class = (
        space.group_by("source", "label")
        .agg(
            pl.col("relation").is_in(COVERING).sum().alias("space_exact"),
            (pl.col("relation") == "merge").sum().alias("space_merge"),
        )
        .join(stats, on=["source", "label"])
        .with_columns(_covers(pl.col("space_exact"), pl.col("space_merge")).alias("space_covered"))
    )
    covered = per_class.filter("space_covered").select("source", "label")
    rows = space.join(covered, on=["source", "label"]).select(*KEY, "label").sort(*KEY, "label")
    return schema.conform(rows, "label_spaces"), per_class.select(
        "source", "label", "space_merge", "space_covered"
    )


def _image_labels(dataset: DetDataset, objects: pl.DataFrame, mapped, stats, per_class):
    """Translated image labels, plus dropped-negative and conflict rows for the report."""
    boxes = objects.filter(pl.col("label").is_not_null()).select("image_id", *KEY).unique()
    evidence = pl.concat(
        [
            dataset.image_labels.select("image_id", *KEY, "status"),
            boxes.with_columns(pl.lit("box").alias("status")),
        ]
    )
    in_space = (
        dataset.label_spaces.select(KEY).unique().with_columns(pl.lit(True).alias("in_space"))
    )
    per_source_class = (
        evidence.group_by("image_id", *KEY)
        .agg(
            (pl.col("status") == "box").any().alias("box"),
            (pl.col("status") == "positive").any().alias("pos"),
            (pl.col("status") == "negative").any().alias("neg"),
            (pl.col("status") == "not_exhaustive").any().alias("ne"),
        )
        .join(mapped, on=KEY)
        .join(in_space, on=KEY, how="left")
        .with_columns(
            pl.col("in_space").fill_null(False),
            (pl.col("box") | pl.col("pos") | pl.col("ne")).alias("present"),
        )
        .with_columns(
            (
                (pl.col("in_space") | pl.col("pos") | pl.col("neg") | pl.col("box")) & ~pl.col("ne")
            ).alias("complete"),
            (pl.col("neg") & pl.col("relation").is_in(COVERING)).alias("negative"),
        )
    )
    is_exact = pl.col("relation").is_in(COVERING)
    is_merge = pl.col("relation") == "merge"
    unified = (
        per_source_class.group_by("image_id", "source", "label")
        .agg(
            pl.col("present").any(),
            pl.col("ne").any(),
            pl.col("pos").any(),
            pl.col("negative").any(),
            (pl.col("complete") & is_exact).sum().alias("exact_complete"),
            (pl.col("complete") & is_merge & ~pl.col("in_space")).sum().alias("merge_complete"),
            pl.col("source_label").filter("present").min().alias("present_label"),
            pl.col("source_label").filter("pos").min().alias("pos_label"),
            pl.coalesce(
                pl.col("source_label").filter("negative").min(),
                pl.col("source_label").filter("neg").min(),
            ).alias("neg_label"),
        )
        .join(stats, on=["source", "label"])
        .join(per_class, on=["source", "label"], how="left")
        .with_columns(pl.col("space_merge").fill_null(0), pl.col("space_covered").fill_null(False))
        .with_columns(
            (
                ~pl.col("ne")
                # a contradicted negative tells nothing about completeness
                & ~(pl.col("present") & pl.col("negative"))
                & (
                    pl.col("space_covered")
                    | _covers(
                        pl.col("exact_complete"), pl.col("merge_complete") + pl.col("space_merge")
                    )
                )
            ).alias("complete")
        )
    )
    status = (
        pl.when(pl.col("present") & ~pl.col("complete"))
        .then(pl.lit("not_exhaustive"))
        .when(pl.col("present") & pl.col("pos"))
        .then(pl.lit("positive"))
        .when(
            ~pl.col("present")
            & ~pl.col("space_covered")
            & (pl.col("negative") | pl.col("complete"))
        )
        .then(pl.lit("negative"))
    )
    source_label = (
        pl.when(pl.col("status") == "not_exhaustive")
        .then("present_label")
        .when(pl.col("status") == "positive")
        .then("pos_label")
        .otherwise("neg_label")
    )
    translated = (
        unified.with_columns(status.alias("status"))
        .filter(pl.col("status").is_not_null())
        .with_columns(source_label.alias("source_label"))
        .select("image_id", "source", "source_label", "label", "status")
        .sort("image_id", "label")
    )
    conflicts = unified.filter(pl.col("present") & pl.col("negative")).select(
        "image_id", "source", pl.col("neg_label").alias("source_label"), "label"
    )
    lost_negatives = per_source_class.filter(
        pl.col("neg") & ~pl.col("relation").is_in(COVERING)
    ).join(
        translated.filter(pl.col("status") == "negative").select("image_id", "label"),
        on=["image_id", "label"],
        how="anti",
    )
    return schema.conform(translated, "image_labels"), lost_negatives, conflicts


def _report(dataset, taxonomy, lost_negatives, conflicts) -> pl.DataFrame:
    """Boxes, images and image labels lost per dropped class, plus lost negatives and conflicts."""
    mapping = taxonomy.mapping
    sources = pl.concat(
        [dataset.images.select("source"), dataset.source_categories.select("source")]
    ).unique()
    dropped = mapping.filter(pl.col("label").is_null()).join(sources, on="source")
    box_counts = (
        dataset.objects.join(dropped.select(KEY), on=KEY)
        .group_by(KEY)
        .agg(pl.len().alias("boxes"), pl.col("image_id").n_unique().alias("images"))
    )
    label_counts = (
        dataset.image_labels.join(dropped.select(KEY), on=KEY)
        .group_by(KEY)
        .agg(pl.len().alias("image_labels"), pl.col("image_id").n_unique().alias("label_images"))
    )
    drops = (
        dropped.join(box_counts, on=KEY, how="left")
        .join(label_counts, on=KEY, how="left")
        .with_columns(
            pl.lit(DROPPED_CLASS).alias("reason"),
            pl.col("boxes", "image_labels").fill_null(0),
            pl.max_horizontal(pl.col("images").fill_null(0), pl.col("label_images").fill_null(0)),
        )
    )
    negatives = (
        lost_negatives.group_by(*KEY, "label")
        .agg(pl.len().alias("image_labels"), pl.col("image_id").n_unique().alias("images"))
        .with_columns(pl.lit(NEGATIVE_NOT_IMPLIED).alias("reason"), pl.lit(0).alias("boxes"))
    )
    conflict_rows = (
        conflicts.group_by(*KEY, "label")
        .agg(pl.len().alias("image_labels"), pl.col("image_id").n_unique().alias("images"))
        .with_columns(pl.lit(CONFLICT).alias("reason"), pl.lit(0).alias("boxes"))
    )
    described = mapping.select(*KEY, "source_name", "label_name", "relation")
    parts = [
        drops.select(REPORT.names()).cast(REPORT),
        *(
            frame.join(described, on=KEY, how="left").select(REPORT.names()).cast(REPORT)
            for frame in (negatives, conflict_rows)
        ),
    ]
    return pl.concat(parts).sort("reason", "source", "source_label")


def apply(dataset: DetDataset, taxonomy: Taxonomy) -> tuple[DetDataset, pl.DataFrame]:
    """Map ``dataset`` (source label spaces) onto ``taxonomy``; return it and the drop report.

    The report has one row per dropped source class of the dataset's sources
    (``reason`` = "class dropped": boxes, images and image labels lost), per
    source class whose verified negatives could not be translated, and per
    (source, unified class) negative contradicted by a box or positive.
    Raises :class:`InputError` when a source class in the data has no mapping row, and
    :class:`DetforgeError` when the dataset is already mapped.
    """
    if "taxonomy" in dataset.meta or dataset.objects["label"].is_not_null().any():
        raise DetforgeError(
            f"apply: the dataset is already mapped (taxonomy {dataset.meta.get('taxonomy')!r}); "
            "map the dataset as its sources' readers return it"
        )
    _check_complete(dataset, taxonomy)
    mapping = taxonomy.mapping
    mapped = mapping.filter(pl.col("label").is_not_null()).select(*KEY, "label", "relation")
    stats = _class_stats(mapped)
    objects = _relabel_objects(dataset.objects, mapping)
    label_spaces, per_class = _label_spaces(dataset.label_spaces, mapped, stats)
    image_labels, lost_negatives, conflicts = _image_labels(
        dataset, objects, mapped, stats, per_class
    )
    report = _report(dataset, taxonomy, lost_negatives, conflicts)
    mapped_dataset = dataset.replace(
        objects=objects.filter(pl.col("label").is_not_null()),
        image_labels=image_labels,
        label_spaces=label_spaces,
        categories=taxonomy.classes,
        meta={**dataset.meta, "taxonomy": taxonomy.name},
    )
    return mapped_dataset, report
