"""A small, valid hub layout (what the build's hub export writes) for the upload tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CLASSES = ["car", "person"]

CARD_BODY = """
# sample-bigdet

## Licenses
- Objects365 images and annotations: the Objects365 terms of use.
- Open Images annotations: CC BY 4.0.
- LVIS annotations: CC BY 4.0; COCO images: CC BY 4.0 (Flickr terms for the photos).

## Citation
```bibtex
@inproceedings{cai2022bigdetection, title={BigDetection: A Large-scale Benchmark for Improved Object Detector Pre-training}}
@inproceedings{shao2019objects365, title={Objects365: A Large-Scale, High-Quality Dataset for Object Detection}}
@article{kuznetsova2020open, title={The Open Images Dataset V4}}
@inproceedings{gupta2019lvis, title={LVIS: A Dataset for Large Vocabulary Instance Segmentation}}
@inproceedings{lin2014microsoft, title={Microsoft COCO: Common Objects in Context}}
```
"""


def make_layout(root: Path, rows: dict[str, int] | None = None, **card_changes) -> Path:
    """Write a layout with splits of ``rows`` images; ``card_changes`` edit the card's YAML
    (a value of None removes the key)."""
    import datasets

    rows = rows or {"train": 3, "val": 2}
    features = datasets.Features(
        {
            "image_id": datasets.Value("int64"),
            "source": datasets.Value("string"),
            "objects": datasets.Sequence(
                {
                    "bbox": datasets.Sequence(datasets.Value("float32"), length=4),
                    "label": datasets.ClassLabel(names=CLASSES),
                }
            ),
        }
    )
    sources = ["objects365", "openimages", "lvis"]
    for split, n in rows.items():
        table = {
            "image_id": list(range(n)),
            "source": [sources[i % 3] for i in range(n)],
            "objects": [{"bbox": [[0.1, 0.1, 0.5, 0.5]], "label": [i % 2]} for i in range(n)],
        }
        dataset = datasets.Dataset.from_dict(table, features=features)
        (root / "data").mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(root / "data" / f"{split}-00000-of-00001.parquet")
    meta = {
        "pretty_name": "sample-bigdet",
        "license": "other",
        "task_categories": ["object-detection"],
        "size_categories": ["n<1K"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": split, "path": f"data/{split}-*.parquet"} for split in rows
                ],
            }
        ],
        "dataset_info": {"splits": [{"name": s, "num_examples": n} for s, n in rows.items()]},
    }
    for key, value in card_changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    (root / "README.md").write_text(f"---\n{yaml.safe_dump(meta)}---\n{CARD_BODY}")
    (root / "taxonomy").mkdir(exist_ok=True)
    (root / "taxonomy" / "classes.csv").write_text("id,name\n0,car\n1,person\n")
    (root / "taxonomy" / "mapping.csv").write_text("source,source_label,label\nlvis,1,car\n")
    return root


@pytest.fixture
def hub_layout(tmp_path: Path) -> Path:
    return make_layout(tmp_path / "hub")
