"""What a build owns in OUT: the folders it writes, its leftovers, its inputs (which must
stay apart from OUT), and the built-in sample it writes there itself.

The ownership rules themselves (manifests, refusing foreign files and overlapping inputs)
live in :mod:`detforge.outputs`; the lock in :mod:`detforge.lock`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from detforge.atomic import atomic_path

if TYPE_CHECKING:
    from detforge.builders.pipeline import SourceRoots

#: the folders a build writes in OUT (besides the hidden .stages/ and .cache/)
OUTPUT_FOLDERS = ("report", "tables", "coco", "hub")
# what a killed run of this build leaves: ``.<name>.<random>.tmp`` (nested ones add a dot)
# and ``.<name>.old-<pid>`` of the folders it writes; nothing else in OUT is touched
_LEFTOVER = re.compile(
    r"^\.+(?:{})\..*(?:\.tmp|\.old-\d+)$".format("|".join([*OUTPUT_FOLDERS, "sample"]))
)


def clean_temporaries(out: Path) -> None:
    """Remove what a killed run of this build left half-written (its own temporaries only;
    the caller holds OUT's lock, so no other build is writing them)."""
    leftovers = [p for p in out.glob(".*") if _LEFTOVER.match(p.name)]
    if (out / ".stages").is_dir():
        leftovers += [p for p in (out / ".stages").glob(".*") if p.name.endswith(".tmp")]
        leftovers += [p for p in (out / ".stages").glob(".*") if ".old-" in p.name]
    for leftover in leftovers:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def input_paths(roots: dict[str, SourceRoots], holdouts: dict[str, SourceRoots]) -> dict[str, Path]:
    """The build's inputs, described for the error that refuses an --out among them."""
    inputs: dict[str, Path] = {}
    for kind, where in (("source", roots), ("holdout", holdouts)):
        for name, place in where.items():
            inputs[f"the {kind} {name}"] = place.root
            if place.images_root is not None:
                inputs[f"the images of {kind} {name}"] = place.images_root
    return inputs


def sample_root(out: Path, note: Callable[[str], None] | None) -> Path:
    """``OUT/.sample``: the built-in sample, written whole then renamed on first use."""
    from detforge.sources.sample import write_sample

    root = out / ".sample"
    if not root.is_dir():
        if note:
            note(f"no --root: building from the built-in sample in {root}")
        with atomic_path(root) as tmp:
            write_sample(tmp, seed=0)
    return root
