"""Load detection predictions and check them against a dataset split.

Two formats are read:

* COCO results JSON: a list of ``{image_id, category_id, bbox, score}`` with
  ``bbox`` absolute pixel ``[x, y, w, h]`` (what every COCO-style detector writes).
* Parquet with columns ``image_id``, ``label`` or ``category_id``, ``score`` and
  either ``bbox`` (normalised ``[x1, y1, x2, y2]`` in [0, 1], the dataset's own
  convention) or ``bbox_xywh`` (absolute pixel ``[x, y, w, h]``, as in COCO results).

``image_id`` is the dataset's int64 ``image_id``. A ``label`` is a unified class id; a
``category_id`` is the build's COCO export id, unified id + 1 (COCO ids start at 1), so a
detector trained on ``OUT/coco`` is scored as it is. With a taxonomy mapping either one
holds a source's own labels instead. Every problem is reported with a count and
examples; no detection is dropped silently.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from detforge.errors import InputError

#: columns of a loaded prediction frame (boxes in absolute pixels, COCO xywh)
COLUMNS = ("pred_index", "image_id", "label", "score", "x", "y", "w", "h")
#: a ``category_id`` is, by default, the COCO export's id: the unified id + 1
CATEGORY_ID_OFFSET = 1
#: how a results file numbers ``category_id``: as the build's COCO export (unified id + 1),
#: or as the unified id itself (the Hub layout's ClassLabel, the tables' ``label``)
CATEGORY_ID_SCHEMES = ("coco", "unified")

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


def _read_parquet(path: Path, images: pl.DataFrame) -> pl.DataFrame:
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
    frame = frame.with_columns(
        pl.col(box).cast(pl.List(pl.Float64)).alias("_box"),
        pl.col("score").cast(pl.Float64),
    ).with_columns(
        pl.col("_box").list.len().alias("_n"),
        *(pl.col("_box").list.get(i, null_on_oob=True).alias(f"_{i}") for i in range(4)),
    )
    if box == "bbox_xywh":
        return frame.rename({"_0": "x", "_1": "y", "_2": "w", "_3": "h"})
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
    path = Path(path)
    if category_ids not in CATEGORY_ID_SCHEMES:
        raise InputError(path, None, "category_id", f"unknown numbering {category_ids!r}")
    if not path.is_file():
        raise InputError(path, None, None, "no such file")
    frame = _read_parquet(path, images) if path.suffix == ".parquet" else _read_json(path)
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
    check(finite & ((pl.col("w") == 0) | (pl.col("h") == 0)), "bbox", "have a zero-size bbox")
    check(finite & ((pl.col("x") < 0) | (pl.col("y") < 0)), "bbox", "have negative coordinates")
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
    else:
        coco_numbered = field == "category_id" and category_ids == "coco"
        offset = CATEGORY_ID_OFFSET if coco_numbered else 0
        frame = frame.with_columns(
            (pl.col("_class").cast(pl.Int64, strict=False) - offset).alias("label")
        )
        valid = pl.Series(labels, dtype=pl.Int64).implode()
        reason = "a class of the dataset"
        if offset:
            reason = "a class of the dataset's COCO export (unified id + 1)"
        check(
            given & ~pl.col("label").is_in(valid).fill_null(False),
            field,
            f"have a {field} that is not {reason}",
            "_class",
        )
    if problems:
        if len(problems) == 1:
            raise InputError(path, None, *problems[0])
        raise InputError(path, None, None, "; ".join(f"{f}: {r}" for f, r in problems))
    return frame.select(
        "pred_index",
        pl.col("image_id").cast(pl.Int64),
        pl.col("label").cast(pl.Int32),
        pl.col("score").cast(pl.Float64),
        *(pl.col(c).cast(pl.Float64) for c in "xywh"),
    )


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
