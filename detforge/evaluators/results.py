"""The result of ``detforge evaluate`` and its files: eval.json, eval.md, matches.parquet.

``eval.json`` (schema_version 1)::

    {"schema_version": 1, "split": "val", "predictions": "preds.json",
     "counts": {"images": .., "boxes": .., "detections": ..},
     "frequency_from": "train split" | "categories.frequency",
     "protocols": {"coco": {"description": .., "metrics": {"AP": .., ...}}, ...},
     "per_source": {"coco": {"objects365": {"AP": .., ...}, ...}, ...},
     "per_class": {"coco": [{"label", "name", "frequency", "boxes", "detections",
                             "AP", "AP50", "AP75", "AR"}, ...], ...}}

Metrics are fractions in [0, 1]; ``null`` where no class has ground truth.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl

from detforge import atomic

SCHEMA_VERSION = 1
HEADLINE = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Everything one evaluation produced (see :func:`to_json` for the file layout)."""

    split: str
    predictions: str
    counts: dict[str, int]
    frequency_from: str
    protocols: dict[str, dict]  # name -> description, overall, per_source, per_class, matches

    def metrics(self, protocol: str) -> dict[str, float | None]:
        """Overall numbers of one protocol."""
        return self.protocols[protocol]["overall"]

    def matches(self) -> pl.DataFrame:
        """Per-detection / per-unmatched-box rows of every protocol (IoU 0.5)."""
        frames = [p["matches"] for p in self.protocols.values() if "matches" in p]
        return pl.concat(frames) if frames else pl.DataFrame()


def to_json(result: EvalResult) -> dict:
    """The ``eval.json`` document."""
    return {
        "schema_version": SCHEMA_VERSION,
        "split": result.split,
        "predictions": result.predictions,
        "counts": result.counts,
        "frequency_from": result.frequency_from,
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
        f"# Detection evaluation: split `{result.split}`",
        "",
        f"Predictions `{result.predictions}`: {c['detections']} detections on "
        f"{c['images']} images with {c['boxes']} ground-truth boxes. AP/AR in %; "
        f"r/c/f bins from {result.frequency_from}.",
        "",
        "## Protocols",
        "",
    ]
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


def write(result: EvalResult, out: str | Path) -> dict[str, Path]:
    """Write eval.json, eval.md and (when computed) matches.parquet into ``out``, each
    atomically; a matches.parquet of an earlier run is removed rather than left stale."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "eval.json", "md": out / "eval.md"}
    text = json.dumps(to_json(result), indent=2, allow_nan=False)
    atomic.write_text(files["json"], text + "\n")
    atomic.write_text(files["md"], to_markdown(result))
    matches = out / "matches.parquet"
    if any("matches" in p for p in result.protocols.values()):
        with atomic.atomic_path(matches) as tmp:
            result.matches().write_parquet(tmp, statistics=False)
        files["matches"] = matches
    else:
        matches.unlink(missing_ok=True)
    return files
