"""The Hugging Face Hub layout: parquet shards with ``datasets`` features, and a dataset card.

``OUT/hub/``::

    README.md                          dataset card (YAML: configs, license, features, ...)
    data/<split>-XXXXX-of-YYYYY.parquet
    taxonomy/classes.csv, mapping.csv  the unified label space and every source class's fate
    report/report.md, *.png            the build report

One row per image. ``objects`` is a struct of lists (the layout the ``transformers``
object-detection recipes read as ``example["objects"]["bbox"]``): ``bbox`` is COCO
**absolute** ``[x, y, w, h]`` in pixels, ``category`` a ``ClassLabel`` over the
taxonomy's class names (id = unified id), plus ``object_id``, ``area``,
``is_crowd``, ``is_group_of``, ``source_label``. ``image`` holds the file's bytes
(``embed_images: true``) or its absolute path.
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
    from datasets import ClassLabel, Features, Image, List, Value

    return Features(
        {
            "image": Image(),
            "image_id": Value("int64"),
            "source": Value("string"),
            "source_image_id": Value("string"),
            "file_name": Value("string"),
            "width": Value("int32"),
            "height": Value("int32"),
            "dup_group": Value("int64"),
            "objects": {
                "object_id": List(Value("int64")),
                "bbox": List(List(Value("float32"), length=4)),
                "category": List(ClassLabel(names=class_names)),
                "area": List(Value("float32")),
                "is_crowd": List(Value("bool")),
                "is_group_of": List(Value("bool")),
                "source_label": List(Value("string")),
            },
        }
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
            write_statistics=False,
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
    license_rows = pl.DataFrame(
        {
            "source": sources,
            "license": [SOURCE_LICENSES.get(s, ("see the source", ""))[0] for s in sources],
            "reference": [SOURCE_LICENSES.get(s, ("", "see the source"))[1] for s in sources],
        }
    )
    for png in (report.LONG_TAIL_PNG, report.SOURCES_PNG):
        report_md = report_md.replace(f"]({png})", f"](report/{png})")
    report_md = report_md.replace("# Build report", "## Build report", 1)
    names = ", ".join(s for s in sources)
    body = f"""
# {recipe.name}

A unified object-detection dataset merged by [detforge](https://pypi.org/project/detforge/)
from {names} into the `{recipe.taxonomy}` taxonomy ({dataset.categories.height} classes;
`taxonomy/classes.csv`, and `taxonomy/mapping.csv` for what became of every source class).

## How it was built

`detforge build-dataset {recipe.name}`: each source is read in its own format, mapped onto
the taxonomy (dropped classes are counted below), deduplicated (exact content hash and 64-bit
perceptual hash within {recipe.dedup.phash_distance} bits; a kept copy by source priority
{", ".join(recipe.priority)}; boxes of same-framed copies carried over, same-label boxes of
different sources above IoU {recipe.dedup.box_iou} merged), decontaminated against evaluation
images (the merged val/test splits{"".join(", " + h for h in recipe.decontaminate.holdouts)}),
and split
({recipe.split.mode} splits).

## Loading

```python
from datasets import load_dataset
ds = load_dataset("<org>/{recipe.name}")          # or a local folder holding this card
ds["train"].features["objects"]["category"].feature.names   # the class names
```

`objects.bbox` is COCO `[x, y, w, h]` in absolute pixels; `objects.category` the unified class id.

- COCO JSON for mmdet / detectron2: `coco/<split>.json` of the build folder (category id =
  class id + 1; `file_name` = `<source>/<file>` under `coco/images/`).
- FiftyOne: `fiftyone.Dataset.from_dir(data_path="coco/images", labels_path="coco/train.json",
  dataset_type=fiftyone.types.COCODetectionDataset)`.

## Licenses

{report.md_table(license_rows)}
Use of the images is subject to each source's terms.

{report_md}

## Known limitations

- Classes a source does not annotate are missing there, not absent: use the per-image
  `neg_category_ids` / `not_exhaustive_category_ids` of the COCO export (or the `tables/`
  parquet's `label_spaces` and `image_labels`) for federated training and evaluation.
- Near-duplicate detection uses perceptual hashes: heavy crops or edits escape it.
- Box merging across sources keeps the priority source's box; the others are provenance only.

## Citation

```bibtex
{CITATIONS}```
"""
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n" + body


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
        shutil.copytree(report_dir, tmp / "report")
        report_md = (report_dir / "report.md").read_text(encoding="utf-8")
        (tmp / "README.md").write_text(card(dataset, recipe, report_md, nbytes), encoding="utf-8")
    return [folder / p.relative_to(tmp) for p in written]
