"""Publish a built dataset's ``hub/`` layout to a Hugging Face hub, resumably.

Files go up in batches of commits through ``huggingface_hub``; each file is
streamed from disk (never held in memory twice). A rerun after an interruption
sends only what is missing: the hub reports the id of every file it already
has and the client skips unchanged files; the result counts what was sent and
what was already there. Requests have connect/read timeouts (:mod:`.hub_http`);
every failure is one sentence naming its cause.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from detforge.errors import DetforgeError
from detforge.exports.hub_http import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    HubStalled,
    hub_client,
)
from detforge.extras import require
from detforge.outputs import read_manifest


class HubError(DetforgeError):
    """The hub refused or could not be reached; the message is one sentence for the user."""


@dataclasses.dataclass(frozen=True)
class PlannedFile:
    path_in_repo: str
    local_path: Path
    size: int


def resolve_hub_dir(path: Path) -> Path:
    """The hub layout of a build directory (``OUT/hub``) or the layout directory itself."""
    for candidate in (path / "hub", path):
        if (candidate / "README.md").is_file():
            return candidate
    raise HubError(f"{path}: no hub layout here (expected {path / 'hub' / 'README.md'})")


def plan_files(hub_dir: Path) -> list[PlannedFile]:
    """Every file of the layout to send, sorted; hidden files and folders are left out."""
    files = []
    for path in sorted(hub_dir.rglob("*")):
        relative = path.relative_to(hub_dir)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            files.append(PlannedFile(relative.as_posix(), path, path.stat().st_size))
    return files


def batches(
    files: list[PlannedFile], max_files: int, max_bytes: int
) -> Iterator[list[PlannedFile]]:
    """Consecutive batches of at most ``max_files`` files and about ``max_bytes`` bytes.

    The card (README.md) goes last, so a dataset page only describes files that are there.
    """
    ordered = sorted(files, key=lambda f: (f.path_in_repo == "README.md", f.path_in_repo))
    batch: list[PlannedFile] = []
    size = 0
    for file in ordered:
        if batch and (len(batch) >= max_files or size + file.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(file)
        size += file.size
    if batch:
        yield batch


def resolve_token(token: str | None) -> str | None:
    """``--token``, else ``HF_TOKEN``, else the huggingface_hub login (None if none)."""
    if token:
        return token
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"]
    return require("huggingface_hub", "hub").get_token()


def _is_hub_failure(error: Exception) -> bool:
    """An HTTP answer, a refused/offline connection or a transport error (httpx)."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    return isinstance(
        error, HfHubHTTPError | OfflineModeIsEnabled | OSError | ConnectionError | TimeoutError
    ) or type(error).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "httpcore2"}


def _request(error: Exception) -> str:
    """``METHOD /path`` of the request an HTTP error answered, or empty."""
    with contextlib.suppress(AttributeError, RuntimeError):
        request = error.response.request
        return f" on {request.method} {request.url.path}"
    return ""


def _explain(
    error: Exception, *, repo_id: str, endpoint: str, token: str | None, retries: int = 0
) -> HubError:
    """One sentence for a hub failure; the token never appears in it."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    status = None
    if isinstance(error, HfHubHTTPError) and error.response is not None:
        status = error.response.status_code
    tried = f" after {retries} retries" if retries else ""
    if isinstance(error, HubStalled):
        option = "--connect-timeout" if error.waiting_for == "connection" else "--read-timeout"
        message = (
            f"{endpoint} gave no {error.waiting_for} within {error.seconds:g} s "
            f"({error.method} {error.path}): the hub or the network is stalled; try again "
            f"later, or raise {option}"
        )
    elif isinstance(error, OfflineModeIsEnabled):
        message = f"hub access is disabled (HF_HUB_OFFLINE is set): nothing was sent to {endpoint}"
    elif status == 401:
        message = (
            f"{endpoint} refused the credentials (401): pass --token, set HF_TOKEN or run "
            "`hf auth login` with a token that has write access"
        )
    elif status == 403:
        message = (
            f"{endpoint} does not allow this token to write to {repo_id} (403): the repo may "
            "belong to someone else, or the token is read-only"
        )
    elif status == 404:
        message = f"{endpoint} has no dataset repo {repo_id} or revision (404)"
    elif status is not None and status >= 500:
        message = (
            f"{endpoint} failed with {status}{_request(error)}{tried}: the hub has a problem, "
            "try again later"
        )
    elif status is not None:
        message = f"{endpoint} answered {status} for {repo_id}{_request(error)}"
    else:
        message = (
            f"cannot reach {endpoint} ({type(error).__name__}{tried}): check the network or "
            "HF_ENDPOINT"
        )
    if token:
        message = message.replace(token, "***")
    return HubError(message)


def _local_failure(error: Exception, files: list[PlannedFile], hub_dir: Path) -> HubError | None:
    """A layout file that vanished or cannot be read while uploading, named as such (not as a
    network failure); None when ``error`` is not about a layout file."""
    local = {os.path.normpath(f.local_path) for f in files}
    path = getattr(error, "filename", None)
    if path is None and isinstance(error, ValueError):  # huggingface_hub: "... is not a file"
        path = next((p for p in local if f"'{p}'" in str(error)), None)
    if path is None or os.path.normpath(path) not in local:
        return None
    if not Path(path).exists():
        return HubError(
            f"{path} was deleted during the upload (it was in {hub_dir} when the upload "
            "started): rebuild or restore the layout and rerun; files already sent are skipped"
        )
    cause = getattr(error, "strerror", None) or str(error)
    return HubError(f"{path}: cannot be read ({cause})")


def _check_unchanged(hub_dir: Path, manifest: dict | None) -> None:
    """Stop when a build replaced the layout since the upload started (its manifest changed):
    the rest of the files would come from another build."""
    if manifest is not None and read_manifest(hub_dir) != manifest:
        raise HubError(
            f"{hub_dir} was rebuilt during the upload: rerun to send the new layout (files "
            "the hub already holds unchanged are skipped)"
        )


@dataclasses.dataclass(frozen=True)
class UploadResult:
    """What an upload did: ``files``/``bytes`` were sent, ``unchanged`` files were already on
    the hub and skipped, ``commits`` were made."""

    repo_id: str
    revision: str
    commits: int
    files: int
    bytes: int
    unchanged: int = 0


def _sent(operations: list, batch: list[PlannedFile]) -> list[PlannedFile]:
    """The files of a committed batch that were actually sent. huggingface_hub drops a file
    the hub already holds unchanged from the commit, and says so only through the remote and
    local ids it compares; when those are not there, the file counts as sent."""
    sent = []
    for operation, file in zip(operations, batch, strict=True):
        remote = getattr(operation, "_remote_oid", None)
        if remote is None or remote != getattr(operation, "_local_oid", None):
            sent.append(file)
    return sent


def upload(
    hub_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str = "main",
    token: str | None = None,
    endpoint: str | None = None,
    max_files_per_commit: int = 100,
    max_bytes_per_commit: int = 2 * 1024**3,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    on_batch: Callable[[int, int, list[PlannedFile]], None] | None = None,
    on_sent: Callable[[int, int, list[PlannedFile], list[PlannedFile]], None] | None = None,
) -> UploadResult:
    """Create ``repo_id`` (a dataset repo) if needed and commit the layout in batches.

    ``on_batch(index, total, files)`` is called before each batch is sent and
    ``on_sent(index, total, sent, unchanged)`` after it.
    """
    require("huggingface_hub", "hub")  # a missing [hub] extra is one line, not a traceback
    from huggingface_hub import CommitOperationAdd, HfApi, constants
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubError(f"invalid --repo-id {repo_id!r}: {str(error).splitlines()[0]}") from None
    token = resolve_token(token)
    # HF_ENDPOINT is read now, not when huggingface_hub was imported
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    api = HfApi(endpoint=endpoint, token=token)
    files = plan_files(hub_dir)
    planned = list(batches(files, max_files_per_commit, max_bytes_per_commit))
    layout = read_manifest(hub_dir)
    sent: list[PlannedFile] = []
    commits = 0
    with hub_client(connect_timeout, read_timeout) as quiet:
        try:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            if revision != "main":
                api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
            for index, batch in enumerate(planned):
                _check_unchanged(hub_dir, layout)
                if on_batch:
                    on_batch(index, len(planned), batch)
                operations = [
                    CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=f.local_path)
                    for f in batch
                ]
                api.create_commit(
                    repo_id,
                    repo_type="dataset",
                    revision=revision,
                    operations=operations,
                    commit_message=f"Upload dataset files ({index + 1}/{len(planned)})",
                )
                now = _sent(operations, batch)
                sent += now
                commits += bool(now)
                if on_sent:
                    unchanged = [f for f in batch if f not in now]
                    on_sent(index, len(planned), now, unchanged)
        except Exception as error:
            local = _local_failure(error, files, hub_dir)
            if local is not None:
                raise local from None
            if not (isinstance(error, HubStalled) or _is_hub_failure(error)):
                raise
            raise _explain(
                error, repo_id=repo_id, endpoint=endpoint, token=token, retries=quiet.retries
            ) from None
    return UploadResult(
        repo_id,
        revision,
        commits,
        len(sent),
        sum(f.size for f in sent),
        len(files) - len(sent),
    )
