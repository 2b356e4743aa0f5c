"""Load detection predictions and check them against a dataset split.

Two formats are read:

* COCO results JSON: a list of ``{image_id, category_id, bbox, score}`` with
  ``bbox`` absolute pixel ``[x, y, w, h]`` (what every COCO-style detector writes).
* Parquet with columns ``image_id``, ``label`` or ``category_id``, ``score`` and
  either ``bbox`` (normalised ``[x1, y1, x2, y2]`` in [0, 1], the dataset's own
  convention) or ``bbox_xywh`` (absolute pixel ``[x, y, w, h]``, as in COCO results).

``image_id`` is the dataset's int64 ``image_id``. A ``label`` is a unified class id; a
``category_id`` is read in one of :data:`CATEGORY_ID_SCHEMES`: the build's COCO export id
(unified id + 1, COCO ids start at 1, so a detector trained on ``OUT/coco`` is scored as
it is) or the unified id. ``auto`` takes the numbering the file's ``NAME.meta.json``
declares (:mod:`detforge.evaluators.provenance`; ``detforge benchmark`` writes one), else
the one scheme the file's ids fit, and refuses a file whose ids fit several (or a source's
own ids too): guessing would score every detection against another class. With a taxonomy mapping either column holds a source's
own labels instead. Every problem is reported with a count and examples; no detection
is dropped silently. Boxes partly or wholly outside their image are kept and scored as
pycocotools scores them (see :func:`box_counts`).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from detforge.errors import InputError
from detforge.evaluators.provenance import declared_scheme

#: columns of a loaded prediction frame (boxes in absolute pixels, COCO xywh)
COLUMNS = ("pred_index", "image_id", "label", "score", "x", "y", "w", "h")
#: a ``category_id`` is, by default, the COCO export's id: the unified id + 1
CATEGORY_ID_OFFSET = 1
#: how a results file numbers ``category_id``: as the build's COCO export (unified id + 1),
#: or as the unified id itself (the Hub layout's ClassLabel, the tables' ``label``);
#: ``auto``: the only one of the two the file's ids fit, refused when not unique
CATEGORY_ID_SCHEMES = ("auto", "coco", "unified")
SCHEME_NAMES = {
    "coco": "the build's COCO export ids (unified id + 1)",
    "unified": "unified ids",
}

_JSON_SCHEMA = {
    "image_id": pl.Int64,
    "category_id": pl.Int64,
    "bbox": pl.List(pl.Float64),
    "score": pl.Float64,
}


def _read_json(path: Path) -> pl.DataFrame:
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    if not head:
        raise InputError(path, None, None, "empty file (expected a JSON list of detections)")
    if not head.startswith(b"["):
        raise InputError(path, None, None, "not a COCO results file (expected a JSON list)")
    try:
        frame = pl.read_json(path, schema=_JSON_SCHEMA)
    except pl.exceptions.PolarsError:
        frame = _read_json_slowly(path)
    return frame.with_columns(
        pl.col("bbox").list.len().alias("_n"),
        *(pl.col("bbox").list.get(i, null_on_oob=True).alias(c) for i, c in enumerate("xywh")),
    )


def _read_json_slowly(path: Path) -> pl.DataFrame:
    """Python's parser: it names the line of a syntax error and reads the NaN/Infinity
    tokens Python's ``json`` writes (which the box checks then report)."""
    try:
        records = json.loads(path.read_bytes())
        return pl.DataFrame(records, schema=_JSON_SCHEMA)
    except ValueError as error:
        raise InputError(path, None, None, f"malformed JSON: {error}") from None
    except (TypeError, pl.exceptions.PolarsError) as error:
        first = str(error).strip().splitlines()[0]
        raise InputError(path, None, None, f"malformed detections: {first}") from None


def _dtype_error(path: Path, frame: pl.DataFrame, column: str, expected: str) -> InputError:
    values = frame[column].drop_nulls().unique(maintain_order=True).head(3).to_list()
    shown = ", ".join(repr(v) for v in values)
    return InputError(
        path,
        None,
        column,
        f"column has type {frame[column].dtype}, expected {expected} (e.g. {shown})",
    )


def _check_parquet_types(path: Path, frame: pl.DataFrame, box: str, source_labels: bool) -> None:
    """Column types a detection needs; a class column of floats must hold whole numbers."""
    if not frame["image_id"].dtype.is_integer():
        raise _dtype_error(path, frame, "image_id", "integers")
    if not frame["score"].dtype.is_numeric():
        raise _dtype_error(path, frame, "score", "numbers")
    dtype = frame[box].dtype
    if not (isinstance(dtype, pl.List | pl.Array) and dtype.inner.is_numeric()):
        raise _dtype_error(path, frame, box, "a list of 4 numbers")
    for column in ("label", "category_id"):
        if column not in frame.columns or source_labels and frame[column].dtype == pl.String:
            continue
        values = frame[column]
        if values.dtype.is_float():
            fractional = frame.filter(pl.col(column).is_not_nan() & (pl.col(column) % 1 != 0))
            if fractional.height:
                shown = ", ".join(str(v) for v in fractional[column].head(3).to_list())
                raise InputError(
                    path,
                    None,
                    column,
                    f"{fractional.height} detections have a non-integer class id (e.g. {shown})",
                )
        elif not values.dtype.is_integer():
            raise _dtype_error(path, frame, column, "integer class ids")


def _read_parquet(path: Path, images: pl.DataFrame, source_labels: bool) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        first = str(error).strip().splitlines()[0]
        raise InputError(path, None, None, f"unreadable parquet: {first}") from None
    boxes = [c for c in ("bbox", "bbox_xywh") if c in frame.columns]
    missing = [c for c in ("image_id", "score") if c not in frame.columns]
    if not {"label", "category_id"} & set(frame.columns):
        missing.append("label (or category_id)")
    if missing or len(boxes) != 1:
        need = missing + ([] if len(boxes) == 1 else ["exactly one of bbox / bbox_xywh"])
        raise InputError(path, None, None, f"missing column(s): {', '.join(need)}")
    box = boxes[0]
    _check_parquet_types(path, frame, box, source_labels)
    frame = frame.with_columns(
        pl.col(box).cast(pl.List(pl.Float64)).alias("_box"),
        pl.col("score").cast(pl.Float64),
    ).with_columns(
        pl.col("_box").list.len().alias("_n"),
        *(pl.col("_box").list.get(i, null_on_oob=True).alias(f"_{i}") for i in range(4)),
    )
    if box == "bbox_xywh":
        return frame.rename({"_0": "x", "_1": "y", "_2": "w", "_3": "h"})
    corners = [pl.col(f"_{i}") for i in range(4)]
    outside = frame.with_row_index("_row").filter(
        pl.any_horizontal(((c < 0) | (c > 1)) for c in corners)
    )
    if outside.height:
        rows = outside.head(2).iter_rows(named=True)
        shown = "; ".join(f"row {r['_row']}: {r['_box']}" for r in rows)
        raise InputError(
            path,
            None,
            "bbox",
            f"{outside.height} detections have normalised coordinates outside [0, 1] "
            f"(e.g. {shown}); pixel [x, y, w, h] boxes go in a bbox_xywh column",
        )
    # normalised xyxy -> absolute xywh through each image's size
    sizes = images.select(
        "image_id",
        pl.col("width").cast(pl.Float64).alias("_W"),
        pl.col("height").cast(pl.Float64).alias("_H"),
    )
    # an unknown image_id is reported by its own check; size 1 keeps the box checks apart
    frame = frame.join(sizes, on="image_id", how="left", maintain_order="left").with_columns(
        pl.col("_W", "_H").fill_null(1.0)
    )
    return frame.with_columns(
        (pl.col("_0") * pl.col("_W")).alias("x"),
        (pl.col("_1") * pl.col("_H")).alias("y"),
        ((pl.col("_2") - pl.col("_0")) * pl.col("_W")).alias("w"),
        ((pl.col("_3") - pl.col("_1")) * pl.col("_H")).alias("h"),
    )


def _examples(frame: pl.DataFrame, column: str) -> str:
    values = frame[column].unique(maintain_order=True).head(3).to_list()
    return ", ".join(str(v) for v in values)


def load_predictions(
    path: str | Path,
    images: pl.DataFrame,
    labels: pl.Series | list[int],
    *,
    split: str,
    mapping: pl.DataFrame | None = None,
    category_ids: str = "coco",
) -> pl.DataFrame:
    """Read and validate predictions for the images of one split.

    ``images``: the split's ``images`` rows; ``labels``: the valid unified class ids.
    ``mapping``: optional ``source_label -> label`` rows (one source of a taxonomy's
    mapping) when the predictions carry that source's labels. ``category_ids``: see
    :data:`CATEGORY_ID_SCHEMES` (a parquet ``label`` column is always the unified id).
    Returns a frame with :data:`COLUMNS` (``pred_index`` = position in the file, boxes
    absolute pixel xywh). Raises :class:`InputError` listing every problem with counts.
    """
    frame, _ = read_predictions(
        path, images, labels, split=split, mapping=mapping, category_ids=category_ids
    )
    return frame


def read_predictions(
    path: str | Path,
    images: pl.DataFrame,
    labels: pl.Series | list[int],
    *,
    split: str,
    mapping: pl.DataFrame | None = None,
    category_ids: str = "auto",
    source_spaces: dict[str, pl.Series] | None = None,
    taxonomy_fingerprint: str | None = None,
) -> tuple[pl.DataFrame, str]:
    """:func:`load_predictions`, and how the class column was read: ``label``, a scheme
    of :data:`CATEGORY_ID_SCHEMES`, or ``source:<name>`` with a mapping.

    ``source_spaces``: the sources' own integer class ids (``{source: ids}``); with
    ``category_ids="auto"`` a file whose ids fit one of them as well is refused, unless
    its meta file declares the numbering (for the taxonomy of ``taxonomy_fingerprint``).
    """
    path = Path(path)
    if category_ids not in CATEGORY_ID_SCHEMES:
        raise InputError(path, None, "category_id", f"unknown numbering {category_ids!r}")
    if not path.is_file():
        raise InputError(path, None, None, "no such file")
    if path.suffix == ".parquet":
        frame = _read_parquet(path, images, source_labels=mapping is not None)
    else:
        frame = _read_json(path)
    if frame.height == 0:
        raise InputError(path, None, None, "no detections in the file")
    field = "label" if "label" in frame.columns else "category_id"
    frame = frame.with_row_index("pred_index").with_columns(
        pl.col("pred_index").cast(pl.Int64), pl.col(field).alias("_class")
    )
    what = f"detections in {path.name}"
    problems: list[tuple[str, str]] = []

    def check(bad: pl.Expr, name: str, reason: str, column: str = "pred_index") -> None:
        rows = frame.filter(bad)
        if rows.height:
            shown = field if column == "_class" else column
            examples = _examples(rows, column)
            problems.append((name, f"{rows.height} {what} {reason} (e.g. {shown} {examples})"))

    for column, name in (("image_id", "image_id"), ("_class", field), ("score", "score")):
        check(pl.col(column).is_null(), name, f"have no {name}")
    check(pl.col("_n").is_null() | (pl.col("_n") != 4), "bbox", "have no 4-number bbox")
    box = pl.col("x"), pl.col("y"), pl.col("w"), pl.col("h")
    finite = pl.all_horizontal(c.is_finite() for c in box)
    check(pl.col("_n").eq(4) & ~finite.fill_null(False), "bbox", "have a NaN/infinite bbox")
    check(finite & ((pl.col("w") < 0) | (pl.col("h") < 0)), "bbox", "have a negative width/height")
    check(pl.col("score").is_nan() | pl.col("score").is_infinite(), "score", "have a NaN score")
    check(
        pl.col("image_id").is_not_null() & ~pl.col("image_id").is_in(images["image_id"].implode()),
        "image_id",
        f"have an image_id not in split {split!r}",
        "image_id",
    )
    given = pl.col("_class").is_not_null()
    if mapping is not None:
        frame = _join_mapping(frame, mapping)
        known = given & pl.col("_known").fill_null(False)
        check(given & ~known, field, "have a source label the taxonomy does not list", "_class")
        check(
            known & pl.col("_unified").is_null(), field, "have a label the taxonomy drops", "_class"
        )
        frame = frame.with_columns(pl.col("_unified").alias("label"))
        scheme = "source labels through the taxonomy"
    else:
        valid = pl.Series(labels, dtype=pl.Int64)
        scheme = "label"
        if field == "category_id":
            scheme = category_ids
            if scheme == "auto":
                scheme = declared_scheme(path, taxonomy_fingerprint) or resolve_scheme(
                    path, frame["_class"], valid, source_spaces or {}
                )
        offset = CATEGORY_ID_OFFSET if scheme == "coco" else 0
        frame = frame.with_columns(
            (pl.col("_class").cast(pl.Int64, strict=False) - offset).alias("label")
        )
        reason = "a class of the dataset"
        if offset:
            reason = "a class of the dataset's COCO export (unified id + 1)"
        check(
            given & ~pl.col("label").is_in(valid.implode()).fill_null(False),
            field,
            f"have a {field} that is not {reason}",
            "_class",
        )
    if problems:
        if len(problems) == 1:
            raise InputError(path, None, *problems[0])
        raise InputError(path, None, None, "; ".join(f"{f}: {r}" for f, r in problems))
    result = frame.select(
        "pred_index",
        pl.col("image_id").cast(pl.Int64),
        pl.col("label").cast(pl.Int32),
        pl.col("score").cast(pl.Float64),
        *(pl.col(c).cast(pl.Float64) for c in "xywh"),
    )
    return result, scheme


def resolve_scheme(
    path: Path, ids: pl.Series, labels: pl.Series, source_spaces: dict[str, pl.Series]
) -> str:
    """The one :data:`CATEGORY_ID_SCHEMES` entry every ``category_id`` fits, or an
    :class:`InputError` naming the flag that says which (never a guess)."""
    used = ids.drop_nulls().cast(pl.Int64, strict=False).drop_nulls().unique()
    candidates = {"coco": labels + CATEGORY_ID_OFFSET, "unified": labels}
    fits = [name for name, valid in candidates.items() if used.is_in(valid.implode()).all()]
    sources = sorted(
        name for name, valid in source_spaces.items() if used.is_in(valid.implode()).all()
    )
    if len(fits) == 1 and not sources:
        return fits[0]
    if not fits:
        return "coco"  # the usual numbering: its check names the ids that fit no class
    readings = [SCHEME_NAMES[name] for name in fits] + [f"{s}'s own ids" for s in sources]
    span = f"{used.min()}..{used.max()}" if used.len() else "none"
    raise InputError(
        path,
        None,
        "category_id",
        f"the category ids ({span}) could be read as {' or '.join(readings)}: pass "
        "--category-ids coco (a detector trained on the build's COCO export) or "
        "--category-ids unified (the Hub layout), or --taxonomy NAME --source-ids SOURCE "
        "for a source's own ids",
    )


def box_counts(dets: pl.DataFrame, images: pl.DataFrame) -> dict[str, int]:
    """How many detections lie partly or wholly outside their image, and how many have
    zero width or height: kept, and scored as pycocotools scores them (a zero-size box
    overlaps nothing)."""
    size = images.select(
        "image_id", pl.col("width").cast(pl.Float64), pl.col("height").cast(pl.Float64)
    )
    joined = dets.join(size, on="image_id", how="left")
    outside = (
        (pl.col("x") < 0)
        | (pl.col("y") < 0)
        | (pl.col("x") + pl.col("w") > pl.col("width"))
        | (pl.col("y") + pl.col("h") > pl.col("height"))
    )
    return {
        "detections_outside_image": joined.filter(outside.fill_null(False)).height,
        "detections_zero_size": joined.filter((pl.col("w") == 0) | (pl.col("h") == 0)).height,
    }


def _join_mapping(frame: pl.DataFrame, mapping: pl.DataFrame) -> pl.DataFrame:
    """Add ``_unified`` (the mapped id, null = dropped) and ``_known`` (listed at all)."""
    rows = mapping.select(
        pl.col("source_label").cast(pl.String).alias("_source_label"),
        pl.col("label").alias("_unified"),
        pl.lit(True).alias("_known"),
    ).unique("_source_label", keep="first", maintain_order=True)
    return frame.with_columns(pl.col("_class").cast(pl.String).alias("_source_label")).join(
        rows, on="_source_label", how="left", maintain_order="left"
    )
