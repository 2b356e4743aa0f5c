"""The real huggingface_hub client, end to end against a local fake hub (HF_ENDPOINT)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from detforge.cli import app
from detforge.exports.hub_upload import HubError, plan_files, upload
from tests.upload.fake_hub import FakeHub

TOKEN = "hf_" + "s3cr3t" * 6


def _local_bytes(layout):
    return {f.path_in_repo: f.local_path.read_bytes() for f in plan_files(layout)}


def test_commits_equal_the_local_layout(hub_layout):
    with FakeHub() as hub:
        result = upload(hub_layout, "org/bigdet", token=TOKEN, endpoint=hub.url)
    assert hub.files == _local_bytes(hub_layout)
    assert result.files == len(hub.files) and result.commits == 1
    assert hub.commits[-1][-1] == "README.md", "the card goes last"
    auth = {headers.get("authorization") for _, _, headers, _ in hub.requests}
    assert auth == {f"Bearer {TOKEN}"}


def test_rerun_after_interruption_sends_only_the_rest(hub_layout):
    with FakeHub() as hub:
        hub.fail_commit_after = 2
        with pytest.raises(HubError, match="failed with 500"):
            upload(hub_layout, "org/bigdet", token=TOKEN, endpoint=hub.url, max_files_per_commit=1)
        sent_first = [path for commit in hub.commits for path in commit]
        assert len(sent_first) == 2
        hub.fail_commit_after = None
        upload(hub_layout, "org/bigdet", token=TOKEN, endpoint=hub.url, max_files_per_commit=1)
        sent_second = [path for commit in hub.commits[2:] for path in commit]
    local = _local_bytes(hub_layout)
    assert hub.files == local
    assert sorted(sent_first + sent_second) == sorted(local), "nothing sent twice"


@pytest.mark.parametrize(
    ("route", "status", "words"),
    [
        ("create", 401, "refused the credentials"),
        ("create", 403, "belong to someone else"),
        ("preupload", 404, "has no dataset repo"),
        ("commit", 500, "try again later"),
    ],
)
def test_hub_errors_become_one_clear_sentence(hub_layout, route, status, words, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeHub() as hub:
        hub.fail[route] = (status, -1)
        started = time.monotonic()
        with pytest.raises(HubError) as raised:
            upload(hub_layout, "org/bigdet", token=TOKEN, endpoint=hub.url)
    message = str(raised.value)
    assert words in message and "\n" not in message
    assert time.monotonic() - started < 30
    assert TOKEN not in message and TOKEN not in caplog.text


def test_unreachable_hub_is_one_sentence_within_seconds(hub_layout):
    started = time.monotonic()
    with pytest.raises(HubError, match="cannot reach http://127.0.0.1:9"):
        upload(hub_layout, "org/bigdet", token=TOKEN, endpoint="http://127.0.0.1:9")
    assert time.monotonic() - started < 5


def test_invalid_repo_id_is_refused_before_sending(hub_layout):
    with pytest.raises(HubError, match="invalid --repo-id"):
        upload(hub_layout, "not a repo", token=TOKEN, endpoint="http://127.0.0.1:9")


def test_cli_dry_run_lists_files_and_sends_nothing(hub_layout):
    with FakeHub() as hub:
        result = CliRunner().invoke(
            app,
            ["upload", str(hub_layout), "--repo-id", "org/bigdet", "--dry-run", "--token", TOKEN],
            env={"HF_ENDPOINT": hub.url},
        )
    assert result.exit_code == 0, result.output
    assert "data/train-00000-of-00001.parquet" in result.output
    assert "Dry run: nothing was sent" in result.output
    assert hub.requests == []
    assert TOKEN not in result.output


def test_cli_uploads_through_hf_endpoint_and_never_prints_the_token(hub_layout, tmp_path):
    with FakeHub() as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf")}
        command = [sys.executable, "-m", "detforge.cli", "upload", str(hub_layout)]
        run = subprocess.run(
            [*command, "--repo-id", "org/bigdet"],
            capture_output=True,
            text=True,
            env={**env, "PATH": "/usr/bin:/bin"},
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert hub.files == _local_bytes(hub_layout)
    assert TOKEN not in run.stdout + run.stderr
    leaked = [p for p in (tmp_path / "hf").rglob("*") if p.is_file() and TOKEN in p.read_text()]
    assert leaked == []


def test_cli_failed_check_stops_before_sending(hub_layout):
    (hub_layout / "README.md").write_text("no card\n")
    with FakeHub() as hub:
        result = CliRunner().invoke(
            app,
            ["upload", str(hub_layout), "--repo-id", "org/bigdet", "--token", TOKEN],
            env={"HF_ENDPOINT": hub.url},
        )
    assert result.exit_code != 0
    assert hub.requests == []
