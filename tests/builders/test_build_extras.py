"""Optional extras: a missing one is a one-line error naming `pip install 'detforge[extra]'`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from detforge.errors import DetforgeError
from detforge.extras import MissingExtraError, require
from tests.builders.conftest import REPO, tiny_build_args


def test_require_returns_an_installed_module() -> None:
    import json

    assert require("json", "hub") is json


def test_require_names_the_extra_of_a_missing_module() -> None:
    with pytest.raises(MissingExtraError) as caught:
        require("detforge_no_such_module.sub", "hub")
    assert isinstance(caught.value, DetforgeError)
    assert str(caught.value) == (
        "detforge_no_such_module.sub is not installed: it comes with the [hub] extra "
        "(pip install 'detforge[hub]')"
    )


def test_hub_export_and_upload_without_the_hub_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from detforge.exports import hub as export_hub
    from detforge.exports import hub_upload

    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now fails
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'detforge\[hub\]'"):
        export_hub.features(["cat"])
    with pytest.raises(MissingExtraError, match=r"^huggingface_hub is not installed"):
        hub_upload.upload(Path("."), "org/x", token="t")
    with pytest.raises(MissingExtraError, match=r"pip install 'detforge\[hub\]'"):
        hub_upload.resolve_token(None)


def test_build_without_the_hub_extra_is_one_line(tiny_root: Path, tmp_path: Path) -> None:
    import subprocess

    blocked = "import sys; sys.modules['datasets'] = None; from detforge.cli import main; main()"
    args = tiny_build_args(tiny_root, tmp_path / "o")
    done = subprocess.run(
        [sys.executable, "-c", blocked, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: datasets is not installed: it comes with the [hub] extra "
        "(pip install 'detforge[hub]'), or --set exports.hub.enabled=false"
    ]
    assert not (tmp_path / "o" / ".stages").exists()  # it failed before any stage ran
