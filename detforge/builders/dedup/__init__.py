"""Image and box deduplication (exact + perceptual hashes, multi-index hashing search).

``dedup(dataset, config)`` is the build stage; ``hash_images`` hashes files
(cached per path, size and mtime; the per-file pHash is ``phash.phash_pixels``);
``near_pairs`` is the sub-quadratic Hamming-radius search that decontamination reuses.
"""

from detforge.builders.dedup.config import DedupConfig, DedupError
from detforge.builders.dedup.hashing import attach_hashes, hash_images
from detforge.builders.dedup.mih import near_pairs
from detforge.builders.dedup.stage import REPORT, dedup

__all__ = [
    "REPORT",
    "DedupConfig",
    "DedupError",
    "attach_hashes",
    "dedup",
    "hash_images",
    "near_pairs",
]
