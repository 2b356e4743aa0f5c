"""Settings of the dedup and decontamination stages, and the source-priority order."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from detforge.errors import DetforgeError


class DedupError(DetforgeError):
    """The dataset cannot be deduplicated as asked (e.g. a source without an image root)."""


#: which copy of a duplicated photo is kept, best first (the shipped recipe uses it too)
DEFAULT_PRIORITY = ("objects365", "lvis", "openimages", "coco")
#: pHash radius of the near-duplicate search and gradient-hash distance that confirms a
#: candidate; measured in ``benchmarks/dedup.py`` (see docs/build-dataset.md)
DEFAULT_RADIUS = 10
DEFAULT_CONFIRM = 26


@dataclass(frozen=True)
class DedupConfig:
    """How duplicates are found and resolved.

    ``phash_distance`` is the Hamming radius of the pHash search for near
    duplicates (a negative value turns near matching off, leaving exact matching
    only); a candidate counts only when the images' 128-bit gradient hashes are
    within ``dhash_distance`` bits too. ``exact`` matches identical file bytes
    (SHA-256). ``framing_tolerance`` is the relative aspect-ratio difference under
    which two copies count as the same framing (a resize or re-encode), so boxes
    carry over. ``box_iou`` merges same-label boxes drawn on different copies of
    one photo. ``priority`` lists sources best first (unlisted sources come after);
    the kept copy of a group is the first by source priority, then most pixels,
    then largest file, then image id.
    """

    exact: bool = True
    phash_distance: int = DEFAULT_RADIUS
    dhash_distance: int = DEFAULT_CONFIRM
    framing_tolerance: float = 0.01
    box_iou: float = 0.7
    priority: tuple[str, ...] = DEFAULT_PRIORITY

    @property
    def matches_images(self) -> bool:
        """Whether any image matching is on (else no image file needs reading)."""
        return self.exact or self.phash_distance >= 0

    def __post_init__(self) -> None:
        if self.phash_distance > 63:
            raise DedupError(f"dedup.phash_distance must be <= 63, got {self.phash_distance}")
        if not 0 <= self.dhash_distance <= 128:
            raise DedupError(f"dedup.dhash_distance must be in 0..128, got {self.dhash_distance}")
        if not 0 < self.box_iou <= 1:
            raise DedupError(f"dedup.box_iou must be in (0, 1], got {self.box_iou}")
        if self.framing_tolerance < 0:
            raise DedupError(f"dedup.framing_tolerance must be >= 0, got {self.framing_tolerance}")


def priority_rank(config: DedupConfig, source: str = "source") -> pl.Expr:
    """Rank of ``source`` in the priority list (0 = best); unlisted sources rank last."""
    ranks = {name: i for i, name in enumerate(config.priority)}
    return (
        pl.col(source)
        .replace_strict(ranks, default=len(ranks), return_dtype=pl.Int32)
        .alias("rank")
    )


def preference(config: DedupConfig) -> list[pl.Expr]:
    """Sort keys of the kept-copy order (best first) over a hashed images frame:
    source priority, most pixels, largest file, image id."""
    pixels = pl.coalesce("file_width", "width").cast(pl.Int64) * pl.coalesce(
        "file_height", "height"
    ).cast(pl.Int64)
    return [
        priority_rank(config),
        -pixels.fill_null(0),
        -pl.col("file_size").fill_null(0),
        pl.col("image_id"),
    ]
