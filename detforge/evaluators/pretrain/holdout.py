"""Is the benchmark's downstream val set one the build was decontaminated against?

A pre-training set that holds copies of the downstream val images inflates the gain the
benchmark reports. A build records each holdout eval set it dropped training copies of
(``dataset.json`` → ``meta.decontaminated_against``: annotation path and SHA-256), and
its own non-train splits always count (their COCO exports ``OUT/coco/<split>.json``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from detforge.errors import DetforgeError

#: the flag that runs the benchmark on a val set the build was not decontaminated against
ALLOW_FLAG = "--allow-contaminated-val"


def file_sha256(path: Path) -> str:
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def decontamination_sets(build_dir: Path) -> dict[str, Path] | None:
    """``{name: annotation file}`` the build's training set was decontaminated against
    (None for a build that does not record them)."""
    info = Path(build_dir) / "tables" / "dataset.json"
    meta = json.loads(info.read_text()).get("meta", {}) if info.is_file() else {}
    recorded = meta.get("decontaminated_against")
    if recorded is None:
        return None
    sets = {name: Path(entry["annotations"]) for name, entry in recorded.items()}
    for split in sorted((Path(build_dir) / "coco").glob("*.json")):
        if split.stem not in ("train", "roots"):  # roots.json: the export's image roots
            sets[f"split:{split.stem}"] = split
    return sets


def _same_file(given: Path, recorded: Path, digest: str | None) -> bool:
    """The same file by path, or by content when the build recorded its SHA-256."""
    if given.resolve() == recorded.resolve():
        return True
    return digest is not None and given.is_file() and file_sha256(given) == digest


def contamination_warning(build_dir: Path, downstream_val: Path) -> str | None:
    """None when ``downstream_val`` is among the build's decontamination sets (same path
    or same content), else the sentence saying why the gain may be inflated."""
    sets = decontamination_sets(build_dir)
    if sets is None:
        return (
            f"the build {build_dir} does not record which eval sets its training images were "
            f"decontaminated against, so --downstream-val {downstream_val} may share images "
            "with the pre-training set (the gain may be inflated)"
        )
    info = json.loads((Path(build_dir) / "tables" / "dataset.json").read_text())
    digests = {
        name: entry.get("sha256")
        for name, entry in info["meta"].get("decontaminated_against", {}).items()
    }
    val = Path(downstream_val)
    if any(_same_file(val, path, digests.get(name)) for name, path in sets.items()):
        return None
    listed = ", ".join(f"{name} ({path})" for name, path in sets.items()) or "none"
    return (
        f"--downstream-val {val} is not among the build's decontamination sets ({listed}): "
        "its images may also be in the pre-training set (the gain may be inflated)"
    )


def check_downstream_val(build_dir: Path, downstream_val: Path, allow: bool) -> str | None:
    """Refuse a downstream val set the build was not decontaminated against, unless
    ``allow``; returns the warning to carry into the summary (None when clean)."""
    warning = contamination_warning(build_dir, downstream_val)
    if warning and not allow:
        raise DetforgeError(
            f"{warning}; rebuild with --holdout NAME={downstream_val}, or pass {ALLOW_FLAG} "
            "to run anyway (the summary says so)"
        )
    return warning
