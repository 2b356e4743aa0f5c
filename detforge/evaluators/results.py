"""The result of ``detforge evaluate`` and its files: eval.json, eval.md, matches.parquet.

``eval.json`` (schema_version 2)::

    {"schema_version": 2, "ground_truth": "split 'val' of the dataset" | "FILE (coco)",
     "split": "val" | null, "predictions": "preds.json", "category_ids": "coco",
     "predictions_path": "/abs/preds.json",
     "counts": {"images": .., "boxes": .., "detections": .., "detections_outside_image": ..,
                "detections_zero_size": ..},
     "frequency_from": "lvis: ..." | "train-counts: ...", "notes": [..],
     "protocols": {"coco": {"description": .., "metrics": {"AP": .., ...}}, ...},
     "per_source": {"coco": {"objects365": {"AP": .., ...}, ...}, ...},
     "per_class": {"coco": [{"label", "name", "frequency", "boxes", "detections",
                             "AP", "AP50", "AP75", "AR"}, ...], ...}}

Metrics are fractions in [0, 1]; ``null`` where no class has ground truth.

The three files are one set: :func:`write` builds them in a temporary folder and renames
it into place, and ``matches.parquet`` records the SHA-256 of its ``eval.json``
(:data:`PAIR_KEY`) so a reader can tell that the two belong together.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import polars as pl

from detforge import atomic
from detforge.errors import DetforgeError

SCHEMA_VERSION = 2
HEADLINE = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")
#: the files of one evaluation (the output folder holds nothing else)
FILES = ("eval.json", "eval.md", "matches.parquet")
#: matches.parquet metadata key: SHA-256 of the eval.json written with it
PAIR_KEY = "detforge:eval_json_sha256"


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Everything one evaluation produced (see :func:`to_json` for the file layout)."""

    split: str | None
    predictions: str
    counts: dict[str, int]
    frequency_from: str
    protocols: dict[str, dict]  # name -> description, overall, per_source, per_class, matches
    ground_truth: str = ""
    category_ids: str = ""  # how the predictions' class column was read
    notes: tuple[str, ...] = ()
    predictions_path: str = ""  # where the predictions file was (absolute)

    def metrics(self, protocol: str) -> dict[str, float | None]:
        """Overall numbers of one protocol."""
        return self.protocols[protocol]["overall"]

    def all_notes(self) -> list[str]:
        """The notes about the inputs, with what the counts say about odd detections."""
        notes = list(self.notes)
        outside, empty = (
            self.counts.get(k, 0) for k in ("detections_outside_image", "detections_zero_size")
        )
        if outside:
            notes.append(
                f"{outside} detection(s) lie partly or wholly outside their image: scored as "
                "given, as pycocotools does"
            )
        if empty:
            notes.append(f"{empty} detection(s) have zero width or height: they match nothing")
        return notes

    def matches(self) -> pl.DataFrame:
        """Per-detection / per-unmatched-box rows of every protocol (IoU 0.5)."""
        frames = [p["matches"] for p in self.protocols.values() if "matches" in p]
        return pl.concat(frames) if frames else pl.DataFrame()


def to_json(result: EvalResult) -> dict:
    """The ``eval.json`` document."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ground_truth": result.ground_truth,
        "split": result.split,
        "predictions": result.predictions,
        "predictions_path": result.predictions_path,
        "category_ids": result.category_ids,
        "counts": result.counts,
        "frequency_from": result.frequency_from,
        "notes": result.all_notes(),
        "protocols": {
            name: {"description": p["description"], "metrics": p["overall"]}
            for name, p in result.protocols.items()
        },
        "per_source": {name: p["per_source"] for name, p in result.protocols.items()},
        "per_class": {name: p["per_class"].to_dicts() for name, p in result.protocols.items()},
    }


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(result: EvalResult) -> str:
    """``eval.md``: headline table, per source, per class (AP in %)."""
    c = result.counts
    parts = [
        f"# Detection evaluation: {result.ground_truth}",
        "",
        f"Predictions `{result.predictions}` (class ids read as {result.category_ids}): "
        f"{c['detections']} detections on {c['images']} images with {c['boxes']} "
        f"ground-truth boxes. AP/AR in %; r/c/f bins from {result.frequency_from}.",
        "",
    ]
    notes = result.all_notes()
    if notes:
        parts += ["## Notes", "", *(f"- {note}" for note in notes), ""]
    parts += ["## Protocols", ""]
    parts += [f"- **{name}**: {p['description']}" for name, p in result.protocols.items()]
    for name, p in result.protocols.items():
        keys = list(p["overall"])
        rows = [["all", *(_fmt(p["overall"][k]) for k in keys)]]
        rows += [[s, *(_fmt(m[k]) for k in keys)] for s, m in sorted(p["per_source"].items())]
        parts += ["", f"## {name}", "", _table(["images", *keys], rows)]
    for name, p in result.protocols.items():
        frame = p["per_class"]
        if not frame.height:
            continue
        cols = ["label", "name", "frequency", "boxes", "detections", "AP", "AP50", "AP75", "AR"]
        rows = [
            [
                str(r["label"]),
                str(r["name"]),
                r["frequency"] or "–",
                str(r["boxes"]),
                str(r["detections"]),
                *(_fmt(r[k]) for k in ("AP", "AP50", "AP75", "AR")),
            ]
            for r in frame.select(cols).iter_rows(named=True)
        ]
        parts += ["", f"## Per class ({name})", "", _table(cols, rows)]
    return "\n".join(parts) + "\n"


def check_output(out: str | Path) -> Path:
    """``out`` as an evaluation folder: absent, or holding only an earlier evaluation's
    files (it is replaced as a whole, so anything else in it is refused, not deleted)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DetforgeError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in FILES)
        visible = [name for name in foreign if not name.startswith(".")]
        if visible:
            shown = ", ".join(visible[:3]) + (", ..." if len(visible) > 3 else "")
            raise DetforgeError(
                f"{out}: holds files `detforge evaluate` did not write ({shown}); "
                "its results replace the whole folder, so choose an empty or new --out"
            )
    return out


def _clean_leftovers(out: Path) -> None:
    """Remove what a killed :func:`write` left beside ``out`` (its temporary names)."""
    for leftover in out.parent.glob(f".{out.name}.*"):
        if leftover.name.endswith(".tmp") or ".old-" in leftover.name:
            shutil.rmtree(leftover, ignore_errors=True)


def write(result: EvalResult, out: str | Path) -> dict[str, Path]:
    """Write eval.json, eval.md and (when computed) matches.parquet as one set: built in a
    temporary folder that replaces ``out`` whole, so no kill leaves files of two runs side
    by side. Hidden entries of an earlier ``out`` (a lock file) are carried over."""
    out = check_output(out)
    _clean_leftovers(out)
    text = json.dumps(to_json(result), indent=2, allow_nan=False) + "\n"
    digest = pair_digest(text.encode("utf-8"))
    names = {"json": "eval.json", "md": "eval.md"}
    with atomic.atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "eval.json").write_text(text, encoding="utf-8")
        (tmp / "eval.md").write_text(to_markdown(result), encoding="utf-8")
        if any("matches" in p for p in result.protocols.values()):
            result.matches().write_parquet(
                tmp / "matches.parquet", statistics=False, metadata={PAIR_KEY: digest}
            )
            names["matches"] = "matches.parquet"
        if out.is_dir():
            for hidden in out.glob(".*"):
                hidden.rename(tmp / hidden.name)
    return {key: out / name for key, name in names.items()}


def pair_digest(eval_json: bytes) -> str:
    """The :data:`PAIR_KEY` value a matches.parquet written with this eval.json holds."""
    return hashlib.sha256(eval_json).hexdigest()
