"""``build(recipe)``: read → map → split → dedup → decontaminate → report → exports.

Each dataset stage runs through :class:`~detforge.builders.stages.StageCache`, so a
killed build resumes from its last finished stage and a changed setting re-runs
only what depends on it. The report is computed before the exports because the
Hub dataset card embeds it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from detforge.builders import split as split_module
from detforge.builders.owned import OUTPUT_FOLDERS, clean_temporaries, input_paths, sample_root
from detforge.builders.recipe import Recipe, RecipeError
from detforge.builders.stages import (
    StageCache,
    StageResult,
    annotation_files,
    code_version,
    file_fingerprints,
    stage_hash,
)
from detforge.dataset import DetDataset
from detforge.extras import MissingExtraError, require
from detforge.lock import output_lock
from detforge.outputs import check_replaceable, is_current, refuse_overlap, replace_folder

#: crash-test hook, ``<step>:<seconds>``: sleep before the named step (a stage, or a part of
#: one such as ``export-hub val``) starts, or after an export is in place (``export-hub written``)
PAUSE_ENV = "DETFORGE_PAUSE_AT"

Progress = Callable[[str], None]


@dataclasses.dataclass
class BuildResult:
    """What a build produced: the final dataset, stage reports, and which stages were cached."""

    out: Path
    dataset: DetDataset
    reports: dict[str, pl.DataFrame]
    stages: list[tuple[str, str, bool]]  # (stage, key, loaded from cache)
    counts: pl.DataFrame  # images/boxes after each dataset stage
    files: list[Path]


@dataclasses.dataclass(frozen=True)
class SourceRoots:
    root: Path
    images_root: Path | None


def resolve_roots(
    recipe: Recipe, root: Path, source_roots: dict[str, Path] | None = None
) -> dict[str, SourceRoots]:
    """Absolute annotation and image roots of each recipe source (``--source`` wins)."""
    source_roots = source_roots or {}
    unknown = sorted(set(source_roots) - {s.name for s in recipe.sources})
    if unknown:
        raise RecipeError(f"--source {unknown[0]}: the recipe has no source of that name")
    resolved = {}
    for spec in recipe.sources:
        base = source_roots.get(spec.name) or root / (spec.root or spec.name)
        images = root / spec.images_root if spec.images_root else None
        resolved[spec.name] = SourceRoots(Path(base).absolute(), images and images.absolute())
    return resolved


def resolve_holdouts(
    recipe: Recipe, root: Path, extra: dict[str, Path] | None = None
) -> dict[str, SourceRoots]:
    """Holdout eval sets of the recipe (relative to ``root``) plus ``--holdout NAME=PATH``."""
    holdouts = {
        name: SourceRoots(
            (root / spec.annotations).absolute(),
            (root / spec.images).absolute() if spec.images else None,
        )
        for name, spec in recipe.decontaminate.holdouts.items()
    }
    for name, path in (extra or {}).items():
        holdouts[name] = SourceRoots(Path(path).absolute(), None)
    for name, where in holdouts.items():
        if not where.root.is_file():
            raise RecipeError(
                f"holdout {name}: {where.root} not found (pass --holdout {name}=PATH, or "
                f"--set decontaminate.holdouts.{name}=null to build without it)"
            )
    return holdouts


def holdout_record(holdouts: dict[str, SourceRoots]) -> dict[str, dict[str, str]]:
    """Each holdout's annotation file and SHA-256 (the tables' meta keeps them, so that
    ``benchmark pretrain`` can tell whether its downstream val set was decontaminated)."""
    record = {}
    for name, where in sorted(holdouts.items()):
        with where.root.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        record[name] = {"annotations": str(where.root), "sha256": digest}
    return record


def _pause(stage: str) -> None:
    spec = os.environ.get(PAUSE_ENV, "")
    name, _, seconds = spec.partition(":")
    if name == stage:
        time.sleep(float(seconds or 3600))


# -- stages -------------------------------------------------------------------
def read_stage(recipe: Recipe, roots: dict[str, SourceRoots]) -> DetDataset:
    """Read every split of every source with its format's reader."""
    from detforge.sources import READERS

    parts = []
    for spec in recipe.sources:
        if spec.format not in READERS:
            raise RecipeError(
                f"source {spec.name}: unknown format {spec.format!r} "
                f"(known: {', '.join(sorted(READERS))})"
            )
        reader = READERS[spec.format]
        where = roots[spec.name]
        for split in spec.splits:
            parts.append(
                reader.read(where.root, split, version=spec.version, images_root=where.images_root)
            )
    merged = DetDataset.concat(parts)
    # splits of one source repeat its class list and label space
    return merged.replace(
        source_categories=merged.source_categories.unique(["source", "source_label"], keep="first"),
        label_spaces=merged.label_spaces.unique(keep="first"),
    )


def map_stage(dataset: DetDataset, taxonomy: str) -> tuple[DetDataset, dict[str, pl.DataFrame]]:
    """Source label spaces → the unified taxonomy; the drop report says what that cost."""
    from detforge import taxonomy as taxonomy_package

    mapped, drops = taxonomy_package.apply(dataset, taxonomy_package.load(taxonomy))
    mapped = mapped.replace(meta={**mapped.meta, "taxonomy": taxonomy})
    return mapped, {"drops": drops}


def dedup_config(recipe: Recipe):
    """The dedup helpers' config from the recipe (``near: false`` = radius -1)."""
    from detforge.builders.dedup import DedupConfig

    spec = recipe.dedup
    return DedupConfig(
        exact=spec.exact,
        phash_distance=spec.phash_distance if spec.near else -1,
        dhash_distance=spec.dhash_distance,
        framing_tolerance=spec.framing_tolerance,
        box_iou=spec.box_iou,
        priority=recipe.priority or DedupConfig().priority,
    )


def dedup_stage(
    dataset: DetDataset,
    recipe: Recipe,
    engine: str,
    workers: int | None,
    cache_dir: Path,
    note: Progress | None = None,
) -> tuple[DetDataset, dict[str, pl.DataFrame]]:
    from detforge.builders.dedup import dedup

    kept, groups = dedup(
        dataset,
        dedup_config(recipe),
        engine=engine,
        workers=workers,
        cache_dir=cache_dir,
        note=note,
    )
    return kept, {"dup_groups": groups}


def read_holdouts(holdouts: dict[str, SourceRoots]) -> dict[str, DetDataset]:
    """Each holdout eval set as a DetDataset (COCO reader; its name is its source)."""
    from detforge.sources import coco

    return {
        name: coco.read(where.root, "val", images_root=where.images_root, source=name)
        for name, where in sorted(holdouts.items())
    }


def decontaminate_stage(
    dataset: DetDataset,
    groups: pl.DataFrame,
    recipe: Recipe,
    holdouts: dict[str, SourceRoots],
    engine: str,
    workers: int | None,
    cache_dir: Path,
    note: Progress | None = None,
) -> tuple[DetDataset, dict[str, pl.DataFrame]]:
    """Drop training images that duplicate an image of the dataset's own val/test splits or
    of a holdout eval set, comparing every member of the dedup stage's ``groups``."""
    from detforge.builders.decontaminate import decontaminate

    clean, removed = decontaminate(
        dataset,
        read_holdouts(holdouts),
        dedup_config(recipe),
        groups=groups,
        engine=engine,
        workers=workers,
        cache_dir=cache_dir,
        note=note,
    )
    return clean, {"contamination": removed}


def validate_stage(dataset: DetDataset) -> None:
    """Stop the build, listing every violation, when the final tables are not valid."""
    from detforge.dataset import DatasetError

    problems = dataset.validate()
    if problems:
        listed = "; ".join(problems)
        raise DatasetError(f"the built dataset is invalid, nothing exported: {listed}")


# -- the build ----------------------------------------------------------------
def _modules(*names: str) -> list[ModuleType]:
    import importlib

    return [importlib.import_module(name) for name in names]


def build(
    recipe: Recipe,
    out: Path,
    *,
    root: Path | None,
    source_roots: dict[str, Path] | None = None,
    holdouts: dict[str, Path] | None = None,
    engine: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    note: Progress | None = None,
) -> BuildResult:
    """Build ``recipe`` from the sources under ``root`` into ``out`` (resuming if possible);
    with ``root`` None, from the built-in sample, written to ``OUT/.sample`` on first use.

    The build holds OUT's lock throughout (one build per folder) and writes only what it
    owns: it refuses an ``out`` that is, contains or lies inside one of its inputs, and an
    export folder holding files it did not write (see :mod:`detforge.outputs`). ``note``
    hears remarks that are not errors (a lock taken over, a damaged cache rebuilt).
    """
    out = Path(out).absolute()

    def inputs(root: Path) -> tuple[dict[str, SourceRoots], dict[str, SourceRoots]]:
        roots = resolve_roots(recipe, root, source_roots)
        holdout_roots = resolve_holdouts(recipe, root, holdouts)
        refuse_overlap(out, input_paths(roots, holdout_roots), owned=[out / ".sample"])
        return roots, holdout_roots

    if root is not None:
        inputs(Path(root))  # refused before anything is created
    with output_lock(out, "build-dataset", note=note):
        roots, holdout_roots = inputs(Path(root) if root is not None else sample_root(out, note))
        for name in OUTPUT_FOLDERS:  # before the stages, not hours later
            check_replaceable(out / name)
        return _build(recipe, out, roots, holdout_roots, engine, workers, progress, note)


def _build(
    recipe: Recipe,
    out: Path,
    roots: dict[str, SourceRoots],
    holdout_roots: dict[str, SourceRoots],
    engine: str | None,
    workers: int | None,
    progress: Progress | None,
    note: Progress | None,
) -> BuildResult:
    from detforge.builders import card, report
    from detforge.exports import coco as export_coco
    from detforge.exports import hub as export_hub

    clean_temporaries(out)
    engine = engine or recipe.engine
    workers = workers if workers is not None else recipe.workers
    report_progress = progress or (lambda message: None)

    def say(step: str) -> None:
        _pause(step)
        report_progress(step)

    cache = StageCache(out, note=note)
    base = _modules("detforge.schema", "detforge.dataset", "detforge.builders.stages")
    if recipe.exports.hub.enabled:
        try:  # fail now, not after the stages
            require("datasets", "hub")
        except MissingExtraError as error:
            raise MissingExtraError(f"{error}, or --set exports.hub.enabled=false") from None
    results: list[StageResult] = []

    def run(stage: str, config: Any, code_of: list[str], inputs: list[Any], compute) -> StageResult:
        key = stage_hash(stage, config, code_version(*base, *_modules(*code_of)), inputs)
        say(stage)
        result = cache.run(stage, key, compute)
        for earlier in results:
            earlier.release()
        results.append(result)
        return result

    sources_cfg = [
        {
            **dataclasses.asdict(s),
            "root": str(roots[s.name].root),
            "images_root": str(roots[s.name].images_root or ""),
        }
        for s in recipe.sources
    ]
    prints = file_fingerprints([f for r in roots.values() for f in annotation_files(r.root)])
    read = run(
        "read",
        sources_cfg,
        ["detforge.sources", "detforge.builders.pipeline"],
        prints,
        lambda: (read_stage(recipe, roots), {}),
    )
    mapped = run(
        "map",
        {"taxonomy": recipe.taxonomy, "files": _taxonomy_prints(recipe.taxonomy)},
        ["detforge.taxonomy"],
        [read.key],
        lambda: map_stage(read.dataset, recipe.taxonomy),
    )
    # split before dedup: dedup groups copies within a split, and decontamination then sees
    # every final train image (a hash re-split after it could move eval copies into train)
    splitted = run(
        "split",
        dataclasses.asdict(recipe.split),
        ["detforge.builders.split"],
        [mapped.key],
        lambda: (split_module.split(mapped.dataset, recipe.split), {}),
    )
    dedup_cfg = {**dataclasses.asdict(recipe.dedup), "priority": list(recipe.priority)}
    deduped = run(
        "dedup",
        dedup_cfg,
        ["detforge.builders.dedup"],
        [splitted.key],
        lambda: dedup_stage(
            splitted.dataset, recipe, engine, workers, out / ".cache" / "dedup", note
        ),
    )
    decont_cfg = {
        "dedup": dedup_cfg,
        "holdouts": {
            name: [str(w.root), str(w.images_root or "")] for name, w in holdout_roots.items()
        },
    }
    clean = run(
        "decontaminate",
        decont_cfg,
        ["detforge.builders.decontaminate"],
        [deduped.key, file_fingerprints([w.root for w in holdout_roots.values()])],
        lambda: decontaminate_stage(
            deduped.dataset,
            deduped.reports["dup_groups"],
            recipe,
            holdout_roots,
            engine,
            workers,
            out / ".cache" / "dedup",
            note,
        ),
    )
    validate_stage(clean.dataset)
    dataset = clean.dataset.replace(
        meta={
            **clean.dataset.meta,
            "recipe": recipe.name,
            "taxonomy": recipe.taxonomy,
            "decontaminated_against": holdout_record(holdout_roots),
        }
    )
    reports: dict[str, pl.DataFrame] = {}
    for result in results:
        reports.update(result.reports)
    counts = pl.DataFrame(
        {
            "stage": [r.stage for r in results],
            "images": [r.rows("images") for r in results],
            "boxes": [r.rows("objects") for r in results],
        },
        schema={"stage": pl.String, "images": pl.Int64, "boxes": pl.Int64},
    )
    files: list[Path] = []

    def file_stage(stage: str, spec: Any, module: str, folder: Path, write) -> None:
        """Write ``folder`` with ``write(path)`` unless it already holds this key's output.
        Its manifest (the key and every file) is renamed into place with it, so a folder is
        reused only when it is whole and of this configuration."""
        # the card embeds the report
        modules = _modules(module, "detforge.builders.report", "detforge.builders.card")
        key = stage_hash(stage, spec, code_version(*base, *modules), [clean.key])
        say(stage)
        done = is_current(folder, key)
        if not done:
            with replace_folder(folder, key, stage) as tmp:
                write(tmp)
            _pause(f"{stage} written")
        results.append(StageResult(stage, key, None, dataset, {}, done))
        files.append(folder)

    report_dir = out / "report"
    file_stage(
        "report",
        {"recipe": recipe.digest()},
        "detforge.builders.report",
        report_dir,
        lambda tmp: report.write_report(dataset, reports, counts, recipe, tmp),
    )
    if recipe.exports.tables:
        file_stage(
            "export-tables", {}, "detforge.dataset", out / "tables", lambda tmp: dataset.write(tmp)
        )
    if recipe.exports.coco:
        file_stage(
            "export-coco",
            {},
            "detforge.exports.coco",
            out / "coco",
            lambda tmp: export_coco.export(dataset, tmp),
        )
    if recipe.exports.hub.enabled:
        file_stage(
            "export-hub",
            {**dataclasses.asdict(recipe.exports.hub), "recipe": recipe.digest()},
            "detforge.exports.hub",
            out / "hub",
            lambda tmp: export_hub.export(
                dataset,
                tmp,
                shard_images=recipe.exports.hub.shard_images,
                embed_images=recipe.exports.hub.embed_images,
                taxonomy_dir=_taxonomy_dir(dataset.meta.get("taxonomy", recipe.taxonomy)),
                report_dir=report_dir,
                pretty_name=f"{recipe.name} (detforge)",
                body=card.body(
                    dataset, recipe, (report_dir / "report.md").read_text(encoding="utf-8")
                ),
                progress=say,
            ),
        )
    return BuildResult(
        out, dataset, reports, [(r.stage, r.key, r.cached) for r in results], counts, files
    )


def _taxonomy_dir(name: str) -> Path:
    """The folder of the taxonomy ``name`` (a shipped name or a path)."""
    from detforge.taxonomy.io import resolve

    return Path(resolve(name))


def _taxonomy_prints(name: str) -> list[Any]:
    return file_fingerprints(sorted(_taxonomy_dir(name).glob("*.csv")))
