"""Tiny random-init CLIP, BLIP (ITM), ViLT and LLaVA-style models, saved and loaded from local
dirs, run end to end through the CLI; bad inputs give one clear line."""

from __future__ import annotations

import json
import sys

import polars as pl
import pytest
from typer.testing import CliRunner

from detforge.cli import app, main
from detforge.errors import DetforgeError


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models


def _invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_four_model_kinds_end_to_end(tiny, shapes, tmp_path):
    _, out, _ = shapes
    generated = _invoke(
        "probe", "generate", out / "tables", "--out", tmp_path / "probes", "--max-per-label", "2"
    )
    assert generated.exit_code == 0, generated.output
    args = [
        "probe",
        "run",
        "--probes",
        tmp_path / "probes",
        "--out",
        tmp_path / "run",
        "--layers",
        "0,-1",
        "--bootstrap",
        "100",
        "--device",
        "auto",
        "--data",
        out,
        "--tasks",
        "existence,left_right",
        "--batch-size",
        "64",
    ]
    kinds = ("clip", "blip", "vilt", "llava")
    for kind in kinds:
        args += ["--model", tiny[kind]]
    result = _invoke(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["schema"] == "detforge-probe-results" and results["version"] == 2
    assert results["settings"]["probe_seeds"] == [0, 1, 2]
    # tiny models say their weights are random: the run says its numbers are not a model's
    assert [w.split(": ")[0] for w in results["warnings"]] == [str(tiny[k]) for k in kinds]
    assert [(e["model"], e["init"]) for e in results["models"]] == [
        (str(tiny[k]), init) for k in kinds for init in ("pretrained", "random")
    ]
    scorers = {e["model"]: set(e["tasks"]["existence"]["zeroshot"]) for e in results["models"]}
    assert scorers == {
        str(tiny["clip"]): {"cosine"},
        str(tiny["blip"]): {"itm"},
        str(tiny["vilt"]): {"itm"},
        str(tiny["llava"]): {"mean_loglik", "sum_loglik", "yesno"},
    }
    own = {e["model"]: (e["kind"], e["pooling"], e["layers"]) for e in results["models"]}
    assert own[str(tiny["clip"])] == ("dual", "cls", [0, 3])
    assert own[str(tiny["vilt"])] == ("vilt", "cls", [0, 2])
    assert own[str(tiny["llava"])] == ("generative", "last", [0, 2])
    for entry in results["models"]:
        pretrained = entry["init"] == "pretrained"
        for task, m in entry["tasks"].items():
            assert [r["layer"] for r in m["linear"]] == entry["layers"], task
            assert 0 <= m["zeroshot"][next(iter(m["zeroshot"]))]["acc"] <= 1
            assert ("text_tower" in m) == pretrained and ("image_only" in m) == pretrained
            for row in m["linear"]:
                assert len(row["seeds"]) == 3 and ("control" in row) == pretrained
                assert ("mismatched" in row) == pretrained
    assert results["blind"]["existence"]["linear"]["n"] > 0  # the real MiniLM ran
    wino = next(e for e in results["models"] if e["model"] == str(tiny["llava"]))
    assert set(wino["tasks"]["left_right"]["zeroshot"]["yesno"]["winoground"]) == {
        "text",
        "image",
        "group",
    }
    pairs = {(r["task"], r["model"]) for r in results["comparison"]}
    assert pairs == {(t, str(tiny[k])) for t in results["tasks"] for k in kinds[1:]}
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Paired comparison" in report and "all-MiniLM-L6-v2" in report
    preds = pl.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert preds["model"].n_unique() == 4 and preds["blind_score"].drop_nulls().len() > 0


def test_not_a_vlm_is_one_clear_line(tmp_path, probes_dir, monkeypatch, capsys):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(
            vocab_size=30,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
        )
    ).save_pretrained(tmp_path / "bert")
    argv = [
        "detforge",
        "probe",
        "run",
        "--model",
        str(tmp_path / "bert"),
        "--probes",
        str(probes_dir),
        "--out",
        str(tmp_path / "r"),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "model_type 'bert' is not a supported vision-language model" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unreachable_hub_id_and_bad_probe_sets(tmp_path, probes_dir, shapes, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = _invoke(
        "probe",
        "run",
        "--model",
        "someone/not-downloaded",
        "--probes",
        probes_dir,
        "--out",
        tmp_path / "r",
    )
    assert isinstance(result.exception, DetforgeError)
    assert "cannot be reached" in str(result.exception)
    # a probe set from another taxonomy
    dataset, _, _ = shapes
    other = dataset.replace(
        categories=dataset.categories.with_columns(name=pl.col("name").str.to_uppercase())
    )
    other.write(tmp_path / "other" / "tables")
    result = _invoke(
        "probe",
        "run",
        "--model",
        "x",
        "--probes",
        probes_dir,
        "--out",
        tmp_path / "r",
        "--data",
        tmp_path / "other",
    )
    assert "another taxonomy" in str(result.exception)
    # an empty task
    made = _invoke(
        "probe", "generate", tmp_path / "other", "--out", tmp_path / "only", "--tasks", "existence"
    )
    assert made.exit_code == 0, made.output
    result = _invoke(
        "probe",
        "run",
        "--model",
        "x",
        "--probes",
        tmp_path / "only",
        "--out",
        tmp_path / "r",
        "--tasks",
        "size",
    )
    assert "task 'size' has no items" in str(result.exception)
    result = _invoke(
        "probe", "run", "--model", "x", "--probes", tmp_path / "nothing", "--out", tmp_path / "r"
    )
    assert "not a probe set" in str(result.exception)
