"""The Hub dataset card's body: what the build did (from its recipe), its report, licenses,
limitations and citations. :func:`detforge.exports.hub.card` puts the YAML front matter
(features, splits) above it."""

from __future__ import annotations

from detforge.builders import report
from detforge.builders.recipe import Recipe
from detforge.dataset import DetDataset
from detforge.exports.hub import REPORT_FOLDER, licenses_section

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


def body(dataset: DetDataset, recipe: Recipe, report_md: str) -> str:
    """The card's Markdown body for ``dataset`` built by ``recipe``, embedding the build
    report ``report_md`` (its image links pointed into the layout's report folder)."""
    sources = sorted(dataset.images["source"].unique().to_list())
    for png in (report.LONG_TAIL_PNG, report.SOURCES_PNG):
        report_md = report_md.replace(f"]({png})", f"]({REPORT_FOLDER}/{png})")
    report_md = report_md.replace("# Build report", "## Build report", 1)
    names = ", ".join(s for s in sources)
    matched, matching_limit = matching_words(recipe)
    evals = ", ".join(["the val/test splits", *recipe.decontaminate.holdouts])
    text = f"""
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
    return text
