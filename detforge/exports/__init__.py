"""What a built dataset is written as, and how it is published.

- :mod:`.coco`: COCO instances JSON per split, with LVIS-style federated fields;
- :mod:`.hub`: the Hugging Face Hub layout (parquet shards with ``datasets`` features, card);
- :mod:`.hub_checks`: the checks a Hub layout passes before upload;
- :mod:`.hub_upload` (with :mod:`.hub_http`): the upload itself, with timeouts and resume.

Each takes a :class:`~detforge.dataset.DetDataset` or a written folder; none knows the build
pipeline that calls it.
"""
