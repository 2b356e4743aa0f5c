"""A truncated image in `probe run` is one line naming the file (PIL's own error names
none), exit status 1, no traceback."""

from __future__ import annotations

import re
import sys

import pytest

from detforge.cli import main
from detforge.probes.generate import generate
from detforge.probes.synthetic import shapes_dataset, tiny_model


def test_truncated_image_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    dataset = shapes_dataset(tmp_path / "images", images=24, seed=0)
    generate(dataset, seed=0, max_per_label=4, source_path=tmp_path).write(tmp_path / "probes")
    for image in (tmp_path / "images").rglob("*.png"):  # every image cut in half
        image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    model = tiny_model("clip", tmp_path / "clip", seed=1)
    argv = ["detforge", "probe", "run", "--model", str(model), "--probes", str(tmp_path / "probes")]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "run"), "--bootstrap", "10"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # (transformers' weight-loading bars may come first)
    [line] = [line for line in err.splitlines() if line.startswith("error")]
    images = re.escape(str(tmp_path / "images"))
    assert re.fullmatch(
        rf"error: {images}/\S+\.png, record -?\d+, field 'file_name': unreadable image: .*"
        r"truncated.*",
        line,
    ), line
