"""The probe task registry: one module per task, found by name.

A task module in this package defines ``TASK = Task(...)``: its labels, the maker of its
candidate items, the balance key, its caption templates (``write``) and a version. Adding a
task is adding one module here; `probe generate`, `probe run`, the report and the shortcut
checks pick it up from :func:`registry`. See docs/probe.md, "Adding a task".
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import pkgutil
from collections.abc import Callable

import polars as pl

from detforge.probes.facts import Facts, Settings


@dataclasses.dataclass(frozen=True)
class Task:
    """One probe task.

    ``make(facts, settings)`` returns candidate items: ``image_id``, ``class_a`` (and
    ``class_b``, ``flip`` where the task has them), ``label`` (an index into ``labels``),
    ``object_ids``, ``evidence``, ``verified``. Candidates are then balanced: within each
    ``balance_key`` + image source + probe split, every kept label has the same number of
    items, so neither the classes named nor the source predicts the label. ``unit`` columns
    keep items together while balancing (the two mirror twins of a left/right item).
    ``write(items, facts, settings)`` adds the captions after balancing: ``caption`` (true),
    ``foil`` (false), ``text`` (the linear-probe form) and ``foil_label`` (the label the foil
    states, null where a foil states no label). ``order`` sorts tasks for display.
    """

    name: str
    labels: tuple[str, ...]
    version: int
    summary: str
    make: Callable[[Facts, Settings], pl.DataFrame]
    write: Callable[[pl.DataFrame, Facts, Settings], pl.DataFrame]
    balance_key: tuple[str, ...]
    unit: tuple[str, ...] = ()
    cue: str = ""  # the rule "the caption stating the lower label is true", in words
    order: int = 100

    @property
    def code(self) -> int:
        """A stable small integer of the task's name (part of every item id)."""
        return int.from_bytes(hashlib.blake2b(self.name.encode(), digest_size=4).digest(), "big")


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, Task]:
    """Every task of this package, by name, in display order."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue
        task = getattr(importlib.import_module(f"{__name__}.{module.name}"), "TASK", None)
        if isinstance(task, Task):
            found.append(task)
    return {t.name: t for t in sorted(found, key=lambda t: (t.order, t.name))}


def names() -> tuple[str, ...]:
    """Task names in display order."""
    return tuple(registry())


def labels(task: str) -> tuple[str, ...]:
    """The label names of ``task`` (an item's ``label`` indexes them)."""
    return registry()[task].labels
