"""Image and box deduplication (exact + perceptual hashes, exact multi-index search).

``dedup(dataset, config)`` is the build stage; ``hash_images`` hashes files (SHA-256,
pHash and the confirming gradient hash, cached per path, size and mtime; see
:mod:`.phash`); ``near_pairs`` is the exact Hamming-radius search (:mod:`.mih`) that
decontamination and ``detforge dedup`` (:mod:`.folders`) reuse; :mod:`.images` groups
copies without chains.
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
