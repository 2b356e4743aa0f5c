"""What rules that never look at the image score on a probe set.

A probe item is only a measurement if no shortcut answers it. For each task this scores:

- caption-vs-foil rules (chance 0.5; a rule and its reverse are one shortcut, so the
  distance of either from 0.5 counts): the shorter sentence is true; the task's cue (the
  caption stating the lower label is true: the smaller count, the negative sentence, left or
  above, "smaller"); for noun foils, the sentence naming the class with more boxes is true;
  and two rules learned on the train split and scored on test: the sentence seen more often
  as a caption than as a foil, the label stated more often by captions;
- labelled-form rules learned on train and scored on test, against the majority-label rate
  of the test split: the image source alone → label, the text alone → label.

A rule that beats chance by more than :data:`MARGIN` flags the task.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from detforge.probes.facts import Facts
from detforge.probes.tasks import registry

MARGIN = 0.1


def _pairwise(caption: pl.Expr, foil: pl.Expr) -> pl.Expr:
    """1 where the caption's value is higher, ½ on a tie, else 0."""
    return pl.when(caption > foil).then(1.0).when(caption == foil).then(0.5).otherwise(0.0)


def _row(rule: str, form: str, scored_on: str, score: float | None, chance: float | None, n: int):
    if score is None or chance is None or n == 0:
        return {
            "rule": rule,
            "form": form,
            "on": scored_on,
            "score": None,
            "chance": chance,
            "n": 0,
        }
    over = (max(score, 1 - score) - chance) if form == "pair" else score - chance
    return {
        "rule": rule,
        "form": form,
        "on": scored_on,
        "score": round(score, 4),
        "chance": round(chance, 4),
        "over": round(over, 4),
        "n": n,
        "flag": over > MARGIN,
    }


def _mean(frame: pl.DataFrame, expr: pl.Expr) -> float | None:
    return frame.select(expr.mean()).item() if frame.height else None


def _learned_label(items: pl.DataFrame, key: list[str]) -> float | None:
    """Test accuracy of predicting, per ``key``, the train split's most frequent label
    (ties: the lowest label; an unseen key: the train majority)."""
    train, test = items.filter(pl.col("split") == "train"), items.filter(pl.col("split") == "test")
    if not (train.height and test.height):
        return None
    overall = train.group_by("label").len().sort(["len", "label"], descending=[True, False])
    majority = overall["label"][0]
    per_key = (
        train.group_by([*key, "label"])
        .len()
        .sort(["len", "label"], descending=[True, False])
        .group_by(key, maintain_order=True)
        .first()
        .select(*key, predicted="label")
    )
    predicted = test.join(per_key, on=key, how="left").with_columns(
        pl.col("predicted").fill_null(majority)
    )
    return _mean(predicted, (pl.col("predicted") == pl.col("label")).cast(pl.Float64))


def _learned_prior(items: pl.DataFrame, value: str, foil_value: str) -> float | None:
    """Test pairwise accuracy of "the caption whose ``value`` was more often a caption (and
    less often a foil) in train is true"."""
    train, test = items.filter(pl.col("split") == "train"), items.filter(pl.col("split") == "test")
    test = test.filter(pl.col(value).is_not_null() & pl.col(foil_value).is_not_null())
    if not (train.height and test.height):
        return None
    votes = (
        pl.concat(
            [
                train.select(v=pl.col(value), w=pl.lit(1)),
                train.select(v=pl.col(foil_value), w=pl.lit(-1)),
            ]
        )
        .group_by("v")
        .agg(pl.col("w").sum())
    )
    scored = test.join(votes.rename({"v": value, "w": "wc"}), on=value, how="left").join(
        votes.rename({"v": foil_value, "w": "wf"}), on=foil_value, how="left"
    )
    return _mean(scored, _pairwise(pl.col("wc").fill_null(0), pl.col("wf").fill_null(0)))


def score_task(items: pl.DataFrame, facts: Facts | None, task: str) -> list[dict[str, Any]]:
    """Every rule's score on one task's items (all splits)."""
    spec = registry()[task]
    test = items.filter(pl.col("split") == "test")
    counts = test.group_by("label").len()["len"]
    chance = float(counts.max() / counts.sum()) if test.height else None
    n_all, n_test = items.height, test.height
    rows = [
        _row(
            "the shorter sentence is true",
            "pair",
            "all",
            _mean(
                items, _pairwise(pl.col("foil").str.len_chars(), pl.col("caption").str.len_chars())
            ),
            0.5,
            n_all,
        )
    ]
    stated = items.filter(pl.col("foil_label").is_not_null())
    if spec.cue and stated.height:
        cue = _mean(stated, _pairwise(-pl.col("label"), -pl.col("foil_label")))
        rows.append(_row(spec.cue, "pair", "all", cue, 0.5, stated.height))
    if "foil_class" in items.columns and items["foil_class"].is_not_null().any() and facts:
        boxes = facts.frequency.select(pl.col("id").cast(pl.Int32), "boxes")
        frame = items.join(boxes.rename({"id": "class_b", "boxes": "fb"}), on="class_b", how="left")
        frame = frame.join(
            boxes.rename({"id": "foil_class", "boxes": "ff"}), on="foil_class", how="left"
        )
        frequent = _mean(frame, _pairwise(pl.col("fb").fill_null(0), pl.col("ff").fill_null(0)))
        rows.append(_row("the class with more boxes is true", "pair", "all", frequent, 0.5, n_all))
    rows.append(
        _row(
            "sentence prior (learned on train)",
            "pair",
            "test",
            _learned_prior(items, "caption", "foil"),
            0.5,
            n_test,
        )
    )
    if stated.height:
        prior = _learned_prior(stated, "label", "foil_label")
        n = stated.filter(pl.col("split") == "test").height
        rows.append(_row("label prior (learned on train)", "pair", "test", prior, 0.5, n))
    for rule, key in (("source → label", ["source"]), ("text → label", ["text"])):
        rows.append(
            _row(
                f"{rule} (learned on train)",
                "label",
                "test",
                _learned_label(items, key),
                chance,
                n_test,
            )
        )
    return rows


def score(items: pl.DataFrame, facts: Facts | None = None) -> dict[str, Any]:
    """``{task: {"rules": [...], "flagged": [rule, ...]}}`` for every task in ``items``."""
    result = {}
    for task in registry():
        part = items.filter(pl.col("task") == task)
        if part.is_empty():
            continue
        rows = score_task(part, facts, task)
        result[task] = {"rules": rows, "flagged": [r["rule"] for r in rows if r.get("flag")]}
    return result


def warnings(scores: dict[str, Any]) -> list[str]:
    """One line per task a rule answers better than chance by more than :data:`MARGIN`."""
    lines = []
    for task, entry in scores.items():
        for row in entry["rules"]:
            if row.get("flag"):
                lines.append(
                    f"{task}: '{row['rule']}' scores {row['score']:.3f} against chance "
                    f"{row['chance']:.3f} (n={row['n']}, {row['on']} items): text or source "
                    "alone answers part of this task"
                )
    return lines


def markdown(scores: dict[str, Any]) -> str:
    """A table of every rule's score per task."""
    lines = [
        "| task | rule | form | scored on | n | score | chance | flag |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, entry in scores.items():
        for row in entry["rules"]:
            value = "–" if row["score"] is None else f"{row['score']:.3f}"
            chance = "–" if row["chance"] is None else f"{row['chance']:.3f}"
            lines.append(
                f"| {task} | {row['rule']} | {row['form']} | {row['on']} | {row['n']} | {value} "
                f"| {chance} | {'**yes**' if row.get('flag') else ''} |"
            )
    return "\n".join(lines)
