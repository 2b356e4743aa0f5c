"""Checks a taxonomy against itself and against the sources' category tables."""

from __future__ import annotations

import dataclasses

import polars as pl

from detforge import schema
from detforge.taxonomy.hierarchy import find_cycle
from detforge.taxonomy.model import Taxonomy

KEY = ["source", "source_label"]
COVERING = ("exact", "synonym", "merge")


@dataclasses.dataclass(frozen=True)
class Report:
    """Violations (one line each) and coverage per source."""

    problems: list[str]
    coverage: pl.DataFrame

    @property
    def ok(self) -> bool:
        return not self.problems


def _examples(frame: pl.DataFrame, columns: list[str], limit: int = 5) -> str:
    rows = frame.select(columns).head(limit).iter_rows()
    shown = ", ".join(":".join(repr(v) if isinstance(v, str) else str(v) for v in r) for r in rows)
    return shown + (f", ... ({frame.height} in all)" if frame.height > limit else "")


def _check(problems: list[str], frame: pl.DataFrame, what: str, columns: list[str]) -> None:
    if frame.height:
        problems.append(f"{what}: {_examples(frame, columns)}")


def _class_problems(taxonomy: Taxonomy) -> list[str]:
    problems: list[str] = []
    classes = taxonomy.classes
    _check(
        problems,
        classes.filter(pl.col("name").is_duplicated()),
        "classes: duplicate name",
        ["id", "name"],
    )
    _check(
        problems,
        classes.filter(pl.col("id").is_duplicated()),
        "classes: duplicate id",
        ["id", "name"],
    )
    _check(
        problems,
        classes.with_row_index("position").filter(pl.col("id") != pl.col("position")),
        "classes: id is not the 0-based position",
        ["id", "name"],
    )
    _check(problems, classes.filter(pl.col("name").is_null()), "classes: empty name", ["id"])
    ids = classes.select(pl.col("id").alias("ref"))
    for edge in ("parents", "part_of"):
        refs = (
            classes.select("id", "name", pl.col(edge).alias("ref")).explode("ref").drop_nulls("ref")
        )
        _check(
            problems,
            refs.join(ids, on="ref", how="anti"),
            f"classes: {edge} names an unknown id",
            ["name", "ref"],
        )
        _check(
            problems,
            refs.filter(pl.col("ref") == pl.col("id")),
            f"classes: {edge} names the class itself",
            ["name"],
        )
        cycle = find_cycle(classes, edge)
        if cycle:
            names = dict(zip(classes["id"].to_list(), classes["name"].to_list(), strict=True))
            problems.append(
                f"classes: {edge} edges form a cycle: "
                + " -> ".join(names.get(c, str(c)) for c in cycle)
            )
    return problems


def _mapping_problems(taxonomy: Taxonomy) -> list[str]:
    problems: list[str] = []
    m = taxonomy.mapping
    _check(
        problems,
        m.filter(pl.struct(KEY).is_duplicated()),
        "mapping: more than one row for a source class",
        KEY,
    )
    _check(
        problems,
        m.filter(~pl.col("relation").is_in(schema.RELATIONS) | pl.col("relation").is_null()),
        f"mapping: relation not in {'|'.join(schema.RELATIONS)}",
        [*KEY, "relation"],
    )
    _check(
        problems,
        m.filter(~pl.col("provenance").is_in(schema.PROVENANCES) | pl.col("provenance").is_null()),
        f"mapping: provenance not in {'|'.join(schema.PROVENANCES)}",
        [*KEY, "provenance"],
    )
    _check(
        problems,
        m.filter(pl.col("label_name").is_null() != (pl.col("relation") == "drop")),
        "mapping: label must be empty exactly when relation is drop",
        [*KEY, "relation"],
    )
    named = m.filter(pl.col("label_name").is_not_null())
    classes = taxonomy.classes.select(
        pl.col("id").alias("label"), pl.col("name").alias("class_name")
    )
    joined = named.join(classes, on="label", how="left")
    _check(
        problems,
        joined.filter(pl.col("label").is_null() | (pl.col("class_name") != pl.col("label_name"))),
        "mapping: label is not a class of the taxonomy",
        [*KEY, "label_name"],
    )
    _check(
        problems,
        m.filter(pl.col("score").is_not_null() & ~pl.col("score").is_between(0, 1)),
        "mapping: score outside [0, 1]",
        [*KEY, "score"],
    )
    _check(problems, m.filter(pl.col("source_name").is_null()), "mapping: empty source_name", KEY)
    _check(
        problems,
        m.filter(
            pl.col("relation").is_in(["exact", "synonym"]).sum().over("source", "label_name") > 1,
            pl.col("relation").is_in(["exact", "synonym"]),
        ).sort(*KEY),
        "mapping: more than one exact/synonym row of a source for one class (the class is one "
        "of them; the others are merge, or parent where the source files them under it)",
        [*KEY, "label_name"],
    )
    return problems


def _ancestors(source_categories: pl.DataFrame) -> pl.DataFrame:
    """``source, source_label, ancestor``: every is_a ancestor in the sources' own
    hierarchies (OpenImages' ``Subcategory`` edges; LVIS and Objects365 have none)."""
    edges = (
        source_categories.select(*KEY, pl.col("parents").alias("ancestor"))
        .explode("ancestor")
        .drop_nulls("ancestor")
        .unique()
    )
    closure = edges
    while True:  # one join per level of the hierarchy
        step = closure.join(
            edges.rename({"source_label": "ancestor", "ancestor": "next"}),
            on=["source", "ancestor"],
        ).select(*KEY, pl.col("next").alias("ancestor"))
        grown = pl.concat([closure, step]).unique()
        if grown.height == closure.height:
            return closure
        closure = grown


def _nesting_problems(taxonomy: Taxonomy, source_categories: pl.DataFrame) -> list[str]:
    """A ``parent`` row must sit under a covering row of its class in its source's own
    hierarchy, or its source has no covering row for the class; a covering row must not
    sit under another one. Otherwise a verified negative or a complete annotation of the
    covering class would be read as one of the unified class although the source says
    nothing about the other (OpenImages ``Bicycle wheel`` is not under ``Wheel``)."""
    problems: list[str] = []
    listed = source_categories.select(KEY).unique()
    rows = taxonomy.mapping.filter(pl.col("label").is_not_null()).join(listed, on=KEY)
    # each row beside each OTHER covering row of its source for the same class
    covering = rows.filter(pl.col("relation").is_in(COVERING)).select(
        "source",
        "label",
        pl.col("source_label").alias("cover_label"),
        pl.col("source_name").alias("covering"),
    )
    beside = rows.join(covering, on=["source", "label"]).filter(
        pl.col("source_label") != pl.col("cover_label")
    )
    ancestors = _ancestors(source_categories).rename({"ancestor": "cover_label"})
    under = beside.join(ancestors, on=[*KEY, "cover_label"], how="semi")
    loose = beside.filter(pl.col("relation") == "parent").join(under, on=KEY, how="anti")
    nested = under.filter(pl.col("relation").is_in(COVERING))
    for frame, what in (
        (
            loose,
            "mapping: parent row beside a covering (exact/synonym/merge) row of its source for "
            "the same class, not under it in the source's hierarchy (make it merge)",
        ),
        (
            nested,
            "mapping: covering row under another covering row of its source for the same class "
            "in the source's hierarchy (make it parent)",
        ),
    ):
        first = frame.sort(*KEY, "covering").unique(KEY, keep="first", maintain_order=True)
        _check(problems, first, what, [*KEY, "source_name", "covering"])
    return problems


def _source_problems(
    taxonomy: Taxonomy, source_categories: pl.DataFrame, subset: bool
) -> list[str]:
    problems: list[str] = []
    cats = source_categories.select(*KEY, "name").unique(maintain_order=True)
    sources = cats.select("source").unique()
    m = taxonomy.mapping.join(sources, on="source")
    _check(
        problems,
        cats.join(m, on=KEY, how="anti").sort(KEY),
        "source class without a mapping row",
        [*KEY, "name"],
    )
    if not subset:
        _check(
            problems,
            m.join(cats, on=KEY, how="anti").sort(KEY),
            "mapping row for a class the source does not have",
            [*KEY, "source_name"],
        )
    renamed = m.join(cats, on=KEY).filter(pl.col("name") != pl.col("source_name")).sort(KEY)
    _check(
        problems,
        renamed,
        "mapping: source_name differs from the source's raw name",
        [*KEY, "source_name", "name"],
    )
    return problems


def coverage(
    taxonomy: Taxonomy,
    objects: pl.DataFrame | None = None,
    source_categories: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per source: source classes per relation, mapped/merged/dropped, unified classes fed.

    ``mapped`` = exact + synonym, ``merged`` = merge + parent (many-to-one),
    ``dropped`` = drop. With ``source_categories``, ``missing`` = its classes
    without a row (their sources listed even when unmapped). With ``objects``
    (source label space), boxes kept/dropped.
    """
    m = taxonomy.mapping
    if source_categories is not None:
        m = pl.concat(
            [
                m,
                source_categories.select(KEY)
                .join(m, on=KEY, how="anti")
                .with_columns(pl.lit("missing").alias("relation")),
            ],
            how="diagonal_relaxed",
        )
    per = m.group_by("source").agg(
        (pl.col("relation") != "missing").sum().alias("classes"),
        *((pl.col("relation") == r).sum().alias(r) for r in (*schema.RELATIONS, "missing")),
        pl.col("label").drop_nulls().n_unique().alias("unified_classes"),
    )
    per = per.with_columns(
        (pl.col("exact") + pl.col("synonym")).alias("mapped"),
        (pl.col("merge") + pl.col("parent")).alias("merged"),
        pl.col("drop").alias("dropped"),
    )
    if objects is not None:
        boxes = (
            objects.select(KEY)
            .join(m.select(*KEY, "label"), on=KEY, how="left")
            .group_by("source")
            .agg(
                pl.col("label").is_not_null().sum().alias("boxes_kept"),
                pl.col("label").is_null().sum().alias("boxes_dropped"),
            )
        )
        per = per.join(boxes, on="source", how="left").with_columns(
            pl.col("boxes_kept", "boxes_dropped").fill_null(0)
        )
    return per.sort("source")


def validate(
    taxonomy: Taxonomy,
    source_categories: pl.DataFrame | None = None,
    objects: pl.DataFrame | None = None,
    *,
    subset: bool = False,
) -> Report:
    """Every violation of the taxonomy's rules, and coverage per source.

    Checks: class names/ids unique, ids = positions, edges name known classes,
    is_a and part_of acyclic; one mapping row per source class, valid
    relation/provenance, label empty iff relation is drop, labels name
    classes, at most one exact/synonym row per source and class. With
    ``source_categories`` (schema.SOURCE_CATEGORIES): every class of those
    sources has exactly one row, no row for an unknown class, raw names verbatim
    (``subset=True``: the tables list only some of their sources' classes, e.g.
    a sample, so rows beyond them are fine), and parent/merge relations agree
    with the sources' own hierarchies (``parents``). With ``objects``: every
    box's class has a row.
    """
    problems = _class_problems(taxonomy) + _mapping_problems(taxonomy)
    if source_categories is not None:
        problems += _source_problems(taxonomy, source_categories, subset)
        problems += _nesting_problems(taxonomy, source_categories)
    if objects is not None:
        unmapped = objects.select(KEY).unique().join(taxonomy.mapping, on=KEY, how="anti").sort(KEY)
        _check(problems, unmapped, "objects: source class without a mapping row", KEY)
    return Report(problems=problems, coverage=coverage(taxonomy, objects, source_categories))
