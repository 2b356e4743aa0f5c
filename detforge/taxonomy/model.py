"""The taxonomy model: unified classes in a DAG plus the mapping of every source class."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl

from detforge import schema
from detforge.errors import DetforgeError


class TaxonomyError(DetforgeError):
    """A taxonomy is missing, or a class asked for does not exist."""


@dataclasses.dataclass(frozen=True)
class UnifiedClass:
    """One class of a unified label space; ``parents``/``part_of`` hold class ids."""

    id: int
    name: str
    synonyms: tuple[str, ...] = ()
    synset: str | None = None
    definition: str | None = None
    parents: tuple[int, ...] = ()
    part_of: tuple[int, ...] = ()
    frequency: str | None = None


@dataclasses.dataclass(frozen=True)
class Taxonomy:
    """A unified label space: ``classes`` (schema.CATEGORIES) and ``mapping`` (schema.MAPPING).

    ``classes`` has one row per class, ``id`` = 0-based position; ``parents``
    (is_a) and ``part_of`` edges hold class ids. ``mapping`` has one row per
    source class (``label`` null = dropped). ``path`` is the directory it was
    loaded from, if any.
    """

    name: str
    classes: pl.DataFrame
    mapping: pl.DataFrame = dataclasses.field(
        default_factory=lambda: pl.DataFrame(schema=schema.MAPPING)
    )
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.classes.schema != schema.CATEGORIES:
            object.__setattr__(self, "classes", schema.conform(self.classes, "categories"))
        mapping = self.mapping
        if mapping.schema != schema.MAPPING:
            mapping = _conform_mapping(mapping)
        object.__setattr__(self, "mapping", _resolve_labels(mapping, self.classes))

    def __len__(self) -> int:
        return self.classes.height

    @property
    def names(self) -> list[str]:
        """Class names in id order."""
        return self.classes.sort("id")["name"].to_list()

    @property
    def sources(self) -> list[str]:
        """The sources the mapping covers, sorted."""
        return sorted(self.mapping["source"].unique().drop_nulls().to_list())

    def class_id(self, name_or_id: str | int) -> int:
        """The id of a class given by name (or a synonym) or by id (an int or a digit string)."""
        if isinstance(name_or_id, int) or str(name_or_id).isdigit():
            wanted = int(name_or_id)
            if wanted in set(self.classes["id"].to_list()):
                return wanted
        else:
            hit = self.classes.filter(pl.col("name") == name_or_id)
            if hit.height == 0:
                hit = self.classes.filter(pl.col("synonyms").list.contains(name_or_id))
            if hit.height:
                return int(hit["id"].min())
        raise TaxonomyError(f"taxonomy {self.name}: no class {name_or_id!r}")

    def get(self, name_or_id: str | int) -> UnifiedClass:
        """One class as a :class:`UnifiedClass`."""
        row = self.classes.filter(pl.col("id") == self.class_id(name_or_id)).row(0, named=True)
        return UnifiedClass(
            id=row["id"],
            name=row["name"],
            synonyms=tuple(row["synonyms"] or ()),
            synset=row["synset"],
            definition=row["definition"],
            parents=tuple(row["parents"] or ()),
            part_of=tuple(row["part_of"] or ()),
            frequency=row["frequency"],
        )

    def feeding(self, name_or_id: str | int) -> pl.DataFrame:
        """The mapping rows of the source classes that feed one class."""
        wanted = self.class_id(name_or_id)
        return self.mapping.filter(pl.col("label") == wanted).sort("source", "source_label")

    def replace(self, **changes) -> Taxonomy:
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)


def _conform_mapping(frame: pl.DataFrame) -> pl.DataFrame:
    unknown = set(frame.columns) - set(schema.MAPPING)
    if unknown:
        raise ValueError(f"mapping: unknown column(s) {sorted(unknown)}")
    return frame.select(
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in schema.MAPPING.items()
    )


def _resolve_labels(mapping: pl.DataFrame, classes: pl.DataFrame) -> pl.DataFrame:
    """Fill whichever of ``label`` (id) / ``label_name`` is missing from the other.

    An unknown name leaves ``label`` null; :func:`detforge.taxonomy.validate` reports it.
    """
    missing = mapping.filter(pl.col("label").is_null() != pl.col("label_name").is_null()).height
    if not missing:
        return mapping
    by_name = dict(zip(classes["name"].to_list(), classes["id"].to_list(), strict=True))
    by_id = {v: k for k, v in by_name.items()}
    return mapping.with_columns(
        pl.coalesce(
            "label",
            pl.col("label_name").replace_strict(by_name, default=None, return_dtype=pl.Int32),
        ),
        pl.coalesce(
            "label_name",
            pl.col("label").replace_strict(by_id, default=None, return_dtype=pl.String),
        ),
    )


def classes_frame(classes: list[UnifiedClass]) -> pl.DataFrame:
    """A CATEGORIES frame from :class:`UnifiedClass` objects (handy in code and tests)."""
    rows = [
        {
            "id": c.id,
            "name": c.name,
            "synonyms": list(c.synonyms),
            "synset": c.synset,
            "definition": c.definition,
            "parents": list(c.parents),
            "part_of": list(c.part_of),
            "frequency": c.frequency,
        }
        for c in classes
    ]
    return pl.DataFrame(rows, schema=schema.CATEGORIES)
