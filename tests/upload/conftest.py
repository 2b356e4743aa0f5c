"""A small, valid hub layout (what the build's hub export writes) for the upload tests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from PIL import Image

from detforge.exports.hub import licenses_section

CLASSES = ["car", "person"]
SOURCES = ["objects365", "openimages", "lvis"]

# the licenses section is the real export's (one table row per source); the rest mirrors it
CARD_BODY = f"""
# sample-bigdet

{licenses_section(sorted(SOURCES))}
## Citation
```bibtex
@inproceedings{{cai2022bigdetection, title={{BigDetection: A Large-scale Benchmark for Improved Object Detector Pre-training}}}}
@inproceedings{{shao2019objects365, title={{Objects365: A Large-Scale, High-Quality Dataset for Object Detection}}}}
@article{{kuznetsova2020open, title={{The Open Images Dataset V4}}}}
@inproceedings{{gupta2019lvis, title={{LVIS: A Dataset for Large Vocabulary Instance Segmentation}}}}
@inproceedings{{lin2014microsoft, title={{Microsoft COCO: Common Objects in Context}}}}
```
"""


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (shade, shade, shade)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_layout(
    root: Path, rows: dict[str, int] | None = None, *, embed: bool = True, **card_changes
) -> Path:
    """Write a layout with splits of ``rows`` images; ``embed=False`` stores image paths only
    (as the export does with ``embed_images: false``); ``card_changes`` edit the card's YAML
    (a value of None removes the key)."""
    import datasets

    rows = rows or {"train": 3, "val": 2}
    features = datasets.Features(
        {
            "image": datasets.Image(),
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
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    for split, n in rows.items():
        files = [images / f"{split}-{i}.png" for i in range(n)]
        for i, file in enumerate(files):
            file.write_bytes(_png(40 * i))
        table = {
            # as the export writes them: bytes and the file name, or the absolute path only
            "image": [
                {"bytes": f.read_bytes(), "path": f.name} if embed else {"path": str(f)}
                for f in files
            ],
            "image_id": list(range(n)),
            "source": [SOURCES[i % 3] for i in range(n)],
            "objects": [{"bbox": [[0.1, 0.1, 0.5, 0.5]], "label": [i % 2]} for i in range(n)],
        }
        dataset = datasets.Dataset.from_dict(table, features=features)
        (root / "data").mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(root / "data" / f"{split}-00000-of-00001.parquet")
    if embed:  # the images live in the shards only
        for file in sorted(images.iterdir()):
            file.unlink()
        images.rmdir()
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
