"""Detections, ``detforge evaluate`` matches and probe-run failures as frames to browse.

Everything is checked against the samples being browsed: predictions or
matches for images the dataset does not hold (another dataset's) raise one
clear error instead of showing an empty view.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from detforge.dataset import DetDataset
from detforge.errors import DetforgeError, InputError

#: the ``detforge evaluate`` protocol whose ignore flags are shown (FiftyOne scores COCO itself)
FEDERATED_PROTOCOL = "federated"
PROBE_COLUMNS = ("item_id", "task", "image_id", "object_ids", "caption", "foil", "correct")


def prediction_frame(
    path: Path,
    dataset: DetDataset,
    images: pl.DataFrame,
    split: str | None,
    category_ids: str | None = None,
) -> pl.DataFrame:
    """``image_id, pred_index, label (name), confidence, box`` (relative ``[x, y, w, h]``).

    ``images``: the browsed images (``image_id, width, height``). Reads COCO results JSON
    or parquet through :func:`detforge.evaluators.load_predictions`, which names every
    bad record (an image id the split does not hold included). ``category_ids``: how the
    file numbers classes (``coco`` / ``unified``; None: what its ``.meta.json`` declares,
    else the build's COCO export ids).
    """
    from detforge.evaluators import declared_scheme, load_predictions

    fingerprint = dataset.meta.get("taxonomy_fingerprint")
    scheme = category_ids or declared_scheme(path, fingerprint) or "coco"
    where = split or "(all splits)"
    dets = load_predictions(
        path, images, dataset.categories["id"], split=where, category_ids=scheme
    )
    names = dataset.categories.select(pl.col("id").alias("label"), pl.col("name"))
    size = images.select("image_id", W=pl.col("width").cast(pl.Float64), H="height")
    return (
        dets.join(size, on="image_id")
        .join(names, on="label", how="left")
        .select(
            "image_id",
            "pred_index",
            pl.col("name").alias("label"),
            pl.col("score").alias("confidence"),
            pl.concat_list(
                pl.col("x") / pl.col("W"),
                pl.col("y") / pl.col("H"),
                pl.col("w") / pl.col("W"),
                pl.col("h") / pl.col("H"),
            ).alias("box"),
        )
        .sort("image_id", "pred_index")
    )


def read_eval_dir(eval_dir: Path) -> tuple[dict, pl.DataFrame]:
    """``eval.json`` and ``matches.parquet`` of a ``detforge evaluate`` output folder."""
    eval_dir = Path(eval_dir)
    info_file, matches_file = eval_dir / "eval.json", eval_dir / "matches.parquet"
    for file in (info_file, matches_file):
        if not file.is_file():
            raise InputError(file, None, None, "not found (is this a `detforge evaluate` folder?)")
    from detforge.evaluators.results import PAIR_KEY, pair_digest

    text = info_file.read_bytes()
    try:
        info = json.loads(text)
    except ValueError as error:
        raise InputError(info_file, None, None, f"malformed JSON: {error}") from None
    paired = pl.read_parquet_metadata(matches_file).get(PAIR_KEY)
    if paired is not None and paired != pair_digest(text):
        raise InputError(
            matches_file,
            None,
            None,
            "written by another `detforge evaluate` run than eval.json beside it; rerun it",
        )
    matches = pl.read_parquet(matches_file)
    need = {"image_id", "pred_index", "object_id", "status"}
    missing = sorted(need - set(matches.columns))
    if missing:
        raise InputError(matches_file, None, ", ".join(missing), "missing column(s)")
    return info, matches


def find_eval_predictions(eval_dir: Path, info: dict) -> Path:
    """The predictions file an evaluation scored: where ``eval.json`` says it was, else a
    file of its name beside the evaluation (or in its parent folder, or here)."""
    recorded = info.get("predictions_path")
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    name = info.get("predictions")
    if name:
        for folder in (Path(eval_dir), Path(eval_dir).parent, Path.cwd()):
            if (folder / name).is_file():
                return folder / name
    raise DetforgeError(
        f"{eval_dir}: the evaluated predictions file {name!r} is not beside it; "
        "pass it with --predictions PATH"
    )


def federated_statuses(
    matches: pl.DataFrame, image_ids: pl.Series, where: Path
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-detection and per-box federated statuses: ``(image_id, pred_index, fed,
    fed_reason)`` and ``(image_id, object_id, fed, fed_reason)`` (fed = tp/fp/fn/ignored).

    Uses the federated protocol's rows (the only one whose ignore flags differ from
    FiftyOne's own COCO evaluation), or the only protocol present.
    """
    if "protocol" in matches.columns:
        protocols = matches["protocol"].unique().sort().to_list()
        chosen = FEDERATED_PROTOCOL if FEDERATED_PROTOCOL in protocols else protocols[0]
        matches = matches.filter(pl.col("protocol") == chosen)
    stranger = matches.filter(~pl.col("image_id").is_in(image_ids.implode()))
    if stranger.height:
        raise InputError(
            where / "matches.parquet",
            None,
            "image_id",
            f"{stranger.height} row(s) name images the browsed dataset does not hold "
            f"(e.g. {stranger['image_id'][0]}): an evaluation of another dataset or split?",
        )
    rows = matches.select(
        "image_id",
        "pred_index",
        "object_id",
        pl.col("status").str.to_lowercase().alias("fed"),
        (pl.col("reason") if "reason" in matches.columns else pl.lit(None, pl.String)).alias(
            "fed_reason"
        ),
    )
    per_det = rows.filter(pl.col("pred_index").is_not_null()).drop("object_id")
    per_box = rows.filter(pl.col("pred_index").is_null()).drop("pred_index")
    return per_det, per_box


def probe_failures(run_dir: Path, dataset: DetDataset) -> pl.DataFrame:
    """The failed zero-shot items of a probe run (``predictions.parquet``, ``correct`` false).

    Image ids the dataset does not hold raise (a run on another dataset).
    """
    file = Path(run_dir) / "predictions.parquet"
    if not file.is_file():
        raise InputError(file, None, None, "not found (is this a `detforge probe` run folder?)")
    items = pl.read_parquet(file)
    missing = [c for c in PROBE_COLUMNS if c not in items.columns]
    if missing:
        raise InputError(file, None, ", ".join(missing), "missing column(s)")
    stranger = items.filter(~pl.col("image_id").is_in(dataset.images["image_id"].implode()))
    if stranger.height:
        raise InputError(
            file,
            f"item_id {stranger['item_id'][0]}",
            "image_id",
            f"{stranger.height} item(s) name images the dataset does not hold "
            f"(e.g. {stranger['image_id'][0]}): a probe run on another dataset?",
        )
    optional = {
        "model": pl.String,
        "scorer": pl.String,
        "score_caption": pl.Float64,
        "score_foil": pl.Float64,
        "blind_score": pl.Float64,
        "flip": pl.Boolean,
    }
    items = items.with_columns(
        pl.lit(None, dtype).alias(c) for c, dtype in optional.items() if c not in items.columns
    )
    return (
        items.filter(pl.col("correct").not_())
        .select(*PROBE_COLUMNS[:-1], *optional)
        .sort("task", "item_id", "model")
    )
