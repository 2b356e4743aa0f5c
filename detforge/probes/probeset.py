"""Probe sets on disk: items parquet per split, categories, ``probeset.json`` and a card.

A probe set is a small dataset of its own (uploadable like any other): ``data/{split}.parquet``
holds the items, ``categories.parquet`` the taxonomy it was generated with, ``probeset.json``
the version, the taxonomy hash and the content hash, ``README.md`` a card with the
``datasets`` YAML header so ``datasets.load_dataset(dir)`` reads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl

from detforge.atomic import atomic_path
from detforge.dataset import DetDataset
from detforge.errors import DetforgeError
from detforge.markdown import md_table

PROBESET_VERSION = 2
SPLITS = ("train", "val", "test")

ITEMS = pl.Schema(
    {
        "item_id": pl.Int64,
        "task": pl.String,
        "split": pl.String,  # probe split (by duplicate group): train | val | test
        "image_id": pl.Int64,
        "image_group": pl.Int64,  # duplicate group: copies of one photo share it
        "source": pl.String,
        "file_name": pl.String,  # relative to roots[source]
        "flip": pl.Boolean,  # the item uses the horizontally flipped image
        "object_ids": pl.List(pl.Int64),  # boxes the item was made from
        "class_a": pl.Int32,
        "class_b": pl.Int32,
        "text": pl.String,  # the labelled form's text (linear probes)
        "label": pl.Int32,  # index into the task's labels (detforge.probes.tasks)
        "label_name": pl.String,
        "foil_label": pl.Int32,  # the label the foil states; null where it states none
        "caption": pl.String,  # the true caption (zero-shot)
        "foil": pl.String,  # the false caption it is paired with
        "foil_class": pl.Int32,  # noun foil: the class put in; null elsewhere
        "twin_id": pl.Int64,  # the item's counterfactual twin (mirror image, swapped nouns)
        "verified": pl.Boolean,  # the negative fact the item uses is verified
        "evidence": pl.String,  # box | negative_label | exhaustive | unverified
    }
)


class ProbeError(DetforgeError):
    """A probe set or probe run cannot be made or used as asked."""


def read_dataset(path: str | Path) -> DetDataset:
    """Read a built dataset from ``OUT`` (with ``tables/``) or from ``OUT/tables`` itself."""
    path = Path(path)
    if (path / "tables" / "dataset.json").is_file():
        path = path / "tables"
    return DetDataset.read(path)


def categories_hash(categories: pl.DataFrame) -> str:
    """Hash of a taxonomy's identity: ids, names and is_a parents (sha256, hex)."""
    rows = categories.sort("id").select("id", "name", "parents").to_dicts()
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def content_hash(items: pl.DataFrame) -> str:
    """Hash of the items' content (order-independent of how they were written)."""
    canonical = items.select(ITEMS.names()).sort("item_id").write_ndjson()
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class ProbeSet:
    """Items of every task plus the taxonomy and facts (roots, seed, hashes) they came with."""

    items: pl.DataFrame
    categories: pl.DataFrame
    roots: dict[str, str]
    meta: dict[str, Any]

    def with_meta(self, **meta: Any) -> ProbeSet:
        """The same probe set with ``meta`` entries added (not part of the content hash)."""
        return dataclasses.replace(self, meta={**self.meta, **meta})

    @property
    def content_hash(self) -> str:
        return self.meta["content_hash"]

    @property
    def categories_hash(self) -> str:
        return self.meta["categories_hash"]

    def task(self, task: str) -> pl.DataFrame:
        return self.items.filter(pl.col("task") == task)

    def counts(self) -> pl.DataFrame:
        """Items per task and split."""
        present = set(self.items["split"].unique()) if self.items.height else set()
        return (
            self.items.group_by("task", "split")
            .len()
            .pivot(on="split", index="task", values="len")
            .fill_null(0)
            .sort("task")
            .select("task", *(pl.col(s) if s in present else pl.lit(0).alias(s) for s in SPLITS))
        )

    def write(self, path: str | Path) -> Path:
        """Write the probe set directory atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            (tmp / "data").mkdir(parents=True)
            for split in SPLITS:
                part = self.items.filter(pl.col("split") == split).sort("item_id")
                part.write_parquet(tmp / "data" / f"{split}.parquet", statistics=False)
            self.categories.write_parquet(tmp / "categories.parquet", statistics=False)
            info = {**self.meta, "roots": self.roots}
            (tmp / "probeset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
            (tmp / "README.md").write_text(card(self))
        return path

    @classmethod
    def read(cls, path: str | Path) -> ProbeSet:
        """Read a probe set; its taxonomy and content must match the hashes it was written with."""
        path = Path(path)
        info_file = path / "probeset.json"
        if not info_file.is_file():
            raise ProbeError(f"{path}: not a probe set (no probeset.json)")
        info = json.loads(info_file.read_text())
        if info.get("format") != "detforge-probeset" or info.get("version") != PROBESET_VERSION:
            raise ProbeError(
                f"{info_file}: format {info.get('format')!r} version {info.get('version')!r}, "
                f"this detforge reads detforge-probeset version {PROBESET_VERSION}"
            )
        missing = [s for s in SPLITS if not (path / "data" / f"{s}.parquet").is_file()]
        if missing or not (path / "categories.parquet").is_file():
            raise ProbeError(f"{path}: incomplete probe set (missing {missing or 'categories'})")
        parts = [pl.read_parquet(path / "data" / f"{s}.parquet") for s in SPLITS]
        items = pl.concat(parts).sort("item_id")
        categories = pl.read_parquet(path / "categories.parquet")
        if categories_hash(categories) != info["categories_hash"]:
            raise ProbeError(f"{path / 'categories.parquet'}: does not match its categories_hash")
        if content_hash(items) != info["content_hash"]:
            raise ProbeError(f"{path / 'data'}: items do not match the content_hash")
        roots = info.pop("roots", {})
        return cls(items=items, categories=categories, roots=roots, meta=info)

    def check_taxonomy(self, categories: pl.DataFrame, where: object) -> None:
        """Raise unless ``categories`` is the taxonomy this probe set was generated from."""
        other = categories_hash(categories)
        if other != self.categories_hash:
            raise ProbeError(
                f"{where}: taxonomy hash {other[:12]} differs from the probe set's "
                f"{self.categories_hash[:12]}: the probe set was generated from another taxonomy"
            )


def make_probeset(
    items: pl.DataFrame, categories: pl.DataFrame, roots: dict[str, str], meta: dict[str, Any]
) -> ProbeSet:
    """A ProbeSet with its hashes and version filled in."""
    items = items.select(ITEMS.names()).cast(dict(ITEMS)).sort("item_id")
    info = {
        **meta,
        "format": "detforge-probeset",
        "version": PROBESET_VERSION,
        "categories_hash": categories_hash(categories),
        "content_hash": content_hash(items),
        "items": items.height,
    }
    return ProbeSet(items=items, categories=categories, roots=roots, meta=info)


def card(probes: ProbeSet) -> str:
    """The README card: datasets YAML header, what each task asks, counts per task and split,
    and what the text-only and source-only rules score."""
    from detforge.probes import shortcuts
    from detforge.probes.tasks import registry

    configs = "\n".join(f"    - split: {s}\n      path: data/{s}.parquet" for s in SPLITS)
    counts = md_table(probes.counts())
    tasks = [f"- **{t.name}** (v{t.version}): {t.summary}" for t in registry().values()]
    rules = probes.meta.get("shortcuts")
    return (
        "---\nconfigs:\n- config_name: default\n  data_files:\n"
        f"{configs}\n---\n\n# detforge probe set\n\n"
        f"Generated by `detforge probe generate` (version {PROBESET_VERSION}, seed "
        f"{probes.meta.get('seed')}) from `{probes.meta.get('dataset')}`.\n\n"
        f"- taxonomy hash: `{probes.categories_hash}`\n- content hash: `{probes.content_hash}`\n\n"
        "Each item is a caption-vs-foil pair (`caption`, `foil`) and a labelled item (`text`, "
        "`label`); splits are by duplicate group (`image_group`).\n\n"
        + "\n".join(tasks)
        + "\n\n"
        + counts
        + (
            f"\n## Text-only and source-only rules\n\n{shortcuts.markdown(rules)}\n"
            if rules
            else ""
        )
    )
