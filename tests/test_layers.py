"""The floors of detforge (DESIGN.md): imports run downward only.

    cli
    builders · exports · evaluators · probes · inspection
    taxonomy
    sources
    schema, dataset and the other single modules at detforge's top

Siblings on one floor talk through files and DetDataset; the two sibling edges below are
the only ones: the build pipeline runs the exports, and browse reads evaluation results.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "detforge"
FLOOR = {
    "cli": 4,
    "builders": 3,
    "exports": 3,
    "evaluators": 3,
    "probes": 3,
    "inspection": 3,
    "taxonomy": 2,
    "sources": 1,
}
SIBLING_EDGES = {("builders", "exports"), ("inspection", "evaluators")}


def _part(module: str) -> str:
    """The first name under ``detforge`` (a package or a top-level module)."""
    return module.split(".")[1] if "." in module else "detforge"


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "detforge":
                found += [(node.lineno, f"detforge.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] == "detforge"]


def _allowed(source: str, target: str) -> bool:
    if source == target or target == "detforge":
        return True
    low, high = FLOOR.get(target, 0), FLOOR.get(source, 0)
    # the single modules at the bottom (schema, dataset, errors, ...) build on each other
    return low < high or low == high == 0 or (source, target) in SIBLING_EDGES


def test_imports_run_downward_only() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for line, module in _imports(path):
            target = _part(module)
            if not _allowed(source, target):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not upward, "\n".join(upward)


def test_the_rule_catches_an_upward_import() -> None:
    assert not _allowed("sources", "taxonomy")
    assert not _allowed("taxonomy", "builders")
    assert _allowed("dataset", "schema") and not _allowed("schema", "sources")
    assert not _allowed("evaluators", "probes")
    assert not _allowed("exports", "builders")
    assert _allowed("builders", "exports") and _allowed("cli", "builders")
