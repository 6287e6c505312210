"""A version's files on disk, published whole or not at all: written aside with a manifest of each
file's size and sha256, renamed into place, older versions pruned; read only once the manifest
checks out. The lexical index's (``app.search.lexical``) and the multilingual vectors' way."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

KEEP = 4  # index folders kept per cache directory (the newest); older ones are removed


def publish(folder: Path, key: str, write, manifest: dict) -> Path:
    """Writes a version's files into ``folder/key``: aside (``write(tmp)`` puts them in a folder of
    their own), with ``manifest`` plus each file's size and sha256, then renamed into place (replacing
    a damaged one), the older folders pruned. The lexical index's and the multilingual vectors' way."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / key
    tmp = folder / f".{key}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    try:
        write(tmp)
        files = {p.name: {"size": p.stat().st_size, "sha256": _digest(p)} for p in sorted(tmp.iterdir())}
        (tmp / "manifest.json").write_text(json.dumps({**manifest, "files": files}, indent=1), encoding="utf-8")
        if final.exists():  # a damaged one, being replaced
            shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(folder, keep=final)
    return final


def published(path: Path, fmt, names: list[str], unchecked: tuple[str, ...] = ()) -> dict:
    """The manifest ``publish`` wrote in ``path``, once it names format ``fmt`` and each of ``names`` is
    there with its size and sha256 (only its size for those in ``unchecked``); else ``ValueError``
    saying what is wrong. The lexical index's and the multilingual vectors' way."""
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"no readable manifest in {path}: {e}") from None
    if manifest.get("format") != fmt:
        raise ValueError(f"{path} holds format {manifest.get('format')!r}, not {fmt}")
    files = manifest.get("files") or {}
    for name in names:
        p, want = path / name, files.get(name) or {}
        if not p.is_file() or p.stat().st_size != want.get("size") or (
                name not in unchecked and _digest(p) != want.get("sha256")):
            raise ValueError(f"{p} is missing or damaged")
    return manifest


def kept_versions(folder: Path | None, load, skip: Path | None = None):
    """What ``load(path)`` reads of the other version folders kept in ``folder``, newest first (a
    folder it refuses with ``ValueError`` skipped): where a new version takes unchanged vectors from."""
    if folder is None or not folder.is_dir():
        return
    entries = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and p != skip),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for p in entries[:KEEP]:
        try:
            yield load(p)
        except ValueError:
            continue


class CheckedOnUse:
    """A memory-mapped matrix whose file's checksum is read on its first use, not at opening:
    ``pending`` is (the file, its manifest's sha256) until then."""

    pending: tuple[Path, str] | None

    def check(self) -> bool:
        """Whether the matrix's file has its manifest's checksum (read once)."""
        if self.pending is not None:
            if not checks_out(*self.pending):
                return False
            self.pending = None
        return True


def checks_out(path: Path, sha256: str) -> bool:
    """Whether ``path`` is readable and has this checksum (a mapped matrix checked on first use)."""
    try:
        return _digest(path) == sha256
    except OSError:
        return False


def _digest(p: Path) -> str:
    with open(p, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _prune(folder: Path, keep: Path) -> None:
    """Remove all but the KEEP most recently used index folders (a process
    still reading a removed one keeps its mapping: Linux frees the files
    when the last mapping goes)."""
    entries = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for p in entries[KEEP:]:
        if p != keep:
            shutil.rmtree(p, ignore_errors=True)


class _Lock:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def __enter__(self):
        self.f = open(self.path, "a+")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()
