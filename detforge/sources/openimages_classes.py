"""OpenImages classes: ``class-descriptions-boxable.csv`` and the box hierarchy JSON.

The hierarchy (``bbox_labels_600_hierarchy.json``) is a nested
``{"LabelName": MID, "Subcategory": [...], "Part": [...]}`` tree. Its top node is the
root: Google's file uses ``/m/0bl9f`` (Entity), other copies other MIDs; a root that is
not in the class list is a container, not a class, and gives no edges. A class listed
under several parents is a DAG node: ``parents`` keeps every ``Subcategory`` (is_a)
parent, ``part_of`` every ``Part`` whole.

The class CSV is ``MID,DisplayName`` rows, with or without a header line (a first line
whose first cell is not a MID while the next one's is: ``LabelName,DisplayName``,
``mid,label``, ...). Errors name the file's 1-based line.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from detforge.errors import InputError
from detforge.sources import common

SOURCE = "openimages"
HIERARCHY_FILE = "bbox_labels_600_hierarchy.json"


def _is_mid(value: str | None) -> bool:
    """OpenImages class ids are Freebase / Knowledge Graph ids: ``/m/...`` or ``/g/...``."""
    return value is not None and value.startswith("/")


def read_class_csv(path: Path) -> pl.DataFrame:
    """``source_label, name`` rows of a class CSV (a header line is detected and skipped)."""
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
            path, "line 1", None, f"expected 2 columns MID,DisplayName, got {frame.width}"
        )
    frame = frame.with_row_index("_line", offset=1)  # the file's line number
    first = frame["source_label"].head(2).to_list()
    if first and not _is_mid(first[0]) and (len(first) == 1 or _is_mid(first[1])):
        frame = frame.slice(1)  # a header line
    for column in ("source_label", "name"):
        empty = frame.filter(pl.col(column).is_null())
        if empty.height:
            line = empty["_line"][0]
            raise InputError(path, f"line {line}", column, "missing or empty value")
    repeated = frame.filter(pl.col("source_label").is_duplicated())
    if repeated.height:
        mid, lines = (
            repeated["source_label"][0],
            repeated.filter(pl.col("source_label") == repeated["source_label"][0])["_line"],
        )
        raise InputError(
            path,
            f"line {lines[1]}",
            "source_label",
            f"duplicate class {mid} (first on line {lines[0]})",
        )
    return frame.drop("_line")


def read_hierarchy(path: Path) -> tuple[str, pl.DataFrame]:
    """The root's MID and the edges of the hierarchy: ``child, parent, relation``
    (``is_a`` or ``part_of``), every edge once, in file order (the root's included)."""
    path = Path(path)
    tree = common.load_json(path)
    if not isinstance(tree, dict) or not isinstance(tree.get("LabelName"), str):
        raise InputError(path, "root", "LabelName", "hierarchy root without a LabelName")
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
                if isinstance(child, dict):
                    edges[(child.get("LabelName"), mid, relation)] = None
                stack.append((child, f"{mid}/{key}"))
    rows = list(reversed(edges))
    frame = pl.DataFrame(
        rows, schema={"child": pl.String, "parent": pl.String, "relation": pl.String}, orient="row"
    )
    return tree["LabelName"], frame


def read_categories(path: Path, hierarchy: Path | None = None) -> pl.DataFrame:
    """SOURCE_CATEGORIES of OpenImages: the class CSV plus hierarchy ``parents``/``part_of``.

    ``hierarchy`` defaults to ``bbox_labels_600_hierarchy.json`` beside the CSV when present.
    """
    path = Path(path)
    classes = read_class_csv(path)
    if hierarchy is None and (path.parent / HIERARCHY_FILE).is_file():
        hierarchy = path.parent / HIERARCHY_FILE
    if hierarchy is not None:
        root, edges = read_hierarchy(Path(hierarchy))
        if root not in classes["source_label"]:  # a container (Entity), not a class
            edges = edges.filter(pl.col("parent") != root)
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
