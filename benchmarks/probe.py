"""Feature-extraction speed of `detforge probe run` with a tiny CLIP on CPU.

Compares, on the same generated probe set and the same work (every item's caption, foil,
mismatched-image pair and labelled text; scores plus per-layer features):
  - a per-item loop: one forward pass per (item, text), images decoded per item;
  - the batched extractor (distinct pairs, sorted by image, batched), cold cache;
  - the same extractor on a warm cache (a rerun).

    python benchmarks/probe.py [--images 200] [--per-label 20] [--batch-size 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--per-label", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import polars as pl
    import torch

    from detforge.probes.adapters import load_adapter
    from detforge.probes.controls import mismatched_keys
    from detforge.probes.features import ImageLoader, extract, image_key
    from detforge.probes.generate import generate
    from detforge.probes.synthetic import shapes_dataset, tiny_model

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="probe-bench-"))
    dataset = shapes_dataset(work / "images", images=args.images, size=64)
    probes = generate(dataset, seed=0, max_per_label=args.per_label)
    adapter = load_adapter(str(tiny_model("clip", work / "clip")), device="cpu")
    layers = list(range(adapter.n_layers))
    items = probes.items.with_columns(key=image_key(pl.col("image_id"), pl.col("flip")))
    items = items.with_columns(mismatched=mismatched_keys(items)).filter(
        pl.col("mismatched").is_not_null()
    )
    roles = [
        ("key", "caption", False),
        ("key", "foil", False),
        ("mismatched", "caption", False),
        ("mismatched", "foil", False),
        ("key", "text", True),
        ("mismatched", "text", True),
    ]
    pairs = (
        pl.concat(items.select(key=k, text=t, features=pl.lit(f)) for k, t, f in roles)
        .group_by("key", "text")
        .agg(pl.col("features").any())
    )

    loader = ImageLoader(probes.roots, items)
    start = time.perf_counter()
    with torch.inference_mode():
        for row in items.iter_rows(named=True):
            for key_col, text_col, features in roles:
                key = row[key_col]
                adapter.forward([key], [loader(key)], [row[text_col]], layers, features)
    loop = time.perf_counter() - start

    cache = work / "cache"
    timings = {}
    for run in ("cold", "warm"):
        start = time.perf_counter()
        extract(
            lambda: adapter,
            pairs,
            ImageLoader(probes.roots, items),
            layers=layers,
            pooling=adapter.pooling,
            batch_size=args.batch_size,
            cache=cache,
        )
        timings[run] = time.perf_counter() - start

    n = items.height
    figures = {
        "items": n,
        "distinct_pairs": pairs.height,
        "layers": len(layers),
        "threads": args.threads,
        "per_item_loop_items_per_s": n / loop,
        "batched_items_per_s": n / timings["cold"],
        "cached_items_per_s": n / timings["warm"],
        "speedup_batched": loop / timings["cold"],
        "speedup_cached": loop / timings["warm"],
    }
    for name, value in figures.items():
        print(f"{name:>28}: {value:,.1f}" if isinstance(value, float) else f"{name:>28}: {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
