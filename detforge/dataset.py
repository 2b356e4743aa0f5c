"""DetDataset: a frozen bundle of the schema tables, with parquet I/O and validation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import polars as pl

from detforge import schema
from detforge.atomic import atomic_path
from detforge.errors import DetforgeError

FORMAT_VERSION = 1


class DatasetError(DetforgeError):
    """A dataset on disk is missing, unreadable or of another format version."""


@dataclasses.dataclass(frozen=True)
class DetDataset:
    """Tables of one detection dataset (see ``schema.TABLES``).

    ``roots`` maps a source name to the directory its ``file_name`` values are
    relative to; ``meta`` carries free-form facts (taxonomy name, recipe, ...).
    Use :meth:`replace` to derive a changed copy.
    """

    images: pl.DataFrame = dataclasses.field(default_factory=lambda: schema.empty("images"))
    objects: pl.DataFrame = dataclasses.field(default_factory=lambda: schema.empty("objects"))
    image_labels: pl.DataFrame = dataclasses.field(
        default_factory=lambda: schema.empty("image_labels")
    )
    label_spaces: pl.DataFrame = dataclasses.field(
        default_factory=lambda: schema.empty("label_spaces")
    )
    categories: pl.DataFrame = dataclasses.field(default_factory=lambda: schema.empty("categories"))
    source_categories: pl.DataFrame = dataclasses.field(
        default_factory=lambda: schema.empty("source_categories")
    )
    quarantine: pl.DataFrame = dataclasses.field(default_factory=lambda: schema.empty("quarantine"))
    roots: dict[str, str] = dataclasses.field(default_factory=dict)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for table in schema.TABLES:
            frame = getattr(self, table)
            if frame.schema != schema.TABLES[table]:
                object.__setattr__(self, table, schema.conform(frame, table))

    def replace(self, **changes: Any) -> DetDataset:
        """A copy with some tables or fields replaced (conformed to the schema)."""
        return dataclasses.replace(self, **changes)

    def tables(self) -> dict[str, pl.DataFrame]:
        return {table: getattr(self, table) for table in schema.TABLES}

    @classmethod
    def concat(cls, datasets: list[DetDataset]) -> DetDataset:
        """Stack datasets (several sources, or several splits of one) into one.

        Roots and meta are merged; a source's class list, repeated by each of its
        splits, is kept once.
        """
        tables = {
            table: pl.concat([getattr(d, table) for d in datasets], how="vertical")
            for table in schema.TABLES
        }
        for table, key in (("source_categories", ["source", "source_label"]),
                           ("label_spaces", ["source", "source_label"]),
                           ("categories", ["id"])):  # fmt: skip
            tables[table] = tables[table].unique(subset=key, keep="first", maintain_order=True)
        roots: dict[str, str] = {}
        meta: dict[str, Any] = {}
        for d in datasets:
            roots.update(d.roots)
            meta.update(d.meta)
        return cls(**tables, roots=roots, meta=meta)

    # -- I/O -------------------------------------------------------------
    def write(self, path: str | Path) -> Path:
        """Write every table as ``<path>/<table>.parquet`` plus ``dataset.json``, atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.mkdir(parents=True)
            for table, frame in self.tables().items():
                frame.write_parquet(tmp / f"{table}.parquet", statistics=False)
            info = {"format_version": FORMAT_VERSION, "roots": self.roots, "meta": self.meta}
            (tmp / "dataset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, path: str | Path) -> DetDataset:
        """Read a dataset written by :meth:`write`."""
        path = Path(path)
        info_file = path / "dataset.json"
        if not info_file.is_file():
            raise DatasetError(f"{path}: not a detforge dataset (no dataset.json)")
        info = json.loads(info_file.read_text())
        if info.get("format_version") != FORMAT_VERSION:
            raise DatasetError(
                f"{info_file}: format_version {info.get('format_version')!r}, "
                f"this detforge reads {FORMAT_VERSION}"
            )
        tables = {}
        for table in schema.TABLES:
            file = path / f"{table}.parquet"
            if not file.is_file():
                raise DatasetError(f"{path}: missing table {file.name}")
            try:
                tables[table] = pl.read_parquet(file)
            except pl.exceptions.ComputeError as error:  # truncated or not parquet
                raise DatasetError(f"{file}: unreadable ({str(error).splitlines()[0]})") from None
        return cls(**tables, roots=info.get("roots", {}), meta=info.get("meta", {}))

    # -- invariants --------------------------------------------------------
    def validate(self) -> list[str]:
        """Every violated invariant, one line each (empty list = valid)."""
        problems: list[str] = []

        def count(frame: pl.DataFrame, what: str, example_col: str) -> None:
            if frame.height:
                examples = ", ".join(str(v) for v in frame[example_col].head(3).to_list())
                problems.append(f"{what}: {frame.height} row(s) (e.g. {example_col}={examples})")

        images, objects = self.images, self.objects
        count(
            images.filter(pl.col("image_id").is_duplicated()),
            "images: duplicate image_id",
            "image_id",
        )
        count(
            images.filter(pl.col("image_id").is_null()), "images: null image_id", "source_image_id"
        )
        count(
            images.filter((pl.col("width") <= 0) | (pl.col("height") <= 0)),
            "images: non-positive width/height",
            "image_id",
        )
        if "dup_group" in images.columns:  # a kept copy names itself; no group without it
            count(
                images.filter(pl.col("dup_group").is_not_null()).join(
                    images.select(dup_group="image_id"), on="dup_group", how="anti"
                ),
                "images: dup_group not an image_id",
                "image_id",
            )
        count(
            objects.filter(pl.col("object_id").is_duplicated()),
            "objects: duplicate object_id",
            "object_id",
        )
        count(
            objects.join(images.select("image_id"), on="image_id", how="anti"),
            "objects: image_id not in images",
            "image_id",
        )
        absorbed = objects.select(pl.col("merged_object_ids").explode().drop_nulls())
        count(
            absorbed.join(objects.select(merged_object_ids="object_id"), on="merged_object_ids"),
            "objects: merged_object_ids names a box still present",
            "merged_object_ids",
        )
        boxes = schema.bbox_columns(objects)
        count(
            boxes.filter(
                ~(
                    (pl.col("x1") >= 0)
                    & (pl.col("x1") < pl.col("x2"))
                    & (pl.col("x2") <= 1)
                    & (pl.col("y1") >= 0)
                    & (pl.col("y1") < pl.col("y2"))
                    & (pl.col("y2") <= 1)
                )
                | pl.col("bbox").is_null()
            ),
            "objects: bbox not 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1",
            "object_id",
        )
        count(
            self.image_labels.join(images.select("image_id"), on="image_id", how="anti"),
            "image_labels: image_id not in images",
            "image_id",
        )
        count(
            self.image_labels.filter(~pl.col("status").is_in(schema.IMAGE_LABEL_STATUSES)),
            "image_labels: status not in " + "/".join(schema.IMAGE_LABEL_STATUSES),
            "status",
        )
        categories = self.categories
        count(categories.filter(pl.col("id").is_duplicated()), "categories: duplicate id", "id")
        count(
            categories.filter(pl.col("name").is_duplicated()), "categories: duplicate name", "name"
        )
        for table in ("objects", "image_labels", "label_spaces"):
            frame = getattr(self, table)
            labelled = frame.filter(pl.col("label").is_not_null())
            count(
                labelled.join(
                    categories.select(pl.col("id").alias("label")), on="label", how="anti"
                ),
                f"{table}: label not in categories",
                "label",
            )
        if self.source_categories.height:
            known = self.source_categories.select("source", "source_label")
            for table in ("objects", "image_labels", "label_spaces"):
                count(
                    getattr(self, table).join(known, on=["source", "source_label"], how="anti"),
                    f"{table}: source_label not in source_categories",
                    "source_label",
                )
        count(
            self.source_categories.filter(pl.struct("source", "source_label").is_duplicated()),
            "source_categories: duplicate (source, source_label)",
            "source_label",
        )
        return problems

    def federated_labels(
        self, image_ids: pl.Series, boxes: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        """``image_id, label, status`` of the given images' federated facts (unified ids):
        ``negative`` = verified absent; ``not_exhaustive`` = marked so, or verified
        ``positive`` with no box on the image (present, but not every instance boxed).

        LVIS's ``neg_category_ids`` / ``not_exhaustive_category_ids``; the COCO export writes
        them and federated evaluation honours them. ``boxes``: the ``image_id, label`` pairs
        that have a box (default: this dataset's labelled objects)."""
        labels = self.image_labels.filter(
            pl.col("label").is_not_null() & pl.col("image_id").is_in(image_ids.implode())
        ).select("image_id", "label", "status")
        if boxes is None:
            boxes = self.objects.select("image_id", "label").filter(pl.col("label").is_not_null())
        unboxed = labels.filter(pl.col("status") == "positive").join(
            boxes.select("image_id", "label"), on=["image_id", "label"], how="anti"
        )
        return (
            pl.concat(
                [
                    labels.filter(pl.col("status").is_in(["negative", "not_exhaustive"])),
                    unboxed.with_columns(status=pl.lit("not_exhaustive")),
                ]
            )
            .unique()
            .sort("image_id", "label", "status")
        )

    def summary(self) -> pl.DataFrame:
        """Images, boxes and classes per source."""
        per_image = self.images.group_by("source").agg(pl.len().alias("images"))
        per_box = self.objects.group_by("source").agg(
            pl.len().alias("boxes"), pl.col("source_label").n_unique().alias("classes_used")
        )
        per_class = self.source_categories.group_by("source").agg(pl.len().alias("classes"))
        return (
            per_image.join(per_box, on="source", how="full", coalesce=True)
            .join(per_class, on="source", how="full", coalesce=True)
            .fill_null(0)
            .sort("source")
        )
