"""Local checks of a Hugging Face dataset layout before anything is sent to a hub.

The layout is what the build's hub export writes: ``data/{split}-XXXXX-of-YYYYY.parquet``
shards, a ``README.md`` card with YAML front matter, ``taxonomy/`` and the report.
The card states each source's license in its ``## Licenses`` table, one row per source
(first cell the source name, second its license), which the licenses check reads.
"""

from __future__ import annotations

import dataclasses
import glob
import re
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from detforge.exports.hub import LICENSES_HEADING
from detforge.extras import require

#: words the license row of each known source must contain
SOURCE_LICENSES: dict[str, str] = {
    "objects365": "Objects365",
    "openimages": "CC BY 4.0",
    "lvis": "CC BY 4.0",
    "coco": "CC BY 4.0",
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


def license_rows(body: str) -> dict[str, str]:
    """``{source: license}`` from the rows of the card's ``## Licenses`` table."""
    section = body.partition(f"\n{LICENSES_HEADING}\n")[2]
    section = re.split(r"^#{1,2} ", section, maxsplit=1, flags=re.MULTILINE)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) >= 2 and not set(cells[0]) <= set("-: ") and cells[0] != "source":
            rows[cells[0]] = cells[1]
    return rows


def _bibtex(body: str) -> str:
    """The text of the card's ```bibtex blocks."""
    return "\n".join(re.findall(r"```bibtex\n(.*?)```", body, flags=re.DOTALL))


def _null_bytes(shard: pq.ParquetFile, group: int, leaf: int) -> int:
    """Rows of one row group without image bytes: the footer's null count when the writer
    stored it (the build's export does), else read from the ``image.bytes`` column."""
    stats = shard.metadata.row_group(group).column(leaf).statistics
    if stats is not None and stats.has_null_count:
        return stats.null_count
    column = shard.read_row_group(group, columns=["image.bytes"]).column(0).combine_chunks()
    return column.field("bytes").null_count


def _first_path_without_bytes(shard: pq.ParquetFile, group: int) -> str | None:
    image = shard.read_row_group(group, columns=["image"]).column(0).combine_chunks()
    without = image.field("path").filter(image.field("bytes").is_null())
    return without[0].as_py() if len(without) else None


def _image_bytes_check(files: dict[str, list[Path]]) -> Check:
    """Every row of every shard embeds its image's bytes (a path-only image names a file on
    the builder's disk: useless on a hub)."""
    problems, missing_bytes = [], False
    for split, paths in files.items():
        missing = total = 0
        example = None
        for path in paths:
            shard = pq.ParquetFile(path)
            leaf = next(
                (
                    i
                    for i in range(shard.metadata.num_columns)
                    if shard.schema.column(i).path == "image.bytes"
                ),
                None,
            )
            if leaf is None:
                problems.append(f"{path.name}: no 'image' column with image bytes")
                continue
            for group in range(shard.metadata.num_row_groups):
                nulls = _null_bytes(shard, group, leaf)
                total += shard.metadata.row_group(group).num_rows
                missing += nulls
                if nulls and example is None:
                    example = _first_path_without_bytes(shard, group)
        if missing:
            missing_bytes = True
            problems.append(f"{split}: {missing} of {total} images have no bytes (e.g. {example})")
    if not problems:
        return Check("images embedded", True, "every image's bytes are in the shards")
    detail = "; ".join(problems)
    if missing_bytes:
        detail += (
            ": shards that reference local image paths are useless on a hub "
            "(rebuild with --set exports.hub.embed_images=true)"
        )
    return Check("images embedded", False, detail)


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
    sources = _sources_in(files)
    stated = license_rows(body)
    missing_licenses = [
        source
        for source in sorted(sources)
        if not stated.get(source) or SOURCE_LICENSES.get(source, "") not in stated[source]
    ]
    checks.append(
        Check(
            "licenses",
            bool(meta.get("license")) and not missing_licenses,
            f"license: {meta.get('license')!r}"
            + (
                f"; no license row in the card's '{LICENSES_HEADING}' table for {missing_licenses}"
                if missing_licenses
                else ""
            )
            + f"; sources {sorted(sources)}",
        )
    )
    bibtex = _bibtex(body)
    missing_citations = [
        key
        for key in ["bigdetection", *sorted(sources)]
        if key in CITATION_WORDS and CITATION_WORDS[key] not in bibtex
    ]
    checks.append(
        Check(
            "citations",
            "@" in bibtex and not missing_citations,
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
    if not empty:
        checks.append(_image_bytes_check(files))
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
    datasets = require("datasets", "hub")
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
        try:
            first = next(iter(loaded[split]), None)
        except Exception as error:  # e.g. an image path that is not there
            problems.append(f"{split}: the first row does not load: {error}".splitlines()[0])
            continue
        rows = sum(pq.read_metadata(path).num_rows for path in paths)
        counts[split] = rows
        if first is None and rows:
            problems.append(f"{split}: yields no rows")
        if split in expected_rows and expected_rows[split] != rows:
            problems.append(f"{split}: {rows} rows, card says {expected_rows[split]}")
    detail = "; ".join(problems) or ", ".join(f"{s}: {n} rows" for s, n in counts.items())
    return Check("load_dataset", not problems, detail)
