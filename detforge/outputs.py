"""What a command owns in its output folder, and how it replaces it.

A command writes each output folder whole, under a temporary name, and renames it into
place; inside it, before the rename, goes ``.detforge-manifest.json``: the key of what was
written (the stage's hash) and every entry with its size and mtime. Folder and manifest
therefore appear together or not at all, and the manifest decides two things:

- **reuse**: a folder is current only if its manifest has the wanted key and the folder still
  holds exactly the entries it lists, unchanged (:func:`is_current`);
- **replacement**: a folder may be replaced only if everything in it is listed in its manifest;
  a folder without one, or holding anything else (a user's notes, a source's own files), is
  refused, never deleted (:func:`replace_folder`).

:func:`refuse_overlap` keeps an output folder apart from the inputs it is built from.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import detforge
from detforge.atomic import atomic_path
from detforge.errors import DetforgeError

MANIFEST = ".detforge-manifest.json"
_EXAMPLES = 3


class OwnershipError(DetforgeError):
    """An output would overwrite or sit among files the command did not write."""


def entries(folder: Path) -> dict[str, dict]:
    """Every entry under ``folder`` (the manifest itself aside): files with their size and
    mtime, symbolic links with their target (not followed), folders."""
    found: dict[str, dict] = {}

    def walk(current: Path, prefix: str) -> None:
        with os.scandir(current) as listing:
            for entry in sorted(listing, key=lambda e: e.name):
                rel = prefix + entry.name
                if rel == MANIFEST:
                    continue
                if entry.is_symlink():
                    found[rel] = {"link": os.readlink(entry.path)}
                elif entry.is_dir():
                    found[rel] = {"dir": True}
                    walk(Path(entry.path), rel + "/")
                else:
                    stat = entry.stat()
                    found[rel] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    walk(folder, "")
    return found


def read_manifest(folder: Path) -> dict | None:
    """The manifest of ``folder``, or None when it has none (or an unreadable one)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and "files" in manifest else None


def write_manifest(folder: Path, key: str, what: str) -> None:
    """List everything in ``folder`` (just written) as ``what`` for ``key``."""
    manifest = {
        "written_by": f"detforge {detforge.__version__}",
        "what": what,
        "key": key,
        "files": entries(folder),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def is_current(folder: Path, key: str) -> bool:
    """True when ``folder`` holds exactly what a finished run for ``key`` wrote there."""
    manifest = read_manifest(folder) if folder.is_dir() else None
    return (
        manifest is not None and manifest.get("key") == key and entries(folder) == manifest["files"]
    )


def foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` its manifest does not list (everything when it has no manifest)."""
    if not folder.exists() and not folder.is_symlink():
        return []
    if folder.is_symlink() or not folder.is_dir():
        return [folder.name]
    manifest = read_manifest(folder)
    listed = manifest["files"] if manifest else {}
    return [rel for rel in entries(folder) if rel not in listed]


def check_replaceable(folder: Path) -> None:
    """Raise :class:`OwnershipError` unless ``folder`` is absent or holds only listed entries."""
    foreign = foreign_entries(folder)
    if not foreign:
        return
    if folder.is_symlink() or not folder.is_dir():
        detail = "it is not a folder this command wrote"
    else:
        shown = ", ".join(foreign[:_EXAMPLES]) + (", ..." if len(foreign) > _EXAMPLES else "")
        whose = "it has no manifest" if read_manifest(folder) is None else "not in its manifest"
        detail = f"{len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} not written here ({shown}; {whose})"
    raise OwnershipError(
        f"{folder} cannot be replaced: {detail}. Nothing was deleted: move them away, or "
        "choose another output folder"
    )


@contextlib.contextmanager
def replace_folder(folder: str | os.PathLike, key: str, what: str) -> Iterator[Path]:
    """Yield a temporary path to write ``folder``'s new content at; on success, add its
    manifest and rename it onto ``folder`` (whose old content must all be listed in its
    manifest: checked before and again just before the rename)."""
    folder = Path(folder)
    check_replaceable(folder)
    with atomic_path(folder) as tmp:
        yield tmp
        if not tmp.is_dir():
            raise OwnershipError(f"{what}: nothing was written for {folder}")
        write_manifest(tmp, key, what)
        check_replaceable(folder)


def refuse_overlap(out: str | os.PathLike, inputs: dict[str, Path], owned: list[Path]) -> None:
    """Raise :class:`OwnershipError` when ``out`` is, contains or lies inside one of the
    ``inputs`` (``{description: path}``), except inputs under one of the ``owned`` folders
    (written by the command itself, such as the built-in sample)."""
    out = Path(out).resolve()
    owned_resolved = [Path(p).resolve() for p in owned]
    found = []  # (rank, relation, description, path): the closest relation is named
    for description, path in inputs.items():
        where = Path(path).resolve()
        if any(where.is_relative_to(p) for p in owned_resolved):
            continue
        if where == out:
            found.append((0, "is", description, where))
        elif where.is_relative_to(out):
            found.append((1, "contains", description, where))
        elif out.is_relative_to(where) and not where.is_file():
            found.append((2, "lies inside", description, where))
    if found:
        _, relation, description, where = min(found, key=lambda f: f[0])
        raise OwnershipError(
            f"--out {out} {relation} {description} ({where}): a build writes only into a folder "
            "of its own, apart from its inputs; choose another --out"
        )
