"""Local checks of a Hugging Face dataset layout before anything is sent to a hub.

The layout is what the build's hub export writes: ``data/{split}-XXXXX-of-YYYYY.parquet``
shards, a ``README.md`` card with YAML front matter, ``taxonomy/`` and the report.
"""

from __future__ import annotations

import dataclasses
import glob
from pathlib import Path

import pyarrow.parquet as pq
import yaml

#: what the card must say about each source it contains: (display name, license words)
SOURCE_LICENSES: dict[str, tuple[str, str]] = {
    "objects365": ("Objects365", "Objects365"),
    "openimages": ("Open Images", "CC BY 4.0"),
    "lvis": ("LVIS", "CC BY 4.0"),
    "coco": ("COCO", "CC BY 4.0"),
}
#: a word each source's citation carries (BibTeX titles), plus BigDetection's own
CITATION_WORDS: dict[str, str] = {
    "bigdetection": "BigDetection",
    "objects365": "Objects365",
    "openimages": "Open Images",
    "lvis": "LVIS",
    "coco": "Microsoft COCO",
}


@dataclasses.dataclass(frozen=True)
class Check:
    """One named check of the layout: passed or not, with a one-line detail."""

    name: str
    ok: bool
    detail: str


def read_card(hub_dir: Path) -> tuple[dict, str]:
    """The card's YAML front matter (parsed) and its Markdown body.

    Raises ``ValueError`` with the reason when the card is missing or malformed.
    """
    card = hub_dir / "README.md"
    if not card.is_file():
        raise ValueError(f"{card} is missing")
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise ValueError(f"{card}: no YAML front matter (the file must start with '---')")
    end = text.find("\n---", 4)
    if end < 0:
        raise ValueError(f"{card}: YAML front matter is not closed by '---'")
    try:
        meta = yaml.safe_load(text[4:end])
    except yaml.YAMLError as error:
        raise ValueError(f"{card}: YAML front matter does not parse: {error}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{card}: YAML front matter is not a mapping")
    return meta, text[end + 4 :]


def split_files(hub_dir: Path, meta: dict) -> dict[str, list[Path]]:
    """Parquet files of each split of the ``default`` config, from the card's ``configs``."""
    configs = meta.get("configs") or []
    config = next((c for c in configs if c.get("config_name") == "default"), None)
    if config is None:
        raise ValueError("card YAML has no 'configs' entry named 'default'")
    files: dict[str, list[Path]] = {}
    for entry in config.get("data_files") or []:
        paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        matched = sorted({Path(p) for pattern in paths for p in glob.glob(str(hub_dir / pattern))})
        files[entry["split"]] = matched
    if not files:
        raise ValueError("card YAML 'configs' lists no data_files")
    return files


def _sources_in(files: dict[str, list[Path]]) -> set[str]:
    sources: set[str] = set()
    for paths in files.values():
        for path in paths:
            if "source" in pq.read_schema(path).names:
                column = pq.read_table(path, columns=["source"]).column("source")
                sources.update(column.unique().to_pylist())
    return sources


def check_layout(hub_dir: Path, *, load: bool = True) -> list[Check]:
    """Run every check of a hub layout; never raises for a bad layout (see ``Check.ok``)."""
    checks: list[Check] = []
    try:
        meta, body = read_card(hub_dir)
    except ValueError as error:
        return [Check("card YAML parses", False, str(error))]
    checks.append(Check("card YAML parses", True, "README.md front matter is a mapping"))
    try:
        files = split_files(hub_dir, meta)
    except (ValueError, KeyError, TypeError) as error:
        return [*checks, Check("configs", False, str(error))]
    empty = [split for split, paths in files.items() if not paths]
    checks.append(
        Check(
            "configs",
            not empty,
            f"splits {', '.join(files)}" + (f"; no file matches split(s) {empty}" if empty else ""),
        )
    )
    card_text = yaml.safe_dump(meta) + body
    sources = _sources_in(files)
    missing_licenses = [
        source
        for source in sorted(sources)
        if source in SOURCE_LICENSES
        and not all(word in card_text for word in SOURCE_LICENSES[source])
    ]
    checks.append(
        Check(
            "licenses",
            bool(meta.get("license")) and not missing_licenses,
            f"license: {meta.get('license')!r}"
            + (f"; no license stated for {missing_licenses}" if missing_licenses else "")
            + f"; sources {sorted(sources)}",
        )
    )
    missing_citations = [
        key
        for key in ["bigdetection", *sorted(sources)]
        if key in CITATION_WORDS and f"{CITATION_WORDS[key]}" not in body
    ]
    checks.append(
        Check(
            "citations",
            "@" in body and not missing_citations,
            "BibTeX for BigDetection and every source"
            if not missing_citations
            else f"no citation for {missing_citations}",
        )
    )
    tasks = meta.get("task_categories") or []
    checks.append(
        Check("task_categories", "object-detection" in tasks, f"task_categories: {tasks}")
    )
    checks.append(
        Check(
            "size_categories",
            bool(meta.get("size_categories")),
            f"size_categories: {meta.get('size_categories')}",
        )
    )
    taxonomy = [hub_dir / "taxonomy" / name for name in ("classes.csv", "mapping.csv")]
    absent = [str(p.relative_to(hub_dir)) for p in taxonomy if not p.is_file()]
    checks.append(
        Check(
            "taxonomy files",
            not absent,
            "classes.csv, mapping.csv" if not absent else f"missing {absent}",
        )
    )
    if load and not empty:
        checks.append(_check_loads(hub_dir, meta, files))
    return checks


def _expected_rows(meta: dict) -> dict[str, int]:
    splits = (meta.get("dataset_info") or {}).get("splits") or []
    return {s["name"]: int(s["num_examples"]) for s in splits if "num_examples" in s}


def _check_loads(hub_dir: Path, meta: dict, files: dict[str, list[Path]]) -> Check:
    """``datasets.load_dataset(hub_dir)`` streams every split with the card's features and rows.

    Streaming reads only what it needs, so the check costs little even on a full build;
    row counts come from the parquet footers.
    """
    import datasets

    expected_rows = _expected_rows(meta)
    try:
        loaded = datasets.load_dataset(str(hub_dir), streaming=True)
    except Exception as error:  # any failure to load is the check's finding
        return Check("load_dataset", False, f"datasets.load_dataset fails: {error}".splitlines()[0])
    problems, counts = [], {}
    for split, paths in files.items():
        if split not in loaded:
            problems.append(f"split {split} not loaded")
            continue
        features = loaded[split].features
        if features is None or "objects" not in features:
            problems.append(f"{split}: no 'objects' feature")
        first = next(iter(loaded[split]), None)
        rows = sum(pq.read_metadata(path).num_rows for path in paths)
        counts[split] = rows
        if first is None and rows:
            problems.append(f"{split}: yields no rows")
        if split in expected_rows and expected_rows[split] != rows:
            problems.append(f"{split}: {rows} rows, card says {expected_rows[split]}")
    detail = "; ".join(problems) or ", ".join(f"{s}: {n} rows" for s, n in counts.items())
    return Check("load_dataset", not problems, detail)
