"""The one place where detforge's table schemas live.

A dataset is a handful of Arrow tables (polars frames in memory, parquet on
disk). Every module reads and writes these schemas; readers and exporters are
the only code that knows a foreign format.

Boxes are normalised **xyxy** float32 in [0, 1] (``bbox``), resolution-free so
that boxes on two copies of one photo compare directly. Beside it, ``source_bbox``
keeps the source's own pixel ``[x, y, w, h]`` in float64, unclipped: evaluation scores
against it, as pycocotools / LVISEval would on the source's file. Image ids are stable
int64 hashes of ``(source, source_image_id)``.
"""

from __future__ import annotations

import polars as pl
import polars_hash  # noqa: F401  (registers the .nchash expression namespace)

BBOX = pl.Array(pl.Float32, 4)
#: the source's own pixel box, as given (evaluation's ground truth)
SOURCE_BBOX = pl.Array(pl.Float64, 4)

#: one row per image
IMAGES = pl.Schema(
    {
        "image_id": pl.Int64,  # stable_id(source, source_image_id)
        "source": pl.String,  # objects365 | openimages | lvis | coco | ...
        "source_image_id": pl.String,  # the source's own id, as a string
        "file_name": pl.String,  # relative to the source root (see DetDataset.roots)
        "width": pl.Int32,
        "height": pl.Int32,
        "split": pl.String,  # train | val | test | ...
        "license": pl.String,  # license name or URL, null if unknown
        "attribution": pl.String,  # author / URL where the source gives one
        "sha256": pl.String,  # content hash, filled by dedup
        "phash": pl.UInt64,  # 64-bit DCT perceptual hash, filled by dedup
        "dhash": pl.Array(pl.UInt64, 2),  # 128-bit gradient hash confirming pHash matches
        "dup_group": pl.Int64,  # image_id of the kept copy of a duplicate group
    }
)

#: one row per box
OBJECTS = pl.Schema(
    {
        "image_id": pl.Int64,
        "object_id": pl.Int64,  # stable_id(source, source annotation key)
        "source": pl.String,
        "source_label": pl.String,  # raw category id / MID, as a string
        "label": pl.Int32,  # unified class id; null = not mapped (yet) or dropped
        "bbox": BBOX,  # normalised x1, y1, x2, y2
        "area": pl.Float64,  # in source pixels^2 (source's value where given)
        "is_crowd": pl.Boolean,
        "is_group_of": pl.Boolean,
        "is_occluded": pl.Boolean,  # OpenImages flags: null = unknown (-1) / not given
        "is_truncated": pl.Boolean,
        "is_depiction": pl.Boolean,
        "is_inside": pl.Boolean,
        "origin_image_id": pl.Int64,  # image the box was drawn on (differs once carried by dedup)
        "merged_object_ids": pl.List(pl.Int64),  # boxes of other copies merged into this one
        # pixel x, y, w, h on origin_image_id as the source gave it (float64, unclipped;
        # OpenImages: its normalised float64 corners times the image size); null if unknown
        "source_bbox": SOURCE_BBOX,
    }
)

#: one row per (image, label) exception to "absent means unknown"
IMAGE_LABELS = pl.Schema(
    {
        "image_id": pl.Int64,
        "source": pl.String,
        "source_label": pl.String,
        "label": pl.Int32,  # unified id, filled by the map stage
        "status": pl.String,  # positive | negative | not_exhaustive
    }
)
IMAGE_LABEL_STATUSES = ("positive", "negative", "not_exhaustive")

#: which labels a source annotates exhaustively on every one of its images
LABEL_SPACES = pl.Schema(
    {
        "source": pl.String,
        "source_label": pl.String,
        "label": pl.Int32,  # unified id, filled by the map stage
    }
)

#: one row per unified class
CATEGORIES = pl.Schema(
    {
        "id": pl.Int32,
        "name": pl.String,
        "synonyms": pl.List(pl.String),
        "synset": pl.String,
        "definition": pl.String,
        "parents": pl.List(pl.Int32),  # is_a edges
        "part_of": pl.List(pl.Int32),  # part_of edges
        "frequency": pl.String,  # r | c | f from training image counts, null if unknown
    }
)

#: one row per class of a source, in the source's own label space
SOURCE_CATEGORIES = pl.Schema(
    {
        "source": pl.String,
        "source_label": pl.String,  # category id / MID as a string
        "name": pl.String,  # raw name, verbatim (typos, trailing spaces kept)
        "synonyms": pl.List(pl.String),
        "synset": pl.String,
        "definition": pl.String,
        "frequency": pl.String,
        "parents": pl.List(pl.String),  # source hierarchy is_a parents (source labels)
        "part_of": pl.List(pl.String),
    }
)

#: records a reader could not use but a user can live without
QUARANTINE = pl.Schema(
    {
        "source": pl.String,
        "file": pl.String,
        "record": pl.String,  # row number or record id
        "field": pl.String,
        "reason": pl.String,
    }
)

#: one row per source class of a taxonomy's mapping (taxonomy/data/<name>/mapping.csv)
MAPPING = pl.Schema(
    {
        "source": pl.String,
        "source_label": pl.String,
        "source_name": pl.String,  # raw, verbatim
        "label": pl.Int32,  # unified class id; null = dropped
        "label_name": pl.String,  # unified class name (what mapping.csv stores in `label`)
        "relation": pl.String,  # exact | synonym | merge | parent | drop
        "provenance": pl.String,  # manual | synset | name | embedding
        "score": pl.Float32,
        "note": pl.String,
    }
)
RELATIONS = ("exact", "synonym", "merge", "parent", "drop")
PROVENANCES = ("manual", "synset", "name", "embedding")

TABLES: dict[str, pl.Schema] = {
    "images": IMAGES,
    "objects": OBJECTS,
    "image_labels": IMAGE_LABELS,
    "label_spaces": LABEL_SPACES,
    "categories": CATEGORIES,
    "source_categories": SOURCE_CATEGORIES,
    "quarantine": QUARANTINE,
}


def empty(table: str) -> pl.DataFrame:
    """An empty frame of one of the :data:`TABLES` schemas."""
    return pl.DataFrame(schema=TABLES[table])


def conform(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Cast ``frame`` to the schema of ``table``: missing columns become nulls,
    columns are ordered as in the schema, unknown columns raise."""
    schema = TABLES[table]
    unknown = set(frame.columns) - set(schema)
    if unknown:
        raise ValueError(f"{table}: unknown column(s) {sorted(unknown)}")
    return frame.select(
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in schema.items()
    )


#: ids are 63-bit so that they fit int64 (parquet, COCO JSON, every consumer) unsigned
ID_MASK = 0x7FFF_FFFF_FFFF_FFFF


def stable_id_expr(source: str, key: pl.Expr) -> pl.Expr:
    """Stable non-negative int64 id of each ``key`` within ``source``: xxHash64 of the key
    (as UTF-8 text) seeded with the xxHash64 of ``source``, top bit cleared. Computed
    column-wise in Rust (polars-hash): a few ms per million keys, the same everywhere."""
    seed = pl.select(pl.lit(source).nchash.xxhash64()).item()
    return (key.cast(pl.String).nchash.xxhash64(seed=seed) & ID_MASK).cast(pl.Int64)


def stable_ids(source: str, keys: pl.Series) -> pl.Series:
    """:func:`stable_id_expr` over a column of keys (any type; compared as strings)."""
    frame = keys.to_frame("key")
    return frame.select(stable_id_expr(source, pl.col("key")).alias(keys.name)).to_series()


def stable_id(source: str, key: str) -> int:
    """:func:`stable_id_expr` of one key."""
    return stable_ids(source, pl.Series([key]))[0]


def bbox_columns(objects: pl.DataFrame | pl.LazyFrame):
    """``objects`` with the ``bbox`` array unpacked into ``x1, y1, x2, y2`` columns."""
    return objects.with_columns(
        pl.col("bbox").arr.get(i).alias(name) for i, name in enumerate(("x1", "y1", "x2", "y2"))
    )


def bbox_from_columns(x1: pl.Expr, y1: pl.Expr, x2: pl.Expr, y2: pl.Expr) -> pl.Expr:
    """The ``bbox`` array expression from four coordinate expressions."""
    return pl.concat_arr(x1, y1, x2, y2).cast(BBOX).alias("bbox")
