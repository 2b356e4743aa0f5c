"""Find the sources under a sample-like root (``ROOT/objects365``, ``ROOT/openimages``, ...)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from detforge.dataset import DetDataset
from detforge.errors import DetforgeError
from detforge.sources import READERS, lvis, objects365, openimages


@dataclasses.dataclass(frozen=True)
class SourceSplit:
    """One readable (source, split) under a root, with the arguments its reader needs."""

    source: str
    split: str
    root: Path
    images_root: Path | None = None

    def read(self, *, check_files: bool = True) -> DetDataset:
        reader = READERS[self.source]
        return reader.read(
            self.root, self.split, images_root=self.images_root, check_files=check_files
        )


def _has(path: Path) -> bool:
    return path.is_file()


def discover(root: Path, sources: list[str] | None = None) -> list[SourceSplit]:
    """Every (source, split) present under ``root`` in the sample's layout (docs/sources.md)."""
    root = Path(root)
    unknown = sorted(set(sources or []) - set(READERS))
    if unknown:
        raise DetforgeError(f"unknown source(s) {', '.join(unknown)} (known: {', '.join(READERS)})")
    found: list[SourceSplit] = []
    for split in ("train", "val"):
        o365 = root / "objects365"
        if any(_has(o365 / files[split]) for files in objects365.FILES.values()):
            found.append(SourceSplit("objects365", split, o365))
        oi = root / "openimages"
        prefix = openimages.SPLIT_DIRS[split]
        if any(
            _has(oi / name.format(s=prefix))
            for names in openimages.BOX_FILES.values()
            for name in names
        ):
            found.append(SourceSplit("openimages", split, oi))
        if any(_has(root / "lvis" / files[split]) for files in lvis.FILES.values()):
            found.append(
                SourceSplit("lvis", split, root / "lvis", lvis.default_images_root(root / "lvis"))
            )
        if _has(root / "coco" / "annotations" / f"instances_{split}2017.json"):
            found.append(SourceSplit("coco", split, root / "coco"))
    return [s for s in found if sources is None or s.source in sources]


def read_all(
    root: Path, sources: list[str] | None = None, *, check_files: bool = True
) -> DetDataset:
    """Every (source, split) under ``root`` in one DetDataset (each source's class list and
    label space once, although every split repeats them)."""
    found = discover(root, sources)
    if not found:
        raise DetforgeError(f"{root}: no source found (see docs/sources.md for the layout)")
    merged = DetDataset.concat([item.read(check_files=check_files) for item in found])
    return merged.replace(
        source_categories=merged.source_categories.unique(
            ["source", "source_label"], keep="first", maintain_order=True
        ),
        label_spaces=merged.label_spaces.unique(keep="first", maintain_order=True),
    )
