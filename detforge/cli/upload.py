"""`detforge upload`: publish a built dataset to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from detforge.cli.app import app, console
from detforge.exports.hub_http import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@app.command("upload")
def upload(
    out: Path = typer.Argument(
        ..., help="A build directory (its hub/ layout is sent) or a hub layout directory."
    ),
    repo_id: str = typer.Option(..., "--repo-id", help="Dataset repo to publish to: ORG/NAME."),
    private: bool = typer.Option(False, "--private", help="Create the repo as private."),
    revision: str = typer.Option("main", "--revision", help="Branch to commit to."),
    token: str | None = typer.Option(
        None,
        "--token",
        help="Hub token with write access. Default: HF_TOKEN, else the huggingface_hub login. "
        "Never printed or stored.",
        show_default=False,
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check the layout and list what would be sent; send nothing."
    ),
    max_files_per_commit: int = typer.Option(100, help="Files per commit (resumable batches)."),
    connect_timeout: float = typer.Option(
        DEFAULT_CONNECT_TIMEOUT, help="Seconds to wait for a connection to the hub."
    ),
    read_timeout: float = typer.Option(
        DEFAULT_READ_TIMEOUT,
        help="Seconds to wait for the hub's answer (or to send a chunk) before giving up.",
    ),
) -> None:
    """Check the hub layout locally, then upload it (resumable: a rerun sends only what is missing).

    The endpoint is HF_ENDPOINT (default https://huggingface.co), so self-hosted hubs work.
    """
    from detforge.exports.hub_checks import check_layout
    from detforge.exports.hub_upload import HubError, plan_files, resolve_hub_dir, upload

    hub_dir = resolve_hub_dir(out)
    checks = check_layout(hub_dir)
    table = Table(title=f"checks of {hub_dir}")
    for column in ("check", "result", "detail"):
        table.add_column(column)
    for check in checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAILED[/]", check.detail)
    console.print(table)
    failed = [c.name for c in checks if not c.ok]
    files = plan_files(hub_dir)
    total = sum(f.size for f in files)
    if dry_run:
        listing = Table(title=f"would send to {repo_id}@{revision}")
        listing.add_column("file")
        listing.add_column("size", justify="right")
        for file in files:
            listing.add_row(file.path_in_repo, _size(file.size))
        console.print(listing)
        console.print(f"{len(files)} files, {_size(total)} in total. Dry run: nothing was sent.")
    if failed:
        raise HubError(f"upload stopped: {len(failed)} check(s) failed ({', '.join(failed)})")
    if dry_run:
        return

    def announce(index: int, count: int, batch: list) -> None:
        size = _size(sum(f.size for f in batch))
        console.print(f"batch {index + 1}/{count}: {len(batch)} files, {size}")

    def report(index: int, count: int, sent: list, unchanged: list) -> None:
        already = f"; {len(unchanged)} already on the hub, unchanged" if unchanged else ""
        console.print(f"  sent {len(sent)} files ({_size(sum(f.size for f in sent))}){already}")

    result = upload(
        hub_dir,
        repo_id,
        private=private,
        revision=revision,
        token=token,
        max_files_per_commit=max_files_per_commit,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        on_batch=announce,
        on_sent=report,
    )
    already = f"; {result.unchanged} were already there, unchanged" if result.unchanged else ""
    console.print(
        f"published {result.files} files ({_size(result.bytes)}) to {repo_id}@{result.revision} "
        f"in {result.commits} commit(s){already}"
    )
