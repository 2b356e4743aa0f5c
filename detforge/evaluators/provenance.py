"""What a predictions file says about itself: ``NAME.meta.json`` beside ``NAME.json``.

A COCO results file is a bare list of detections: nothing in it says how its
``category_id`` is numbered or which model wrote it. A tool that writes one (``detforge
benchmark pretrain`` does, for every step it tests) may put a small JSON object beside it:

```
{"schema": "detforge-predictions-meta", "version": 1,
 "category_ids": "coco" | "unified" | null,   # null: numbered as in ground_truth only
 "taxonomy_fingerprint": "...",               # the taxonomy those ids number (or null)
 "ground_truth": "/abs/val.json", "ground_truth_sha256": "...",
 "detections": 1200, "model": "one line: what made the detections", ...}
```

``detforge evaluate`` reads it when ``--category-ids auto`` (the default) meets ids that
would otherwise be ambiguous: the declared numbering is used, a taxonomy other than the
dataset's is refused, and a file numbered as another ground truth is sent to ``--gt``.
"""

from __future__ import annotations

import json
from pathlib import Path

from detforge.atomic import write_text
from detforge.errors import InputError

SCHEMA = "detforge-predictions-meta"
VERSION = 1
#: the numberings a meta file may declare (``null``: the ground truth file's own ids)
DECLARABLE = ("coco", "unified")


def meta_path(predictions: str | Path) -> Path:
    """``NAME.meta.json`` beside ``NAME.json`` (or ``NAME.parquet``)."""
    predictions = Path(predictions)
    return predictions.with_name(f"{predictions.stem}.meta.json")


def write_meta(predictions: str | Path, meta: dict) -> Path:
    """Write the meta file of ``predictions`` (atomically)."""
    target = meta_path(predictions)
    body = {"schema": SCHEMA, "version": VERSION, **meta}
    write_text(target, json.dumps(body, indent=2, sort_keys=True) + "\n")
    return target


def read_meta(predictions: str | Path) -> dict | None:
    """The meta file beside ``predictions``, or None when there is none."""
    path = meta_path(predictions)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise InputError(path, None, None, f"malformed JSON: {error}") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        raise InputError(path, None, "schema", f"not a {SCHEMA} file")
    declared = meta.get("category_ids")
    if declared is not None and declared not in DECLARABLE:
        raise InputError(
            path, None, "category_ids", f"{declared!r}: expected {', '.join(DECLARABLE)} or null"
        )
    return meta


def declared_scheme(predictions: str | Path, taxonomy_fingerprint: str | None) -> str | None:
    """The numbering the meta file of ``predictions`` declares for a build whose taxonomy has
    ``taxonomy_fingerprint`` (None when there is no meta file).

    Raises :class:`InputError` when the ids number another taxonomy's classes, or only
    another ground truth file's (then ``--gt`` is the way to score them).
    """
    meta = read_meta(predictions)
    if meta is None:
        return None
    path = meta_path(predictions)
    declared = meta.get("category_ids")
    if declared is None:
        gt = meta.get("ground_truth") or "the file they were made on"
        raise InputError(
            path,
            None,
            "category_ids",
            f"the detections in {Path(predictions).name} are numbered as in {gt}, not as a "
            f"build: score them with `detforge evaluate --gt {gt} -p {predictions}`",
        )
    theirs = meta.get("taxonomy_fingerprint")
    if theirs and taxonomy_fingerprint and theirs != taxonomy_fingerprint:
        raise InputError(
            path,
            None,
            "taxonomy_fingerprint",
            f"the detections number the classes of another taxonomy (fingerprint "
            f"{theirs[:12]}, the dataset's is {taxonomy_fingerprint[:12]}): their "
            "category ids would name other classes here",
        )
    return declared
