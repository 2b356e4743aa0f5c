"""The Hugging Face Hub layout: parquet shards with ``datasets`` features, and a dataset card.

``OUT/hub/``::

    README.md                          dataset card (YAML: configs, license, features, ...)
    data/<split>-XXXXX-of-YYYYY.parquet
    taxonomy/classes.csv, mapping.csv  the unified label space and every source class's fate
    taxonomy/label_spaces.csv          the classes each source annotates on every image
    report/report.md, *.png, *.parquet the build report

One row per image. ``objects`` is a struct of lists (the layout the ``transformers``
object-detection recipes read as ``example["objects"]["bbox"]``): ``bbox`` is COCO
**absolute** ``[x, y, w, h]`` in pixels, ``category`` a ``ClassLabel`` over the
taxonomy's class names (id = unified id), plus ``object_id``, ``area``,
``is_crowd``, ``is_group_of``, ``source_label``. Per image, ``neg_category_ids`` and
``not_exhaustive_category_ids`` are the COCO export's federated lists in unified ids.
``image`` holds the file's bytes (``embed_images: true``) or its absolute path (a
layout for local use only: the upload checks refuse it).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from detforge.atomic import atomic_path
from detforge.dataset import DetDataset
from detforge.exports import coco as export_coco
from detforge.extras import require
from detforge.markdown import md_table

#: images per parquet row group (bounds memory while embedding image bytes)
ROW_GROUP = 256

SOURCE_LICENSES = {
    "objects365": (
        "Objects365 terms of use (research only; https://www.objects365.org)",
        "Shao et al., ICCV 2019",
    ),
    "openimages": (
        "annotations CC BY 4.0; images listed as CC BY 2.0 by their authors",
        "Kuznetsova et al., IJCV 2020",
    ),
    "lvis": ("annotations CC BY 4.0; images: COCO (Flickr terms)", "Gupta et al., CVPR 2019"),
    "coco": ("annotations CC BY 4.0; images: Flickr terms of use", "Lin et al., ECCV 2014"),
}
LICENSES_HEADING = "## Licenses"
#: where the build report goes in the layout (the card's image links point into it)
REPORT_FOLDER = "report"
FEDERATED = ("neg_category_ids", "not_exhaustive_category_ids")


def features(class_names: list[str]):
    """The ``datasets.Features`` of one row (one image)."""
    ds = require("datasets", "hub")
    ids = ds.List(ds.Value("int64"))
    return ds.Features(
        {
            "image": ds.Image(),
            "image_id": ds.Value("int64"),
            "source": ds.Value("string"),
            "source_image_id": ds.Value("string"),
            "file_name": ds.Value("string"),
            "width": ds.Value("int32"),
            "height": ds.Value("int32"),
            "dup_group": ds.Value("int64"),
            "neg_category_ids": ids,  # unified ids verified absent from the image
            "not_exhaustive_category_ids": ids,  # present, but not every instance boxed
            "objects": {
                "object_id": ids,
                "bbox": ds.List(ds.List(ds.Value("float32"), length=4)),
                "category": ds.List(ds.ClassLabel(names=class_names)),
                "area": ds.List(ds.Value("float32")),
                "is_crowd": ds.List(ds.Value("bool")),
                "is_group_of": ds.List(ds.Value("bool")),
                "source_label": ds.List(ds.Value("string")),
            },
        }
    )


def federated(dataset: DetDataset, images: pl.DataFrame) -> pl.DataFrame:
    """Per image of ``images``: the COCO export's ``neg_category_ids`` and
    ``not_exhaustive_category_ids``, as unified ids (COCO ids are unified id + 1)."""
    records = export_coco.image_records(images, export_coco.federated_lists(dataset, images))
    return records.select(
        pl.col("id").alias("image_id"),
        *(pl.col(field).list.eval(pl.element() - 1) for field in FEDERATED),
    )


def rows(dataset: DetDataset, split: str) -> pl.DataFrame:
    """One row per image of ``split`` with its boxes gathered into list columns."""
    images = dataset.images.filter(pl.col("split") == split).sort("image_id")
    # the COCO export's pixel boxes (the source's own where they apply), stored as float32
    boxes = export_coco.coco_boxes(
        dataset.objects.filter(pl.col("label").is_not_null()).join(
            images.select("image_id"), on="image_id", how="semi"
        ),
        images,
    ).with_columns(pl.col("bbox").cast(pl.List(pl.Float32)).list.to_array(4))
    grouped = (
        boxes.sort("image_id", "object_id")
        .group_by("image_id", maintain_order=True)
        .agg(
            "object_id",
            "bbox",
            pl.col("label").cast(pl.Int64).alias("category"),
            pl.coalesce("area", pl.col("bbox").arr.get(2) * pl.col("bbox").arr.get(3)).alias(
                "area"
            ),
            pl.col("is_crowd").fill_null(False),
            pl.col("is_group_of").fill_null(False),
            "source_label",
        )
    )
    fields = ["object_id", "bbox", "category", "area", "is_crowd", "is_group_of", "source_label"]
    return (
        images.select(
            "image_id", "source", "source_image_id", "file_name", "width", "height", "dup_group"
        )
        .join(federated(dataset, images), on="image_id", how="left", maintain_order="left")
        .join(grouped, on="image_id", how="left", maintain_order="left")
        .with_columns(pl.col(f).fill_null([]) for f in fields)
        .with_columns(pl.struct(fields).alias("objects"))
        .drop(fields)
    )


def _image_column(frame: pl.DataFrame, roots: dict[str, str], embed: bool) -> pa.Array:
    paths = [
        str(Path(roots[source]) / name)
        for source, name in zip(frame["source"], frame["file_name"], strict=True)
    ]
    if embed:
        data = [Path(p).read_bytes() for p in paths]
        return pa.StructArray.from_arrays(
            [pa.array(data, pa.binary()), pa.array([Path(p).name for p in paths], pa.string())],
            ["bytes", "path"],
        )
    return pa.StructArray.from_arrays(
        [pa.nulls(len(paths), pa.binary()), pa.array(paths, pa.string())], ["bytes", "path"]
    )


def write_shards(
    dataset: DetDataset,
    folder: Path,
    split: str,
    shard_images: int,
    embed: bool,
    advance: Callable[[int], None],
) -> tuple[list[Path], int]:
    """Write one split's parquet shards into ``folder/data``; return them and the split's
    Arrow size in bytes (the card's ``num_bytes``)."""
    feats = features(dataset.categories.sort("id")["name"].to_list())
    table = rows(dataset, split)
    n = max(1, -(-table.height // shard_images))
    written, nbytes = [], 0
    for index in range(n):
        shard = table.slice(index * shard_images, shard_images)
        path = folder / "data" / f"{split}-{index:05d}-of-{n:05d}.parquet"
        # one row group at a time: only ROW_GROUP images' bytes are ever in memory
        with pq.ParquetWriter(
            path,
            feats.arrow_schema,
            compression="zstd",
            compression_level=3,
            # only the null count of image bytes: the upload checks read it from the footer
            write_statistics=["image.bytes"],
        ) as writer:
            for start in range(0, shard.height, ROW_GROUP):
                part = shard.slice(start, ROW_GROUP)
                arrow = part.to_arrow()
                arrow = arrow.append_column("image", _image_column(part, dataset.roots, embed))
                arrow = arrow.select(list(feats)).cast(feats.arrow_schema)
                writer.write_table(arrow)
                nbytes += arrow.nbytes
                advance(part.height)
        written.append(path)
    return written, nbytes


def size_category(n: int) -> str:
    for limit, name in (
        (10**3, "n<1K"),
        (10**4, "1K<n<10K"),
        (10**5, "10K<n<100K"),
        (10**6, "100K<n<1M"),
        (10**7, "1M<n<10M"),
    ):
        if n < limit:
            return name
    return "10M<n<100M"


def licenses_section(sources: list[str]) -> str:
    """The card's licenses section: a table with one row per source (the upload checks read
    the row of every source in the data)."""
    rows = pl.DataFrame(
        {
            "source": sources,
            "license": [SOURCE_LICENSES.get(s, ("see the source", ""))[0] for s in sources],
            "reference": [SOURCE_LICENSES.get(s, ("", "see the source"))[1] for s in sources],
        },
        schema={"source": pl.String, "license": pl.String, "reference": pl.String},
    )
    return (
        f"{LICENSES_HEADING}\n\n{md_table(rows)}\n"
        "Use of the images is subject to each source's terms.\n"
    )


def card(dataset: DetDataset, pretty_name: str, body: str, nbytes: dict[str, int]) -> str:
    """The dataset card: YAML front matter (features, splits, licenses) + ``body``."""
    splits = dataset.images.group_by("split").agg(pl.len()).sort("split")
    feats = features(dataset.categories.sort("id")["name"].to_list())
    sources = sorted(dataset.images["source"].unique().to_list())
    front = {
        "pretty_name": pretty_name,
        "license": "other",
        "license_name": "per-source",
        "license_details": "; ".join(
            f"{s}: {SOURCE_LICENSES.get(s, ('see the source', ''))[0]}" for s in sources
        ),
        "task_categories": ["object-detection"],
        "tags": ["object-detection", "detforge", "bigdetection", *sources],
        "size_categories": [size_category(dataset.images.height)],
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": s, "path": f"data/{s}-*.parquet"} for s in splits["split"]
                ],
            }
        ],
        "dataset_info": {
            "features": feats._to_yaml_list(),
            "splits": [
                {"name": s, "num_bytes": nbytes.get(s, 0), "num_examples": int(c)}
                for s, c in splits.iter_rows()
            ],
        },
    }
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n" + body


def label_spaces(dataset: DetDataset) -> pl.DataFrame:
    """``source, label, name``: the unified classes each source annotates on every image."""
    return (
        dataset.label_spaces.filter(pl.col("label").is_not_null())
        .select("source", "label")
        .unique()
        .join(dataset.categories.select(label="id", name="name"), on="label", how="left")
        .sort("source", "label")
    )


def export(
    dataset: DetDataset,
    folder: Path,
    *,
    shard_images: int,
    embed_images: bool,
    taxonomy_dir: Path,
    report_dir: Path,
    pretty_name: str,
    body: str,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the Hub layout into ``folder`` as one atomic directory (a progress bar over the
    images while shards are written): shards of ``shard_images`` images, the taxonomy's CSVs
    from ``taxonomy_dir``, the build report from ``report_dir`` (as ``report/``) and the card
    (``pretty_name``, ``body``)."""
    from rich.console import Console
    from rich.progress import Progress

    splits = sorted(dataset.images["split"].drop_nulls().unique().to_list())
    console = Console(stderr=True)
    with (
        atomic_path(folder) as tmp,
        Progress(console=console, transient=True, disable=not console.is_terminal) as bar,
    ):
        task = bar.add_task("hub shards (images)", total=dataset.images.height)

        def advance(n: int) -> None:
            bar.advance(task, n)

        (tmp / "data").mkdir(parents=True)
        written, nbytes = [], {}
        for split in splits:
            if progress:
                progress(f"export-hub {split}")
            shards, nbytes[split] = write_shards(
                dataset, tmp, split, shard_images, embed_images, advance
            )
            written += shards
        (tmp / "taxonomy").mkdir()
        for name in ("classes.csv", "mapping.csv"):
            if (taxonomy_dir / name).is_file():
                shutil.copyfile(taxonomy_dir / name, tmp / "taxonomy" / name)
        label_spaces(dataset).write_csv(tmp / "taxonomy" / "label_spaces.csv")
        # the report without its hidden manifest (the hub folder gets its own)
        shutil.copytree(report_dir, tmp / REPORT_FOLDER, ignore=shutil.ignore_patterns(".*"))
        (tmp / "README.md").write_text(card(dataset, pretty_name, body, nbytes), encoding="utf-8")
    return [folder / p.relative_to(tmp) for p in written]
