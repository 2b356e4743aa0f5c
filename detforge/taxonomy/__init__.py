"""The unified label space: classes in a DAG and the mapping of every source class onto them.

Shipped taxonomies live in ``detforge/taxonomy/data/<name>/`` (``classes.csv``,
``mapping.csv``); :func:`load` takes a shipped name or a directory.
"""

from detforge.taxonomy.apply import apply
from detforge.taxonomy.diff import TaxonomyDiff, diff
from detforge.taxonomy.hierarchy import (
    ancestors,
    collapse,
    collapse_to_parent,
    descendants,
    expand_to_ancestors,
    find_cycle,
)
from detforge.taxonomy.io import available, fingerprint, load, save
from detforge.taxonomy.model import Taxonomy, TaxonomyError, UnifiedClass
from detforge.taxonomy.suggest import measure, suggest
from detforge.taxonomy.validate import Report, coverage, validate

__all__ = [
    "Report",
    "Taxonomy",
    "TaxonomyDiff",
    "TaxonomyError",
    "UnifiedClass",
    "ancestors",
    "apply",
    "available",
    "collapse",
    "collapse_to_parent",
    "coverage",
    "descendants",
    "diff",
    "expand_to_ancestors",
    "find_cycle",
    "fingerprint",
    "load",
    "measure",
    "save",
    "suggest",
    "validate",
]
