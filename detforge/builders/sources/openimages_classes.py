"""OpenImages classes: ``class-descriptions-boxable.csv`` and the box hierarchy JSON.

The hierarchy (``bbox_labels_600_hierarchy.json``) is a nested
``{"LabelName": MID, "Subcategory": [...], "Part": [...]}`` tree from the root
``/m/0bl9f`` (Entity, not a class). A class listed under several parents is a DAG node:
``parents`` keeps every ``Subcategory`` (is_a) parent, ``part_of`` every ``Part`` whole.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from detforge.builders.sources import common
from detforge.errors import InputError

SOURCE = "openimages"
ROOT_MID = "/m/0bl9f"
HIERARCHY_FILE = "bbox_labels_600_hierarchy.json"


def read_class_csv(path: Path) -> pl.DataFrame:
    """``MID,DisplayName`` rows (no header; a ``LabelName,DisplayName`` header is skipped)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, None, None, f"cannot read class file ({error})") from None
    # some copies use bare \r line endings
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        frame = pl.read_csv(
            io.StringIO(text),
            has_header=False,
            new_columns=["source_label", "name"],
            schema_overrides={"column_1": pl.String, "column_2": pl.String},
        )
    except pl.exceptions.PolarsError as error:
        raise InputError(
            path, None, None, f"malformed CSV ({str(error).splitlines()[0]})"
        ) from None
    if frame.width != 2:
        raise InputError(
            path, "row 1", None, f"expected 2 columns MID,DisplayName, got {frame.width}"
        )
    if frame.height and frame["source_label"][0] == "LabelName":
        frame = frame.slice(1)
    common.check_nulls(path, frame, ["source_label", "name"], None)
    common.check_unique(path, frame, "source_label", "class")
    return frame


def read_hierarchy(path: Path) -> pl.DataFrame:
    """Edges of the hierarchy: ``child, parent, relation`` (``is_a`` or ``part_of``).

    Edges from the root ``/m/0bl9f`` are left out; duplicates kept once, in file order.
    """
    path = Path(path)
    tree = common.load_json(path)
    edges: dict[tuple[str, str, str], None] = {}
    stack = [(tree, "LabelName")]
    # walk the (small, ~600-node) tree iteratively
    while stack:
        node, where = stack.pop()
        if not isinstance(node, dict) or not isinstance(node.get("LabelName"), str):
            raise InputError(path, where, "LabelName", "hierarchy node without a LabelName")
        mid = node["LabelName"]
        for key, relation in (("Part", "part_of"), ("Subcategory", "is_a")):
            children = node.get(key, [])
            if not isinstance(children, list):
                raise InputError(path, mid, key, "expected a list")
            for child in reversed(children):
                if isinstance(child, dict) and mid != ROOT_MID:
                    edges[(child.get("LabelName"), mid, relation)] = None
                stack.append((child, f"{mid}/{key}"))
    rows = list(reversed(edges))
    return pl.DataFrame(
        rows, schema={"child": pl.String, "parent": pl.String, "relation": pl.String}, orient="row"
    )


def read_categories(path: Path, hierarchy: Path | None = None) -> pl.DataFrame:
    """SOURCE_CATEGORIES of OpenImages: the class CSV plus hierarchy ``parents``/``part_of``.

    ``hierarchy`` defaults to ``bbox_labels_600_hierarchy.json`` beside the CSV when present.
    """
    path = Path(path)
    classes = read_class_csv(path)
    if hierarchy is None and (path.parent / HIERARCHY_FILE).is_file():
        hierarchy = path.parent / HIERARCHY_FILE
    if hierarchy is not None:
        edges = read_hierarchy(Path(hierarchy))
        mids = pl.concat([edges["child"], edges["parent"]]).unique()
        unknown = mids.filter(~mids.is_in(classes["source_label"].implode()))
        if unknown.len():
            raise InputError(hierarchy, unknown.sort()[0], "LabelName", "MID not in the class list")
        lists = (
            edges.group_by("child", "relation", maintain_order=True)
            .agg(pl.col("parent"))
            .pivot("relation", index="child", values="parent")
        )
        for relation in ("is_a", "part_of"):
            if relation not in lists.columns:
                lists = lists.with_columns(pl.lit(None, pl.List(pl.String)).alias(relation))
        classes = classes.join(
            lists.select(
                pl.col("child").alias("source_label"),
                pl.col("is_a").alias("parents"),
                pl.col("part_of"),
            ),
            on="source_label",
            how="left",
            maintain_order="left",
        ).with_columns(pl.col("parents", "part_of").fill_null(pl.lit([], pl.List(pl.String))))
    return common.source_categories(classes, SOURCE)
