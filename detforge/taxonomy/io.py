"""Taxonomy CSV I/O: ``classes.csv`` + ``mapping.csv`` in a directory.

Every column is read as a string, verbatim: source names keep their typos and
trailing spaces (Objects365's ``'Table Tennis '``) because the mapping is
matched on the raw string.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from detforge import schema
from detforge.atomic import atomic_path
from detforge.errors import InputError
from detforge.taxonomy.model import Taxonomy, TaxonomyError

DATA_DIR = Path(__file__).resolve().parent / "data"
CLASSES_COLUMNS = (
    "id",
    "name",
    "synonyms",
    "synset",
    "definition",
    "parents",
    "part_of",
    "frequency",
)
MAPPING_COLUMNS = (
    "source",
    "source_label",
    "source_name",
    "label",
    "relation",
    "provenance",
    "score",
    "note",
)
LIST_SEP = "|"


def available() -> list[str]:
    """Names of the taxonomies shipped with detforge (directories with a classes.csv)."""
    if not DATA_DIR.is_dir():
        return []
    return sorted(p.name for p in DATA_DIR.iterdir() if (p / "classes.csv").is_file())


def resolve(name_or_dir: str | Path) -> Path:
    """The directory of a shipped taxonomy name, or of a user directory holding classes.csv."""
    candidate = Path(name_or_dir)
    if (candidate / "classes.csv").is_file():
        return candidate
    shipped = DATA_DIR / str(name_or_dir)
    if "/" not in str(name_or_dir) and (shipped / "classes.csv").is_file():
        return shipped
    raise TaxonomyError(
        f"no taxonomy {str(name_or_dir)!r}: not a directory with classes.csv, "
        f"nor a shipped one ({', '.join(available()) or 'none'})"
    )


def load(name_or_dir: str | Path) -> Taxonomy:
    """Load a shipped taxonomy by name (``bigdet-v1``) or one from a directory.

    A directory without ``mapping.csv`` gives a taxonomy with an empty mapping.
    """
    directory = resolve(name_or_dir)
    classes = read_classes(directory / "classes.csv")
    mapping_file = directory / "mapping.csv"
    mapping = (
        read_mapping(mapping_file, classes)
        if mapping_file.is_file()
        else pl.DataFrame(schema=schema.MAPPING)
    )
    return Taxonomy(name=directory.name, classes=classes, mapping=mapping, path=directory)


def _read_strings(path: Path, columns: tuple[str, ...]) -> pl.DataFrame:
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except (pl.exceptions.ComputeError, OSError) as error:
        raise InputError(path, None, None, f"unreadable CSV ({error})") from error
    if tuple(frame.columns) != columns:
        raise InputError(path, 1, None, f"header is {frame.columns}, expected {list(columns)}")
    return frame


def _split_list(column: str) -> pl.Expr:
    return (
        pl.when(pl.col(column).is_null())
        .then(pl.lit([], pl.List(pl.String)))
        .otherwise(pl.col(column).str.split(LIST_SEP))
        .alias(column)
    )


def _fail_unknown(path: Path, frame: pl.DataFrame, field: str, what: str) -> None:
    """Raise for the first row of ``frame`` (columns ``line``, ``value``)."""
    if frame.height:
        line, value = frame.row(0)
        more = f" (and {frame.height - 1} more)" if frame.height > 1 else ""
        raise InputError(path, f"line {line}", field, f"{what} {value!r}{more}")


def read_classes(path: str | Path) -> pl.DataFrame:
    """Read ``classes.csv`` into a CATEGORIES frame (parents/part_of names → ids)."""
    path = Path(path)
    raw = _read_strings(path, CLASSES_COLUMNS).with_row_index("line", offset=2)
    ids = raw.select("line", pl.col("id").cast(pl.Int32, strict=False).alias("parsed"), "id")
    _fail_unknown(
        path,
        ids.filter(pl.col("parsed").is_null() | (pl.col("parsed") != pl.col("line") - 2)).select(
            "line", "id"
        ),
        "id",
        "id must be the 0-based row position, got",
    )
    _fail_unknown(
        path, raw.filter(pl.col("name").is_null()).select("line", "id"), "name", "empty name at id"
    )
    _fail_unknown(
        path,
        raw.filter(pl.col("name").is_duplicated()).select("line", "name"),
        "name",
        "duplicate class name",
    )
    names = pl.DataFrame(
        {"ref": raw["name"], "ref_id": raw["id"].cast(pl.Int32)},
        schema={"ref": pl.String, "ref_id": pl.Int32},
    )
    frame = raw.with_columns(_split_list(c) for c in ("synonyms", "parents", "part_of"))
    for edge in ("parents", "part_of"):
        refs = frame.select("line", pl.col(edge).alias("ref")).explode("ref").drop_nulls("ref")
        _fail_unknown(
            path,
            refs.join(names, on="ref", how="anti").select("line", "ref"),
            edge,
            "unknown class name",
        )
        resolved = (
            refs.join(names, on="ref", how="left", maintain_order="left")
            .group_by("line", maintain_order=True)
            .agg(pl.col("ref_id").alias(edge))
        )
        frame = frame.drop(edge).join(resolved, on="line", how="left", maintain_order="left")
    return schema.conform(
        frame.with_columns(
            pl.col("parents", "part_of").fill_null(pl.lit([], pl.List(pl.Int32)))
        ).drop("line"),
        "categories",
    )


def read_mapping(path: str | Path, classes: pl.DataFrame) -> pl.DataFrame:
    """Read ``mapping.csv`` into a MAPPING frame; ``label`` names become ids."""
    path = Path(path)
    raw = _read_strings(path, MAPPING_COLUMNS).with_row_index("line", offset=2)
    names = classes.select(pl.col("name").alias("label"), pl.col("id").alias("label_id"))
    joined = raw.join(names, on="label", how="left", maintain_order="left")
    _fail_unknown(
        path,
        joined.filter(pl.col("label").is_not_null() & pl.col("label_id").is_null()).select(
            "line", "label"
        ),
        "label",
        "unknown class name",
    )
    for field in ("source", "source_label"):
        _fail_unknown(
            path, raw.filter(pl.col(field).is_null()).select("line", field), field, "empty value"
        )
    scores = raw.select("line", "score", pl.col("score").cast(pl.Float32, strict=False).alias("f"))
    _fail_unknown(
        path,
        scores.filter(pl.col("score").is_not_null() & pl.col("f").is_null()).select(
            "line", "score"
        ),
        "score",
        "not a number:",
    )
    return joined.select(
        "source",
        "source_label",
        "source_name",
        pl.col("label_id").cast(pl.Int32).alias("label"),
        pl.col("label").alias("label_name"),
        "relation",
        "provenance",
        pl.col("score").cast(pl.Float32),
        "note",
    )


def _join_list(column: str, names: dict[int, str] | None = None) -> pl.Expr:
    expr = pl.col(column)
    if names is not None:
        expr = expr.list.eval(pl.element().replace_strict(names, return_dtype=pl.String))
    return expr.list.join(LIST_SEP).replace("", None).alias(column)


def classes_csv(classes: pl.DataFrame) -> str:
    """``classes.csv`` text of a CATEGORIES frame."""
    classes = classes.sort("id")
    names = dict(zip(classes["id"].to_list(), classes["name"].to_list(), strict=True))
    return classes.select(
        "id",
        "name",
        _join_list("synonyms"),
        "synset",
        "definition",
        _join_list("parents", names),
        _join_list("part_of", names),
        "frequency",
    ).write_csv()


def mapping_csv(mapping: pl.DataFrame) -> str:
    """``mapping.csv`` text of a MAPPING frame (``label`` written as the class name)."""
    return mapping.select(
        "source",
        "source_label",
        "source_name",
        pl.col("label_name").alias("label"),
        "relation",
        "provenance",
        "score",
        "note",
    ).write_csv()


def fingerprint(taxonomy: Taxonomy) -> str:
    """SHA-256 (hex) of a taxonomy's content: its classes and mapping as :func:`save` writes
    them. Any change to a class, an edge or a mapping row changes it (a build records it, so
    builds made with two revisions of one taxonomy are told apart); how the CSV files are
    spelled (line endings, quoting) does not."""
    digest = hashlib.sha256()
    for text in (classes_csv(taxonomy.classes), mapping_csv(taxonomy.mapping)):
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def save(taxonomy: Taxonomy, directory: str | Path) -> Path:
    """Write ``classes.csv`` and ``mapping.csv`` into ``directory`` (atomically, as a whole)."""
    directory = Path(directory)
    with atomic_path(directory) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "classes.csv").write_text(classes_csv(taxonomy.classes), encoding="utf-8")
        (tmp / "mapping.csv").write_text(mapping_csv(taxonomy.mapping), encoding="utf-8")
    return directory
