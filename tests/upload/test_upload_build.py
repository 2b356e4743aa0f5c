"""End to end: the sample build's hub layout passes every check and uploads as it is."""

from __future__ import annotations

from typer.testing import CliRunner

from detforge.cli import app
from detforge.exports.hub_checks import check_layout
from detforge.exports.hub_upload import plan_files
from tests.upload.fake_hub import FakeHub


def test_sample_build_checks_pass_and_uploads(tmp_path):
    out = tmp_path / "bigdet"
    built = CliRunner().invoke(app, ["build-dataset", "--out", str(out)])
    assert built.exit_code == 0, built.output
    runner = CliRunner()
    dry = runner.invoke(app, ["upload", str(out), "--repo-id", "org/bigdet", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "FAILED" not in dry.output and "load_dataset" in dry.output
    with FakeHub() as hub:
        sent = runner.invoke(
            app,
            ["upload", str(out), "--repo-id", "org/bigdet", "--token", "hf_test"],
            env={"HF_ENDPOINT": hub.url},
        )
        assert sent.exit_code == 0, sent.output
        local = {f.path_in_repo: f.local_path.read_bytes() for f in plan_files(out / "hub")}
        assert hub.files == local
        assert {"README.md", "taxonomy/mapping.csv"} <= set(hub.files)
        assert any(path.startswith("data/train-") for path in hub.files)
    # the real card states each source's license in its licenses table: drop one row and the
    # check fails, although the BibTeX and tags still name that source
    card = out / "hub" / "README.md"
    head, heading, rest = card.read_text().partition("\n## Licenses\n")
    section, _, tail = rest.partition("\n## ")
    lines = section.splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith("| openimages |")]
    assert heading and len(kept) == len(lines) - 1
    card.write_text(head + heading + "".join(kept) + "\n## " + tail)
    failed = {c.name: c.detail for c in check_layout(out / "hub", load=False) if not c.ok}
    assert set(failed) == {"licenses"} and "['openimages']" in failed["licenses"]
