"""The map stage: a dataset in its sources' label spaces → the unified label space.

Semantics (every source class ``s`` mapped to unified class ``u`` is a subset of ``u``):

- ``exact``/``synonym``: ``s`` is ``u``.  ``merge``: ``s`` is one of several source
  classes whose union is ``u`` (cushion and pillow; Bicycle wheel beside Wheel).
  ``parent``: ``s`` is a narrower kind of ``u`` that the source's covering classes
  already account for (sedan → car, Man under Person → person).  ``drop``: no class.
- Boxes get ``label`` from the mapping; boxes of dropped classes are REMOVED
  from ``objects`` (every later stage wants labelled boxes) and counted in the
  drop report. Images are kept even when they lose every box: their
  annotation facts (label spaces, negatives) still hold.
- ``u`` is *complete* on an image (all its instances boxed) when its covering set of
  source classes is complete there: EVERY ``exact``/``synonym`` and ``merge`` class of
  the source feeding ``u`` (LVIS ``pillow`` complete says nothing about ``cushion``,
  merged into it; OpenImages ``Wheel`` complete says nothing about ``Bicycle wheel``,
  which OpenImages does not file under Wheel). ``parent`` classes never cover: the
  mapping makes a class ``parent`` only where the source has no covering class for ``u``
  or files the class under one of them (OpenImages ``Man`` under ``Person``). A source
  class is complete where it is in the source's label space, has a positive/negative
  verified label, or has a box (the federated rule), and is not ``not_exhaustive``.
- ``label_spaces``: ``u`` is exhaustive for a source when its label-space classes cover
  ``u`` (Objects365: exact/synonym/merge targets, not parent-only ones). One row per
  covering source class.
- ``image_labels`` per (image, ``u``): present (a box, a positive or a
  not_exhaustive label of any feeding class) but not complete →
  ``not_exhaustive`` (e.g. a box of a parent-mapped class); present, complete
  and verified positive → ``positive``; ``negative`` when nothing says ``u`` is
  present and the covering set says it is absent: negatives (or the label space) of
  every class of the covering set (no sedan does not mean no car; no Man does not mean
  no person).
  Other negatives are dropped and counted; negative-vs-present conflicts keep the
  presence (as ``not_exhaustive``) and are reported.
  Label-space classes need no rows (absent = negative there already).
"""

from __future__ import annotations

import polars as pl

from detforge import schema
from detforge.dataset import DetDataset
from detforge.errors import DetforgeError, InputError
from detforge.memory import filter_columns
from detforge.taxonomy.io import fingerprint
from detforge.taxonomy.model import Taxonomy

COVERING = ("exact", "synonym", "merge")
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
NEGATIVE_NOT_IMPLIED = (
    "negative does not imply the unified class (parent class, or merge set not all negative)"
)
CONFLICT = "negative contradicted by presence"

KEY = ["source", "source_label"]


def _codes(mapping: pl.DataFrame) -> pl.DataFrame:
    """Every mapping row with small integer codes, so that the per-box and per-image work
    groups and joins on integers instead of millions of strings: ``_k`` is the row's rank
    in (source, source_label) order (the smallest ``_k`` of a source's classes is its
    smallest source_label), ``_s`` the source's rank."""
    return (
        mapping.sort(KEY)
        .with_row_index("_k")
        .with_columns(pl.col("source").rank("dense").cast(pl.UInt32).alias("_s"))
        .with_columns(pl.col("relation").is_in(COVERING).alias("cover"))
        .select("_k", "_s", *KEY, "label", "cover")
    )


def _object_codes(objects: pl.DataFrame, codes: pl.DataFrame) -> pl.DataFrame:
    """Per box, in order: mapping code ``_k`` (null: no mapping row), ``label``, ``image_id``."""
    looked_up = (
        objects.lazy()
        .select(KEY)
        .join(codes.lazy().select(*KEY, "_k", "label"), on=KEY, how="left", maintain_order="left")
        .select("_k", "label")
        .collect()
    )
    return looked_up.with_columns(objects["image_id"])  # shared, not gathered by the join


def _check_complete(dataset: DetDataset, taxonomy: Taxonomy, boxes: pl.DataFrame) -> None:
    """Every source class used in the data needs a mapping row (never dropped by omission)."""
    unmapped_boxes = filter_columns(dataset.objects, boxes["_k"].is_null(), KEY)
    used = pl.concat(
        [
            unmapped_boxes,
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


def _decode(frame: pl.DataFrame, codes: pl.DataFrame, code: str) -> pl.DataFrame:
    """``frame`` with ``source_label`` of the mapping row whose ``_k`` is in ``code``."""
    labels = codes.select(pl.col("_k").alias(code), "source_label")
    return frame.join(labels, on=code, how="left", maintain_order="left")


def _class_stats(mapped: pl.DataFrame) -> pl.DataFrame:
    """Per (source, label): how many covering (exact/synonym and merge) classes feed it."""
    return mapped.group_by("_s", "label").agg(pl.col("cover").sum().alias("n_cover"))


def _covers(complete: pl.Expr) -> pl.Expr:
    """``complete`` covering classes of a source cover ``u`` when they are all of them
    (several covering classes are disjoint parts of ``u``); a source with none (only
    ``parent`` classes) never covers it."""
    return (pl.col("n_cover") > 0) & (complete == pl.col("n_cover"))


def _label_spaces(label_spaces: pl.DataFrame, mapped: pl.DataFrame, stats: pl.DataFrame):
    """Unified label spaces and, per (source, label), the covering classes in the space."""
    space = label_spaces.select(KEY).unique().join(mapped, on=KEY)
    per_class = (
        space.group_by("_s", "label")
        .agg(pl.col("cover").sum().alias("space_cover"))
        .join(stats, on=["_s", "label"])
        .with_columns(_covers(pl.col("space_cover")).alias("space_covered"))
    )
    covered = per_class.filter("space_covered").select("_s", "label")
    rows = space.join(covered, on=["_s", "label"]).select(*KEY, "label").sort(*KEY, "label")
    return schema.conform(rows, "label_spaces"), per_class.select(
        "_s", "label", "space_cover", "space_covered"
    )


def _evidence(dataset: DetDataset, boxes: pl.DataFrame, mapped, per_class) -> pl.LazyFrame:
    """Per (image, mapped source class ``_k``): has a box / positive / negative /
    not_exhaustive label.

    Boxes of a class whose unified class the source's label space covers, on an image
    without image labels, are left out: the class is complete there whatever the boxes
    say, so its status stays empty (Objects365's boxes, mostly).
    """
    flags = {"box": None, "pos": "positive", "neg": "negative", "ne": "not_exhaustive"}
    labels = (
        dataset.image_labels.lazy()
        .join(mapped.lazy().select(*KEY, "_k"), on=KEY)
        .select(
            "image_id",
            "_k",
            *(
                (pl.col("status") == status if status else pl.lit(False)).alias(name)
                for name, status in flags.items()
            ),
        )
    )
    covered = mapped.join(per_class.filter("space_covered"), on=["_s", "label"])["_k"]
    settled = pl.col("_k").is_in(covered.implode()) & ~pl.col("image_id").is_in(
        dataset.image_labels["image_id"].unique().implode()
    )
    boxed = (
        boxes.lazy()
        .filter(pl.col("label").is_not_null() & ~settled)
        .select("image_id", "_k")
        .unique()
        .with_columns(pl.lit(name == "box").alias(name) for name in flags)
    )
    return pl.concat([labels, boxed]).group_by("image_id", "_k").agg(pl.col(*flags).any())


def _said_absent() -> pl.Expr:
    """The source verified ``u`` absent: a negative (or the label space, without a box)
    for every covering class of the source that feeds it."""
    return _covers(pl.col("neg_cover") + pl.col("space_cover") - pl.col("space_boxed"))


def _unified(evidence: pl.LazyFrame, mapped, in_space, stats, per_class) -> pl.DataFrame:
    """Per (image, source, unified class) with a status: the status and the source
    classes (``_k``) behind it. One lazy query whose result holds only the rows with
    a status (most boxed classes need none): as one lazy query, polars never holds the
    intermediate per-box frames the eager group-bys over ~one row per box would.

    Classes in the label space are counted once, through ``space_cover`` (most of them
    have no evidence row on a given image)."""
    per_source_class = (
        evidence.join(mapped.lazy().select("_k", "_s", "label", "cover"), on="_k")
        .join(in_space.lazy(), on="_k", how="left")
        .with_columns(
            pl.col("in_space").fill_null(False),
            (pl.col("box") | pl.col("pos") | pl.col("ne")).alias("present"),
        )
        .with_columns(
            (
                (pl.col("in_space") | pl.col("pos") | pl.col("neg") | pl.col("box")) & ~pl.col("ne")
            ).alias("complete"),
        )
    )
    complete = (
        ~pl.col("ne")
        # a contradicted negative tells nothing about completeness
        & ~(pl.col("present") & pl.col("negative"))
        & (pl.col("space_covered") | _covers(pl.col("cover_complete") + pl.col("space_cover")))
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
    outside_space = ~pl.col("in_space")
    return (
        per_source_class.group_by("image_id", "_s", "label")
        .agg(
            pl.col("present").any(),
            pl.col("ne").any(),
            pl.col("pos").any(),
            (pl.col("neg") & pl.col("cover") & outside_space).sum().alias("neg_cover"),
            (pl.col("present") & pl.col("cover") & pl.col("in_space")).sum().alias("space_boxed"),
            (pl.col("complete") & pl.col("cover") & outside_space).sum().alias("cover_complete"),
            pl.col("_k").filter("present").min().alias("present_k"),
            pl.col("_k").filter("pos").min().alias("pos_k"),
            pl.coalesce(
                pl.col("_k").filter(pl.col("neg") & pl.col("cover")).min(),
                pl.col("_k").filter("neg").min(),
            ).alias("neg_k"),
        )
        .join(stats.lazy(), on=["_s", "label"])
        .join(per_class.lazy(), on=["_s", "label"], how="left")
        .with_columns(
            pl.col("space_cover").fill_null(0),
            pl.col("space_covered").fill_null(False),
        )
        .with_columns(_said_absent().alias("negative"))
        .with_columns(complete.alias("complete"))
        .with_columns(status.alias("status"))
        .filter(pl.col("status").is_not_null())
        .collect()
    )


def _image_labels(dataset: DetDataset, boxes, codes, mapped, stats, per_class):
    """Translated image labels, plus dropped-negative and conflict rows for the report."""
    in_space = (
        dataset.label_spaces.select(KEY)
        .unique()
        .join(mapped.select(*KEY, "_k"), on=KEY)
        .select("_k", pl.lit(True).alias("in_space"))
    )
    tables = (mapped, in_space, stats, per_class)
    evidence = _evidence(dataset, boxes, mapped, per_class)
    # one source at a time (its classes' codes are one range): every group of the query
    # lies within a source, and the per-(image, class) intermediates of all sources then
    # never exist at once
    ranges = mapped.group_by("_s").agg(pl.col("_k").min(), pl.col("_k").max().alias("_k_max"))
    unified = pl.concat(
        [
            _unified(evidence.filter(pl.col("_k").is_between(lo, hi)), *tables)
            for lo, hi in ranges.sort("_s").select("_k", "_k_max").iter_rows()
        ]
        or [_unified(evidence.clear(), *tables)]
    )
    label_code = (
        pl.when(pl.col("status") == "not_exhaustive")
        .then("present_k")
        .when(pl.col("status") == "positive")
        .then("pos_k")
        .otherwise("neg_k")
    )
    sources = codes.select("_s", "source").unique()
    translated = (
        unified.with_columns(label_code.alias("_label_k"))
        .pipe(_decode, codes, "_label_k")
        .join(sources, on="_s", how="left", maintain_order="left")
        .select("image_id", "source", "source_label", "label", "status")
        .sort("image_id", "label")
    )
    # a contradicted negative always leaves a not_exhaustive status
    conflicts = (
        unified.filter(pl.col("present") & pl.col("negative"))
        .pipe(_decode, codes, "neg_k")
        .join(sources, on="_s", how="left", maintain_order="left")
        .select("image_id", "source", "source_label", "label")
    )
    # negatives come from image labels only: the small table, not the per-box evidence;
    # a negative is lost where it left no negative row, was not reported as a conflict,
    # and its class is not already exhaustive through the label space
    settled = pl.concat(
        [
            translated.filter(pl.col("status") == "negative").select("image_id", "label"),
            conflicts.select("image_id", "label"),
        ]
    )
    lost_negatives = (
        dataset.image_labels.filter(pl.col("status") == "negative")
        .select("image_id", *KEY)
        .join(mapped.select(*KEY, "_s", "label"), on=KEY)
        .join(
            per_class.filter("space_covered").select("_s", "label"), on=["_s", "label"], how="anti"
        )
        .select("image_id", *KEY, "label")
        .unique()
        .join(settled, on=["image_id", "label"], how="anti")
    )
    return schema.conform(translated, "image_labels"), lost_negatives, conflicts


def _report(dataset, taxonomy, boxes, codes, lost_negatives, conflicts) -> pl.DataFrame:
    """Boxes, images and image labels lost per dropped class, plus lost negatives and conflicts."""
    mapping = taxonomy.mapping
    sources = pl.concat(
        [dataset.images.select("source"), dataset.source_categories.select("source")]
    ).unique()
    dropped = mapping.filter(pl.col("label").is_null()).join(sources, on="source")
    box_counts = (
        boxes.filter(pl.col("label").is_null())
        .group_by("_k")
        .agg(pl.len().alias("boxes"), pl.col("image_id").n_unique().alias("images"))
        .join(codes.select("_k", *KEY), on="_k")
        .drop("_k")
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
    The mapped dataset's ``meta`` names the taxonomy (``taxonomy``) and the revision of its
    content (``taxonomy_fingerprint``, :func:`detforge.taxonomy.io.fingerprint`).
    Raises :class:`InputError` when a source class in the data has no mapping row, and
    :class:`DetforgeError` when the dataset is already mapped.
    """
    if "taxonomy" in dataset.meta or dataset.objects["label"].is_not_null().any():
        raise DetforgeError(
            f"apply: the dataset is already mapped (taxonomy {dataset.meta.get('taxonomy')!r}); "
            "map the dataset as its sources' readers return it"
        )
    codes = _codes(taxonomy.mapping)
    boxes = _object_codes(dataset.objects, codes)
    _check_complete(dataset, taxonomy, boxes)
    mapped = codes.filter(pl.col("label").is_not_null())
    stats = _class_stats(mapped)
    label_spaces, per_class = _label_spaces(dataset.label_spaces, mapped, stats)
    image_labels, lost_negatives, conflicts = _image_labels(
        dataset, boxes, codes, mapped, stats, per_class
    )
    report = _report(dataset, taxonomy, boxes, codes, lost_negatives, conflicts)
    # the mapped boxes last: the image-label queries above peak while they run, and the
    # copy of every box made here need not be alive then
    labels = boxes["label"]
    del boxes
    labelled = labels.is_not_null()
    objects = filter_columns(dataset.objects.with_columns(labels), labelled)
    del labels, labelled
    mapped_dataset = dataset.replace(
        objects=objects,
        image_labels=image_labels,
        label_spaces=label_spaces,
        categories=taxonomy.classes,
        meta={
            **dataset.meta,
            "taxonomy": taxonomy.name,
            "taxonomy_fingerprint": fingerprint(taxonomy),
        },
    )
    return mapped_dataset, report
