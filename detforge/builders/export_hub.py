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
from detforge.builders import export_coco, report
from detforge.builders.recipe import Recipe
from detforge.dataset import DetDataset
from detforge.extras import require

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
FEDERATED = ("neg_category_ids", "not_exhaustive_category_ids")

CITATIONS = """\
@inproceedings{cai2022bigdetection,
  title={BigDetection: A Large-scale Benchmark for Improved Object Detector Pre-training},
  author={Cai, Likun and Zhang, Zhi and Zhu, Yi and Zhang, Li and Li, Mu and Xue, Xiangyang},
  booktitle={CVPR Workshops},
  year={2022}
}
@inproceedings{shao2019objects365,
  title={Objects365: A Large-scale, High-quality Dataset for Object Detection},
  author={Shao, Shuai and Li, Zeming and Zhang, Tianyuan and Peng, Chao and Yu, Gang and
          Zhang, Xiangyu and Li, Jing and Sun, Jian},
  booktitle={ICCV},
  year={2019}
}
@article{kuznetsova2020openimages,
  title={The Open Images Dataset V4},
  author={Kuznetsova, Alina and Rom, Hassan and Alldrin, Neil and Uijlings, Jasper and
          Krasin, Ivan and Pont-Tuset, Jordi and Kamali, Shahab and Popov, Stefan and
          Malloci, Matteo and Kolesnikov, Alexander and Duerig, Tom and Ferrari, Vittorio},
  journal={IJCV},
  year={2020}
}
@inproceedings{gupta2019lvis,
  title={LVIS: A Dataset for Large Vocabulary Instance Segmentation},
  author={Gupta, Agrim and Dollar, Piotr and Girshick, Ross},
  booktitle={CVPR},
  year={2019}
}
@inproceedings{lin2014coco,
  title={Microsoft COCO: Common Objects in Context},
  author={Lin, Tsung-Yi and Maire, Michael and Belongie, Serge and Hays, James and
          Perona, Pietro and Ramanan, Deva and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  booktitle={ECCV},
  year={2014}
}
"""


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
    # the COCO export's boxes (pixels, rounded to 0.01), stored as float32
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
        f"{LICENSES_HEADING}\n\n{report.md_table(rows)}\n"
        "Use of the images is subject to each source's terms.\n"
    )


def matching_words(recipe: Recipe) -> tuple[str, str]:
    """How images were matched (dedup and decontamination), and that method's limitation."""
    near = (
        f"64-bit perceptual hash within {recipe.dedup.phash_distance} bits (found by an exact "
        f"search) confirmed by a 128-bit gradient hash within {recipe.dedup.dhash_distance} bits"
    )
    if recipe.dedup.exact and recipe.dedup.near:
        how = f"exact content hash and {near}"
    elif recipe.dedup.near:
        how = f"{near} (no exact-hash matching)"
    elif recipe.dedup.exact:
        how = "exact content hash only; near-duplicate matching was off"
    else:
        how = "no image matching: exact and near-duplicate matching were off"
    if recipe.dedup.near:
        limit = "Near-duplicate detection uses perceptual hashes: heavy crops or edits escape it."
    else:
        limit = (
            "Near-duplicate matching was off (`dedup.near: false`): resized or re-encoded copies "
            "of one photo stay separate images, and such copies of evaluation images were not "
            "removed from training."
        )
    return how, limit


def card(dataset: DetDataset, recipe: Recipe, report_md: str, nbytes: dict[str, int]) -> str:
    """The dataset card: YAML front matter + body."""
    splits = dataset.images.group_by("split").agg(pl.len()).sort("split")
    feats = features(dataset.categories.sort("id")["name"].to_list())
    sources = sorted(dataset.images["source"].unique().to_list())
    front = {
        "pretty_name": f"{recipe.name} (detforge)",
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
    for png in (report.LONG_TAIL_PNG, report.SOURCES_PNG):
        report_md = report_md.replace(f"]({png})", f"](report/{png})")
    report_md = report_md.replace("# Build report", "## Build report", 1)
    names = ", ".join(s for s in sources)
    matched, matching_limit = matching_words(recipe)
    evals = ", ".join(["the val/test splits", *recipe.decontaminate.holdouts])
    body = f"""
# {recipe.name}

A unified object-detection dataset merged by [detforge](https://pypi.org/project/detforge/)
from {names} into the `{recipe.taxonomy}` taxonomy{report.revision(dataset)} ({dataset.categories.height} classes;
`taxonomy/classes.csv`, and `taxonomy/mapping.csv` for what became of every source class).

## How it was built

`detforge build-dataset {recipe.name}`: each source is read in its own format, mapped onto
the taxonomy (dropped classes are counted below), split ({recipe.split.mode} splits),
deduplicated within each split ({matched}; a kept copy by source priority
{", ".join(recipe.priority)}, then most pixels; boxes of same-framed copies carried over,
same-label boxes drawn on different copies above IoU {recipe.dedup.box_iou} merged), and
decontaminated: training images of which any copy matches an evaluation image ({evals}) were
removed.

## Loading

```python
from datasets import load_dataset
ds = load_dataset("<org>/{recipe.name}")          # or a local folder holding this card
ds["train"].features["objects"]["category"].feature.names   # the class names
```

One row per image. `objects.bbox` is COCO `[x, y, w, h]` in absolute pixels;
`objects.category` the unified class id. `neg_category_ids` lists the unified ids of classes
verified absent from the image, `not_exhaustive_category_ids` those present but not boxed on
every instance (LVIS style; same ids as `objects.category`). `taxonomy/label_spaces.csv` lists
the classes each source annotates exhaustively on every one of its images.

This repository holds the parquet shards only. COCO JSON for mmdet / detectron2 / FiftyOne
(`coco/<split>.json`, category id = class id + 1, with the same federated lists) and the
`tables/` parquet are written by `detforge build-dataset` beside this layout; they are not
uploaded.

{licenses_section(sources)}
{report_md}

## Known limitations

- Classes a source does not annotate are missing there, not absent (a federated dataset):
  class c is annotated on an image iff it is in the image's source row of
  `taxonomy/label_spaces.csv`, in its `neg_category_ids` or `not_exhaustive_category_ids`, or
  has a box there. Train and evaluate only on annotated classes, and do not count unmatched
  detections of a `not_exhaustive_category_ids` class as false positives.
- {matching_limit}
- Box merging across sources keeps the priority source's box; the others are provenance only.

## Citation

```bibtex
{CITATIONS}```
"""
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
    recipe: Recipe,
    report_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the Hub layout into ``folder`` as one atomic directory (a progress bar over the
    images while shards are written)."""
    from rich.console import Console
    from rich.progress import Progress

    from detforge.taxonomy.io import resolve

    spec = recipe.exports.hub
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
                dataset, tmp, split, spec.shard_images, spec.embed_images, advance
            )
            written += shards
        (tmp / "taxonomy").mkdir()
        taxonomy_dir = Path(resolve(dataset.meta.get("taxonomy", recipe.taxonomy)))
        for name in ("classes.csv", "mapping.csv"):
            if (taxonomy_dir / name).is_file():
                shutil.copyfile(taxonomy_dir / name, tmp / "taxonomy" / name)
        label_spaces(dataset).write_csv(tmp / "taxonomy" / "label_spaces.csv")
        # the report without its hidden manifest (the hub folder gets its own)
        shutil.copytree(report_dir, tmp / "report", ignore=shutil.ignore_patterns(".*"))
        report_md = (report_dir / "report.md").read_text(encoding="utf-8")
        (tmp / "README.md").write_text(card(dataset, recipe, report_md, nbytes), encoding="utf-8")
    return [folder / p.relative_to(tmp) for p in written]
