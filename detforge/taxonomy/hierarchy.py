"""The class DAG: ancestors/descendants over ``is_a`` (``parents``) or ``part_of`` edges,
cycle checks, expanding boxes to ancestors and collapsing classes onto parents."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable

import polars as pl

from detforge.dataset import DetDataset
from detforge.errors import DetforgeError
from detforge.taxonomy.model import Taxonomy

EDGES = ("parents", "part_of")


def _graph(classes: pl.DataFrame, edge: str) -> dict[int, list[int]]:
    """id → direct parents along ``edge`` ("parents" = is_a, or "part_of")."""
    if edge not in EDGES:
        raise ValueError(f"edge must be one of {EDGES}, got {edge!r}")
    return {
        cid: list(parents or [])
        for cid, parents in zip(classes["id"].to_list(), classes[edge].to_list(), strict=True)
    }


def find_cycle(classes: pl.DataFrame, edge: str = "parents") -> list[int] | None:
    """A cycle of class ids along ``edge`` (first id repeated at the end), or None for a DAG."""
    try:
        tuple(graphlib.TopologicalSorter(_graph(classes, edge)).static_order())
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


def _closure(graph: dict[int, list[int]], start: int) -> set[int]:
    seen: set[int] = set()
    stack = list(graph.get(start, ()))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return seen


def _inverse(graph: dict[int, list[int]]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {node: [] for node in graph}
    for node, parents in graph.items():
        for parent in parents:
            children.setdefault(parent, []).append(node)
    return children


def ancestors(taxonomy: Taxonomy, name_or_id: str | int, edge: str = "parents") -> set[int]:
    """Ids of every class reachable upwards along ``edge`` (the class itself excluded)."""
    return _closure(_graph(taxonomy.classes, edge), taxonomy.class_id(name_or_id))


def descendants(taxonomy: Taxonomy, name_or_id: str | int, edge: str = "parents") -> set[int]:
    """Ids of every class reachable downwards along ``edge`` (the class itself excluded)."""
    return _closure(_inverse(_graph(taxonomy.classes, edge)), taxonomy.class_id(name_or_id))


def ancestor_table(taxonomy: Taxonomy, edge: str = "parents") -> pl.DataFrame:
    """``(label, ancestor)`` pairs of the transitive closure, self pairs included."""
    graph = _graph(taxonomy.classes, edge)
    if find_cycle(taxonomy.classes, edge):
        raise DetforgeError(f"taxonomy {taxonomy.name}: {edge} edges have a cycle")
    pairs = [(node, anc) for node in graph for anc in sorted({node} | _closure(graph, node))]
    return pl.DataFrame(pairs, schema={"label": pl.Int32, "ancestor": pl.Int32}, orient="row")


def expand_to_ancestors(objects: pl.DataFrame, taxonomy: Taxonomy) -> pl.DataFrame:
    """Each box once per class in {its label} ∪ its is_a ancestors (OpenImages-style evaluation).

    ``object_id`` repeats across the copies; ``label`` holds the copy's class.
    Boxes with a null label are left out.
    """
    table = ancestor_table(taxonomy)
    return (
        objects.filter(pl.col("label").is_not_null())
        .join(table, on="label", how="inner", maintain_order="left")
        .with_columns(pl.col("ancestor").alias("label"))
        .drop("ancestor")
        .sort("object_id", "label", maintain_order=True)
    )


def collapse_map(taxonomy: Taxonomy, keep: int | Iterable[str | int]) -> dict[int, int]:
    """id → the class it collapses onto.

    ``keep`` is a depth (classes at most that many is_a steps below a root are
    kept) or a set of class names/ids. Every class goes to its nearest kept
    ancestor-or-self (fewest is_a steps, ties → smallest id); a class with no
    kept ancestor stays itself.
    """
    graph = _graph(taxonomy.classes, "parents")
    if find_cycle(taxonomy.classes):
        raise DetforgeError(f"taxonomy {taxonomy.name}: is_a edges have a cycle")
    if isinstance(keep, int):
        depth = _depths(graph)
        kept = {node for node, d in depth.items() if d <= keep}
    else:
        kept = {taxonomy.class_id(k) for k in keep}
    result = {}
    for node in graph:
        frontier, target = [node], None
        while frontier and target is None:
            hits = [n for n in frontier if n in kept]
            target = min(hits) if hits else None
            frontier = sorted({p for n in frontier for p in graph.get(n, ())})
        result[node] = node if target is None else target
    return result


def _depths(graph: dict[int, list[int]]) -> dict[int, int]:
    """Fewest is_a steps from a root (a class without parents) to each class."""
    depth: dict[int, int] = {}
    for node in graph:
        frontier, steps = [node], 0
        while frontier and not any(not graph.get(n) for n in frontier):
            frontier = [p for n in frontier for p in graph.get(n, ())]
            steps += 1
        depth[node] = steps
    return depth


def collapse(taxonomy: Taxonomy, keep: int | Iterable[str | int]) -> Taxonomy:
    """A taxonomy whose mapping sends each source class to the kept ancestor of its class.

    A redirected row becomes relation ``parent`` (the source class is now a narrower
    kind of the target), or ``merge`` where its source also maps a class to the target
    itself (exact, synonym or merge): the source boxes the narrower class apart from it,
    so the target is complete or absent only where both are. This keeps
    :func:`detforge.taxonomy.apply`'s federated facts right; where the source's own
    hierarchy files the class under the target's class, ``merge`` is the cautious choice
    (the hierarchy is not known here). Ids stay stable; ``classes`` keeps only the targets.
    """
    target = collapse_map(taxonomy, keep)
    kept = sorted(set(target.values()))
    mapping = taxonomy.mapping.with_columns(
        pl.col("label").replace_strict(target, default=None, return_dtype=pl.Int32).alias("new")
    ).with_columns(
        (pl.col("label").is_not_null() & (pl.col("new") != pl.col("label"))).alias("moved")
    )
    covered = (
        mapping.filter(~pl.col("moved") & pl.col("relation").is_in(["exact", "synonym", "merge"]))
        .select("source", pl.col("new").alias("covered"))
        .unique()
    )
    mapping = mapping.join(
        covered.with_columns(pl.lit(True).alias("beside")),
        left_on=["source", "new"],
        right_on=["source", "covered"],
        how="left",
        maintain_order="left",
    ).with_columns(
        pl.when(pl.col("moved") & pl.col("beside").fill_null(False))
        .then(pl.lit("merge"))
        .when(pl.col("moved"))
        .then(pl.lit("parent"))
        .otherwise("relation")
        .alias("relation"),
        pl.col("new").alias("label"),
        pl.lit(None, pl.String).alias("label_name"),
    )
    classes = taxonomy.classes.filter(pl.col("id").is_in(kept)).with_columns(
        pl.col(edge).list.eval(pl.element().filter(pl.element().is_in(kept))) for edge in EDGES
    )
    return Taxonomy(
        name=f"{taxonomy.name}-collapsed",
        classes=classes,
        mapping=mapping.drop("new", "moved", "beside"),
        path=None,
    )


def collapse_to_parent(
    data: pl.DataFrame | DetDataset, taxonomy: Taxonomy, keep: int | Iterable[str | int]
) -> pl.DataFrame | DetDataset:
    """Collapse classes onto kept ancestors (see :func:`collapse_map`).

    An ``objects`` frame in unified labels gets its ``label`` replaced. A
    :class:`DetDataset` must still be in its sources' label spaces (unmapped):
    it is mapped through :func:`collapse` so label spaces and image labels stay
    correct; returns the mapped dataset (the drop report is discarded).
    """
    if isinstance(data, DetDataset):
        if data.objects["label"].is_not_null().any():
            raise DetforgeError(
                "collapse_to_parent: the dataset is already mapped; collapse the taxonomy "
                "(detforge.taxonomy.collapse) and map the source-space dataset with it"
            )
        from detforge.taxonomy.apply import apply

        return apply(data, collapse(taxonomy, keep))[0]
    target = collapse_map(taxonomy, keep)
    return data.with_columns(
        pl.col("label").replace_strict(target, default=None, return_dtype=pl.Int32)
    )
