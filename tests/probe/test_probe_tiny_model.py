"""`detforge probe tiny-model`: a tiny VLM written offline, loaded back like any local model,
and marked as random so that `probe run` says its numbers are not a model's."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from detforge.cli import app
from detforge.outputs import MANIFEST
from detforge.probes.adapters import describe, load_adapter


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("kind", ["clip", "siglip", "blip", "vilt", "llava"])
def test_every_kind_loads_back_and_says_its_weights_are_random(kind, tmp_path):
    out = tmp_path / kind
    result = _invoke("probe", "tiny-model", "--out", out, "--kind", kind)
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output and str(out) in " ".join(result.output.split())
    info = describe(str(out))
    assert info.random_weights and info.n_layers >= 3
    adapter = load_adapter(str(out), device="cpu")  # weights, tokenizer and processor load
    assert adapter is not None
    assert json.loads((out / "config.json").read_text())["detforge_random_weights"] is True


def test_the_seed_fixes_the_weights_and_a_rerun_replaces_its_own_folder(tmp_path):
    out = tmp_path / "clip"
    assert _invoke("probe", "tiny-model", "--out", out).exit_code == 0
    first = (out / "model.safetensors").read_bytes()
    assert (out / MANIFEST).is_file()
    assert _invoke("probe", "tiny-model", "--out", out).exit_code == 0
    assert (out / "model.safetensors").read_bytes() == first  # same seed, same weights
    assert _invoke("probe", "tiny-model", "--out", out, "--seed", "2").exit_code == 0
    assert (out / "model.safetensors").read_bytes() != first


def test_a_folder_it_did_not_write_is_refused_untouched(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = _invoke("probe", "tiny-model", "--out", out)
    assert result.exit_code == 1
    assert "cannot be replaced" in str(result.exception)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_an_unknown_kind_is_a_usage_error(tmp_path):
    result = _invoke("probe", "tiny-model", "--out", tmp_path / "m", "--kind", "gpt")
    assert result.exit_code == 2 and "choose one of clip, siglip" in result.output
    assert not (tmp_path / "m").exists()


def test_a_probe_run_on_it_warns_that_its_numbers_are_not_a_models(shapes, tmp_path):
    model, probes, run = tmp_path / "clip", tmp_path / "probes", tmp_path / "run"
    assert _invoke("probe", "tiny-model", "--out", model).exit_code == 0
    made = _invoke(
        "probe", "generate", shapes[1] / "tables", "--out", probes, "--max-per-label", "2",
        "--tasks", "existence",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    result = _invoke(
        "probe", "run", "--model", model, "--probes", probes, "--out", run,
        "--tasks", "existence", "--layers", "-1", "--probe-seeds", "1", "--bootstrap", "50",
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    warning = f"{model}: its weights are random"
    assert warning in " ".join(result.output.split())
    results = json.loads((run / "results.json").read_text())
    assert len(results["warnings"]) == 1 and results["warnings"][0].startswith(warning)
    assert f"**Warning**: {warning}" in (run / "report.md").read_text()
    # tiny-model's seed 1 is not the seed-0 draw of the run's random-init control
    by_init = {e["init"]: e["tasks"]["existence"]["linear"] for e in results["models"]}
    assert by_init["pretrained"] != by_init["random"]
