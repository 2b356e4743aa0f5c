"""Settings of the dedup and decontamination stages, and the source-priority order."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from detforge.errors import DetforgeError


class DedupError(DetforgeError):
    """The dataset cannot be deduplicated as asked (e.g. a source without an image root)."""


@dataclass(frozen=True)
class DedupConfig:
    """How duplicates are found and resolved.

    ``phash_distance`` is the Hamming radius for near duplicates (a negative
    value turns near matching off, leaving exact matching only); ``exact``
    matches identical file bytes (SHA-256). ``framing_tolerance`` is the
    relative aspect-ratio difference under which two copies count as the same
    framing (a resize or re-encode), so boxes carry over. ``box_iou`` merges
    same-label boxes of different sources on one image. ``priority`` lists
    sources best first; unlisted sources come after, alphabetically.
    """

    exact: bool = True
    phash_distance: int = 6
    framing_tolerance: float = 0.01
    box_iou: float = 0.7
    priority: tuple[str, ...] = ("objects365", "openimages", "lvis", "coco")

    @property
    def matches_images(self) -> bool:
        """Whether any image matching is on (else no image file needs reading)."""
        return self.exact or self.phash_distance >= 0

    def __post_init__(self) -> None:
        if self.phash_distance > 63:
            raise DedupError(f"dedup.phash_distance must be <= 63, got {self.phash_distance}")
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
