"""What changed between two versions of a taxonomy, for release notes."""

from __future__ import annotations

import dataclasses

import polars as pl

from detforge.taxonomy.model import Taxonomy

KEY = ["source", "source_label"]


@dataclasses.dataclass(frozen=True)
class TaxonomyDiff:
    """Class and mapping changes from taxonomy ``a`` to ``b``.

    ``renamed``: same id, new name (the old name is gone from ``b``).
    ``moved``: a name kept but its id changed (checkpoints trained on ``a`` break).
    ``remapped``: a source class whose target class (beyond a rename) or relation changed;
    ``mapping_added``/``mapping_removed``: source classes with a row only in ``b``/``a``.
    """

    a: str
    b: str
    added: pl.DataFrame
    removed: pl.DataFrame
    renamed: pl.DataFrame
    moved: pl.DataFrame
    remapped: pl.DataFrame
    mapping_added: pl.DataFrame
    mapping_removed: pl.DataFrame

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f).height for f in self.sections())

    @staticmethod
    def sections() -> tuple[str, ...]:
        return (
            "added",
            "removed",
            "renamed",
            "moved",
            "remapped",
            "mapping_added",
            "mapping_removed",
        )

    def to_markdown(self) -> str:
        """Release-notes Markdown: one section and table per kind of change."""
        titles = {
            "added": "Classes added",
            "removed": "Classes removed",
            "renamed": "Classes renamed (same id)",
            "moved": "Classes with a new id",
            "remapped": "Source classes re-mapped",
            "mapping_added": "Source classes added to the mapping",
            "mapping_removed": "Source classes removed from the mapping",
        }
        lines = [f"# Taxonomy changes: {self.a} → {self.b}", ""]
        if self.empty:
            return "\n".join([*lines, "No changes.", ""])
        for section in self.sections():
            frame = getattr(self, section)
            if not frame.height:
                continue
            lines += [f"## {titles[section]} ({frame.height})", ""]
            lines.append("| " + " | ".join(frame.columns) + " |")
            lines.append("|" + "---|" * frame.width)
            for row in frame.iter_rows():
                cells = (
                    ""
                    if v is None
                    else repr(v)
                    if isinstance(v, str) and v != v.strip()
                    else str(v)
                    for v in row
                )
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            lines.append("")
        return "\n".join(lines)


def diff(a: Taxonomy, b: Taxonomy) -> TaxonomyDiff:
    """Classes added/removed/renamed/moved and source classes re-mapped from ``a`` to ``b``."""
    ca = a.classes.select("id", "name")
    cb = b.classes.select("id", "name")
    by_id = ca.join(cb, on="id", suffix="_b")
    renamed = (
        by_id.filter(pl.col("name") != pl.col("name_b"))
        .filter(
            ~pl.col("name").is_in(cb["name"].implode())
            & ~pl.col("name_b").is_in(ca["name"].implode())
        )
        .select("id", pl.col("name").alias("old_name"), pl.col("name_b").alias("new_name"))
        .sort("id")
    )
    moved = (
        ca.join(cb, on="name", suffix="_b")
        .filter(pl.col("id") != pl.col("id_b"))
        .select("name", pl.col("id").alias("old_id"), pl.col("id_b").alias("new_id"))
        .sort("old_id")
    )
    added = (
        cb.join(ca, on="name", how="anti")
        .join(renamed.select(pl.col("new_name").alias("name")), on="name", how="anti")
        .sort("id")
    )
    removed = (
        ca.join(cb, on="name", how="anti")
        .join(renamed.select(pl.col("old_name").alias("name")), on="name", how="anti")
        .sort("id")
    )
    cols = [*KEY, "source_name", "label_name", "relation"]
    ma, mb = a.mapping.select(cols), b.mapping.select(cols)
    # a renamed class does not re-map the source classes feeding it
    renames = dict(renamed.select("old_name", "new_name").iter_rows())
    remapped = (
        ma.join(mb.drop("source_name"), on=KEY, suffix="_b")
        .with_columns(pl.col("label_name").replace(renames).alias("renamed_to"))
        .filter(
            (pl.col("renamed_to").ne_missing(pl.col("label_name_b")))
            | (pl.col("relation").ne_missing(pl.col("relation_b")))
        )
        .filter(
            (pl.col("label_name").ne_missing(pl.col("label_name_b")))
            | (pl.col("relation").ne_missing(pl.col("relation_b")))
        )
        .select(
            *KEY,
            "source_name",
            pl.col("label_name").alias("old_label"),
            pl.col("label_name_b").alias("new_label"),
            pl.col("relation").alias("old_relation"),
            pl.col("relation_b").alias("new_relation"),
        )
        .sort(KEY)
    )
    return TaxonomyDiff(
        a=a.name,
        b=b.name,
        added=added,
        removed=removed,
        renamed=renamed,
        moved=moved,
        remapped=remapped,
        mapping_added=mb.join(ma, on=KEY, how="anti").sort(KEY),
        mapping_removed=ma.join(mb, on=KEY, how="anti").sort(KEY),
    )
