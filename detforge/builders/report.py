"""The build report: Markdown + PNG (matplotlib, Agg), also the body of the dataset card.

Sections: stage counts, images/boxes per source and split, the long-tail class
histogram, the most costly dropped classes, duplicate groups, contamination
removed, image-hashing coverage, and quarantined records. The dedup and
decontamination report frames are written beside it as parquet
(:data:`REPORT_FRAMES`), where ``detforge browse`` reads them.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from detforge.atomic import atomic_path
from detforge.builders.recipe import Recipe
from detforge.dataset import DetDataset
from detforge.markdown import md_table

LONG_TAIL_PNG = "long_tail.png"
SOURCES_PNG = "per_source.png"
TOP = 15
#: stage report frames written as ``<name>.parquet`` into the report folder
REPORT_FRAMES = ("dup_groups", "contamination")


def per_source_split(dataset: DetDataset) -> pl.DataFrame:
    """Images and (labelled) boxes per source and split."""
    images = dataset.images.group_by("source", "split").agg(pl.len().cast(pl.Int64).alias("images"))
    boxes = (
        dataset.objects.join(dataset.images.select("image_id", "split"), on="image_id")
        .group_by("source", "split")
        .agg(pl.len().cast(pl.Int64).alias("boxes"))
    )
    return (
        images.join(boxes, on=["source", "split"], how="full", coalesce=True)
        .fill_null(0)
        .sort("source", "split")
    )


def class_counts(dataset: DetDataset) -> pl.DataFrame:
    """Boxes and images per unified class (every class, zeros included), most boxes first."""
    counts = dataset.objects.group_by("label").agg(
        pl.len().cast(pl.Int64).alias("boxes"),
        pl.col("image_id").n_unique().cast(pl.Int64).alias("images"),
    )
    return (
        dataset.categories.select(pl.col("id").alias("label"), "name")
        .join(counts, on="label", how="left")
        .fill_null(0)
        .sort(["boxes", "label"], descending=[True, False])
    )


def _plots(dataset: DetDataset, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = {"Software": None}  # no version string: the PNG depends only on the data
    counts = class_counts(dataset)
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    values = counts["boxes"].to_numpy()
    boxed = values[values > 0]  # a log axis cannot show the classes without boxes: say so
    ax.bar(range(len(boxed)), boxed, width=1.0, color="#3b6ea5")
    ax.set_yscale("log")
    ax.set_xlabel(
        f"classes with boxes, most first ({len(boxed)} of {len(values)}; "
        f"{len(values) - len(boxed)} without boxes not drawn)"
    )
    ax.set_ylabel("boxes (log)")
    ax.set_title("Long tail: boxes per class")
    fig.tight_layout()
    fig.savefig(folder / LONG_TAIL_PNG, metadata=meta)
    plt.close(fig)

    table = per_source_split(dataset)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
    labels = [f"{s}\n{p}" for s, p in zip(table["source"], table["split"], strict=True)]
    for ax, column in zip(axes, ("images", "boxes"), strict=True):
        ax.bar(labels, table[column].to_list(), color="#a56e3b")
        ax.set_title(f"{column} per source and split")
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(folder / SOURCES_PNG, metadata=meta)
    plt.close(fig)


def hashing_gaps(meta: dict) -> pl.DataFrame:
    """Images the dedup and decontamination stages could not check (from their stats in
    ``dataset.meta``): unreadable or undecodable files. One row per nonzero count."""
    dedup = meta.get("dedup") or {}
    decont = meta.get("decontaminate") or {}
    rows = [
        ("dedup", "images not hashed (not deduplicated)", dedup.get("unhashed", 0)),
        ("decontaminate", "train images not hashed (not checked)", decont.get("unhashed_train", 0)),
        ("decontaminate", "eval images not hashed (not matched)", decont.get("unhashed_eval", 0)),
    ]
    frame = pl.DataFrame(
        rows, schema={"stage": pl.String, "what": pl.String, "images": pl.Int64}, orient="row"
    )
    return frame.filter(pl.col("images") > 0)


def revision(dataset: DetDataset) -> str:
    """`` (revision `<first 12 hex of its fingerprint>`)`` of the taxonomy the build mapped onto."""
    fingerprint = dataset.meta.get("taxonomy_fingerprint")
    return f" (revision `{fingerprint[:12]}`)" if fingerprint else ""


def body(
    dataset: DetDataset, reports: dict[str, pl.DataFrame], counts: pl.DataFrame, recipe: Recipe
) -> str:
    """The report's Markdown (image links relative to the report folder)."""
    drops = reports.get("drops", pl.DataFrame())
    dups = reports.get("dup_groups", pl.DataFrame())
    removed = reports.get("contamination", pl.DataFrame())
    gaps = hashing_gaps(dataset.meta)
    # "none found" is only true of the images that could be checked
    none_found = (
        "_none found_\n"
        if gaps.is_empty()
        else "_none found among the checked images_ (see Hashing coverage: some were not)\n"
    )
    out = [
        f"Recipe `{recipe.name}`, taxonomy `{recipe.taxonomy}`{revision(dataset)} "
        f"({dataset.categories.height} classes): {dataset.images.height:,} images, "
        f"{dataset.objects.height:,} boxes.\n",
        "### Images and boxes after each stage\n",
        md_table(counts),
        "### Per source and split\n",
        md_table(per_source_split(dataset)),
        f"\n![images and boxes per source and split]({SOURCES_PNG})\n",
        "### Long tail\n",
        f"![boxes per class, log scale]({LONG_TAIL_PNG})\n",
        md_table(class_counts(dataset), TOP),
        f"Classes without a single box: {(class_counts(dataset)['boxes'] == 0).sum()}.\n",
        "### Dropped source classes (most boxes lost first)\n",
    ]
    if "boxes" in drops.columns and drops.height:
        cost = pl.sum_horizontal(
            pl.col(c).fill_null(0)
            for c in ("boxes", "images", "image_labels")
            if c in drops.columns
        )
        costly = drops.filter(cost > 0).sort(
            ["boxes", "images", "source", "source_label"],
            descending=[True, True, False, False],
            nulls_last=True,
        )
        out.append(
            f"{drops.height:,} dropped or untranslatable source classes; {costly.height:,} of "
            f"them occur in this data: {int(drops['boxes'].sum() or 0):,} boxes lost.\n\n"
        )
        keep = [
            c
            for c in (
                "source",
                "source_name",
                "relation",
                "reason",
                "boxes",
                "images",
                "image_labels",
            )
            if c in drops.columns
        ]
        out.append(md_table(costly.select(keep), TOP))
    else:
        out.append("_none_\n")
    out.append("### Duplicates\n")
    if "action" in dups.columns and dups.height:
        actions = (
            dups.group_by("action").agg(pl.len().cast(pl.Int64).alias("images")).sort("action")
        )
        groups = dups["dup_group"].drop_nulls().n_unique()
        out.append(f"{groups:,} duplicate groups.\n\n")
        out.append(md_table(actions))
    else:
        out.append(none_found)
    out.append("### Contamination removed\n")
    if removed.height:
        by = [c for c in ("matched_set", "exact") if c in removed.columns]
        summary = (
            removed.group_by(by).agg(pl.len().cast(pl.Int64).alias("images")).sort(by)
            if by
            else pl.DataFrame({"images": [removed.height]})
        )
        out.append(f"{removed.height:,} training images removed.\n\n")
        out.append(md_table(summary))
    else:
        out.append(none_found)
    out.append("### Hashing coverage\n")
    if gaps.is_empty():
        out.append("Every image was hashed and fully searched.\n")
    else:
        out.append(
            "**Incomplete**: these images were not (fully) checked for duplicates or "
            "contamination; `dup_groups.parquet` lists the unhashed ones with the reason.\n\n"
        )
        out.append(md_table(gaps))
    out.append("### Quarantined records\n")
    quarantine = dataset.quarantine.group_by("source", "reason").agg(
        pl.len().cast(pl.Int64).alias("records")
    )
    out.append(md_table(quarantine.sort("source", "reason"), TOP))
    return "\n".join(out)


def write_report(
    dataset: DetDataset,
    reports: dict[str, pl.DataFrame],
    counts: pl.DataFrame,
    recipe: Recipe,
    folder: Path,
) -> Path:
    """Write ``folder/report.md``, its PNGs and the :data:`REPORT_FRAMES` parquet files as one
    atomic directory."""
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        _plots(dataset, tmp)
        for name in REPORT_FRAMES:
            if name in reports:
                reports[name].write_parquet(tmp / f"{name}.parquet", statistics=False)
        text = f"# Build report: {recipe.name}\n\n" + body(dataset, reports, counts, recipe)
        (tmp / "report.md").write_text(text, encoding="utf-8")
    return Path(folder) / "report.md"
