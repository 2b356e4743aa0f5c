"""Upload faults, each one sentence naming its real cause: a stalled hub (timeouts), a 5xx
retried quietly, a layout file deleted or a layout rebuilt mid-upload; and a resumed upload
counts only what it sent."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from detforge.cli import app
from detforge.exports.hub_upload import HubError, plan_files, upload
from detforge.outputs import write_manifest
from tests.upload.fake_hub import FakeHub

TOKEN = "hf_" + "t0k3n" * 6


@pytest.fixture
def no_backoff(monkeypatch):
    """huggingface_hub waits 1+2+4+8+8 s between its retries: not in a test."""
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda seconds: None)


@pytest.mark.parametrize("route", ["create", "preupload", "commit"])
def test_a_stalled_hub_is_one_sentence_after_the_read_timeout(hub_layout, route):
    with FakeHub() as hub:
        hub.stall = {route}
        started = time.monotonic()
        with pytest.raises(HubError) as raised:
            upload(hub_layout, "org/bigdet", token=TOKEN, endpoint=hub.url, read_timeout=0.5)
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert f"{hub.url} gave no answer within 0.5 s (POST /api/" in message
    assert "raise --read-timeout" in message and "\n" not in message
    assert elapsed < 10, f"{elapsed:.1f} s: a stalled request was retried or not timed out"


def test_cli_stalled_hub_stops_with_one_line(hub_layout, tmp_path):
    with FakeHub() as hub:
        hub.stall = {"preupload"}
        command = [sys.executable, "-m", "detforge.cli", "upload", str(hub_layout)]
        run = subprocess.run(
            [*command, "--repo-id", "org/bigdet", "--read-timeout", "1"],
            capture_output=True,
            text=True,
            env={**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "COLUMNS": "300"},
            timeout=120,
        )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    # (the checks' loader may warn about the small test card first)
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: {hub.url} gave no answer within 1 s (POST "
        "/api/datasets/org/bigdet/preupload/main): the hub or the network is stalled; try "
        "again later, or raise --read-timeout"
    )


def test_a_5xx_is_retried_quietly_and_reported_once(hub_layout, no_backoff, capfd):
    with FakeHub() as hub:
        hub.fail["preupload"] = (503, -1)
        with pytest.raises(HubError) as raised:
            upload(hub_layout, "org/bigdet", token=TOKEN, endpoint=hub.url)
        preuploads = [p for _, p, _, _ in hub.requests if "/preupload/" in p]
    assert str(raised.value) == (
        f"{hub.url} failed with 503 on POST /api/datasets/org/bigdet/preupload/main after 5 "
        "retries: the hub has a problem, try again later"
    )
    assert len(preuploads) == 6
    err = capfd.readouterr().err
    assert "Retrying" not in err and "HTTP Error" not in err, err


def test_a_passing_5xx_leaves_no_trace(hub_layout, no_backoff, capfd):
    with FakeHub() as hub:
        hub.fail["preupload"] = (502, 1)
        result = upload(hub_layout, "org/bigdet", token=TOKEN, endpoint=hub.url)
        assert hub.files == {
            f.path_in_repo: f.local_path.read_bytes() for f in plan_files(hub_layout)
        }
    assert result.files == len(plan_files(hub_layout))
    assert capfd.readouterr().err == ""


def _one_file_per_commit(layout, hub, on_batch):
    return upload(
        layout,
        "org/bigdet",
        token=TOKEN,
        endpoint=hub.url,
        max_files_per_commit=1,
        on_batch=on_batch,
    )


def test_a_file_deleted_before_its_batch_is_named(hub_layout):
    files = plan_files(hub_layout)
    victim = next(f for f in files if f.path_in_repo == "taxonomy/mapping.csv")

    def delete_later_file(index, total, batch):
        if index == 0:
            victim.local_path.unlink()

    with FakeHub() as hub, pytest.raises(HubError) as raised:
        _one_file_per_commit(hub_layout, hub, delete_later_file)
    message = str(raised.value)
    assert message.startswith(f"{victim.local_path} was deleted during the upload")
    assert "cannot reach" not in message


def test_a_file_deleted_while_its_batch_is_sent_is_named(hub_layout):
    victim = next(f for f in plan_files(hub_layout) if f.path_in_repo == "taxonomy/classes.csv")
    with FakeHub() as hub:
        hub.on_route["preupload"] = lambda: victim.local_path.unlink(missing_ok=True)
        with pytest.raises(HubError) as raised:
            upload(hub_layout, "org/bigdet", token=TOKEN, endpoint=hub.url)
    message = str(raised.value)
    assert message.startswith(f"{victim.local_path} was deleted during the upload"), message
    assert "cannot reach" not in message


def test_a_layout_rebuilt_during_the_upload_stops_it(hub_layout):
    write_manifest(hub_layout, "first-build", "export-hub")

    def rebuild(index, total, batch):
        if index == 0:
            write_manifest(hub_layout, "second-build", "export-hub")

    with FakeHub() as hub, pytest.raises(HubError, match="was rebuilt during the upload"):
        _one_file_per_commit(hub_layout, hub, rebuild)
    assert len(hub.commits) == 1


def test_a_resumed_upload_counts_only_what_it_sent(hub_layout):
    files = plan_files(hub_layout)
    args = ["upload", str(hub_layout), "--repo-id", "org/bigdet", "--token", TOKEN]
    args += ["--max-files-per-commit", "1"]
    with FakeHub() as hub:
        hub.fail_commit_after = 2
        first = CliRunner().invoke(app, args, env={"HF_ENDPOINT": hub.url, "COLUMNS": "300"})
        assert first.exit_code != 0
        hub.fail_commit_after = None
        again = CliRunner().invoke(app, args, env={"HF_ENDPOINT": hub.url, "COLUMNS": "300"})
    assert again.exit_code == 0, again.output
    # the first run committed two files; the rerun sends the rest, one commit each
    assert again.output.count("sent 0 files (0 B); 1 already on the hub, unchanged") == 2
    rest = len(files) - 2
    assert f"published {rest} files (" in again.output
    assert f"in {rest} commit(s); 2 were already there, unchanged" in again.output
    assert len(hub.commits) == 2 + rest
