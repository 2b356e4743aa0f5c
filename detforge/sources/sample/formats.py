"""The sample's files in each source's real on-disk format (names, keys, CSV headers)."""

from __future__ import annotations

import csv
import io
import json

import orjson

from detforge.sources.sample import catalog
from detforge.sources.sample.plan import Entry
from detforge.sources.sample.render import Box

OI_BOX_HEADER = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax",
                 "IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]  # fmt: skip
OI_CLICKS = [f"XClick{i}{axis}" for axis in "XY" for i in range(1, 5)]
OI_LABEL_HEADER = ["ImageID", "Source", "LabelName", "Confidence"]
OI_SPLITS = {"train": ("oidv6-train", "train"), "val": ("validation", "validation")}
LVIS_DIRS = {"train": "train2017", "val": "val2017"}
Files = dict[str, bytes]


def _xywh(box: Box, width: int, height: int) -> list[float]:
    x1, y1, x2, y2 = box
    return [round(x1 * width, 2), round(y1 * height, 2), round((x2 - x1) * width, 2), round((y2 - y1) * height, 2)]  # fmt: skip


def _label(source: str, concept: str, nth: int = 0) -> str:
    label = catalog.CONCEPTS[concept][source]
    return label[nth % len(label)] if isinstance(label, list) else str(label)


def objects365(entries: list[Entry], split: str, files: Files) -> None:
    """``objects365/zhiyuan_objv2_<split>.json`` and ``objects365/<split>/patchN/*.jpg``."""
    images, annotations = [], []
    for n, e in enumerate(entries):
        image_id = int(e.key)
        patch = n % 2 if split == "train" else 0
        name = f"objects365_v2_{image_id:08d}.jpg"
        e.file = f"objects365/{split}/patch{patch}/{name}"
        files[e.file] = e.data
        images.append({"height": e.height, "id": image_id, "license": 5, "width": e.width,
                       "file_name": f"images/v2/patch{patch}/{name}"})  # fmt: skip
        for j, (concept, box) in enumerate(e.objects):
            x, y, w, h = _xywh(box, e.width, e.height)
            if j in e.outside:
                w = round(e.width - x + 0.1 * e.width, 2)  # runs past the right edge
            annotations.append({"id": len(annotations) + 1, "iscrowd": 0, "isfake": 0,
                                "area": round(w * h, 4), "isreflected": 0, "bbox": [x, y, w, h],
                                "image_id": image_id, "category_id": catalog.CONCEPTS[concept]["objects365"]})  # fmt: skip
    categories = [{"name": name, "id": i} for i, name in catalog.OBJECTS365]
    data = {"images": images, "annotations": annotations, "categories": categories,
            "licenses": [{"name": "", "id": 5, "url": ""}]}  # fmt: skip
    files[f"objects365/zhiyuan_objv2_{split}.json"] = orjson.dumps(data)


def _csv(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def openimages(entries: list[Entry], split: str, files: Files) -> None:
    """OpenImages box and human-verified image-label CSVs, ``<dir>/<ImageID>.jpg``."""
    prefix, folder = OI_SPLITS[split]
    boxes, labels = [], []
    for e in sorted(entries, key=lambda e: e.key):
        e.file = f"openimages/{folder}/{e.key}.jpg"
        files[e.file] = e.data
        seen: dict[str, int] = {}
        positive: list[str] = []
        for j, (concept, (x1, y1, x2, y2)) in enumerate(e.objects):
            nth = seen[concept] = seen.get(concept, -1) + 1
            mid = _label("openimages", concept, 0 if j in e.group_of else nth)
            touches = int(min(x1, y1) < 0.01 or max(x2, y2) > 0.99)
            inside = -1 if split == "val" else 0  # unknown flags read as null
            row = [e.key, "xclick", mid, 1, f"{x1:.6f}", f"{x2:.6f}", f"{y1:.6f}", f"{y2:.6f}",
                   j % 2, touches, int(j in e.group_of), 0, inside]  # fmt: skip
            if split == "train":
                row += [f"{x1:.6f}", f"{x2:.6f}", f"{x1:.6f}", f"{x2:.6f}",
                        f"{y1:.6f}", f"{y1:.6f}", f"{y2:.6f}", f"{y2:.6f}"]  # fmt: skip
            boxes.append(row)
            positive.append(mid)
        for mid in sorted(set(positive)):
            labels.append([e.key, "verification", mid, 1])
        for concept in e.negatives:
            labels.append([e.key, "verification", _label("openimages", concept), 0])
    header = OI_BOX_HEADER + (OI_CLICKS if split == "train" else [])
    files[f"openimages/{prefix}-annotations-bbox.csv"] = _csv(header, boxes)
    files[f"openimages/{prefix}-annotations-human-imagelabels-boxable.csv"] = _csv(
        OI_LABEL_HEADER, labels
    )
    if split == "train":
        classes = "".join(f"{mid},{name}\n" for mid, name in catalog.OPENIMAGES)
        files["openimages/class-descriptions-boxable.csv"] = classes.encode()
        hierarchy = json.dumps(catalog.openimages_hierarchy(), indent=4)
        files["openimages/bbox_labels_600_hierarchy.json"] = hierarchy.encode()


def _coco_image(e: Entry, split: str) -> dict:
    name = f"{int(e.key):012d}.jpg"
    return {"license": 4, "file_name": name,
            "coco_url": f"http://images.cocodataset.org/{LVIS_DIRS[split]}/{name}",
            "height": e.height, "width": e.width, "date_captured": "2013-11-14 16:28:13",
            "flickr_url": "", "id": int(e.key)}  # fmt: skip


def _segmentation(xywh: list[float]) -> list[list[float]]:
    x, y, w, h = xywh
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def lvis(entries: list[Entry], split: str, files: Files) -> None:
    """``lvis/lvis_v1_<split>.json`` (no file_name: coco_url) and the COCO image files."""
    images, annotations = [], []
    for e in entries:
        e.file = f"coco/{LVIS_DIRS[split]}/{int(e.key):012d}.jpg"
        files[e.file] = e.data
        image = _coco_image(e, split)
        del image["file_name"]
        image["neg_category_ids"] = [catalog.CONCEPTS[c]["lvis"] for c in e.negatives]
        image["not_exhaustive_category_ids"] = [
            catalog.CONCEPTS[c]["lvis"] for c in e.not_exhaustive
        ]
        images.append(image)
        for concept, box in e.objects:
            xywh = _xywh(box, e.width, e.height)
            annotations.append({"area": round(xywh[2] * xywh[3], 4), "id": len(annotations) + 1,
                                "segmentation": _segmentation(xywh), "image_id": int(e.key),
                                "bbox": xywh, "category_id": catalog.CONCEPTS[concept]["lvis"]})  # fmt: skip
    data = {"info": {"description": "detforge sample (LVIS v1 format)", "version": "1.0"},
            "licenses": catalog.LICENSES, "images": images, "annotations": annotations,
            "categories": catalog.LVIS}  # fmt: skip
    files[f"lvis/lvis_v1_{split}.json"] = orjson.dumps(data)


def coco_instances(entries: list[Entry], files: Files) -> None:
    """``coco/annotations/instances_val2017.json``: the val2017 photos' COCO boxes."""
    images, annotations = [], []
    for e in entries:
        images.append(_coco_image(e, "val"))
        for concept, box in e.objects:
            category = catalog.CONCEPTS[concept]["coco"]
            if category is None:
                continue
            xywh = _xywh(box, e.width, e.height)
            annotations.append({"segmentation": _segmentation(xywh), "area": round(xywh[2] * xywh[3], 4),
                                "iscrowd": 0, "image_id": int(e.key), "bbox": xywh,
                                "category_id": category, "id": len(annotations) + 1})  # fmt: skip
    categories = [{"supercategory": s, "id": i, "name": n} for i, n, s in catalog.COCO]
    data = {"info": {"description": "detforge sample (COCO 2017 instances format)"},
            "licenses": catalog.LICENSES, "images": images, "annotations": annotations,
            "categories": categories}  # fmt: skip
    files["coco/annotations/instances_val2017.json"] = orjson.dumps(data)


def image_ref(e: Entry) -> dict:
    """How planted.json names an image: source, split, source id, file, verified negatives."""
    ref = {"source": e.source, "split": e.split, "source_image_id": e.key}
    ref["file"] = e.file or f"coco/{LVIS_DIRS[e.split]}/{int(e.key):012d}.jpg"
    if e.negatives and e.source in ("openimages", "lvis"):
        ref["negative_labels"] = [_label(e.source, c) for c in e.negatives]
    if e.not_exhaustive and e.source == "lvis":
        ref["not_exhaustive_labels"] = [_label(e.source, c) for c in e.not_exhaustive]
    return ref
