"""Reading the data files that live beside the code that uses them, in each
layer's ``data/`` folder (wording, examples, code registries, other article
titles): YAML through libyaml when it is there, kept pre-parsed.

``data_file`` keeps what it parsed in a cache beside the file, by the rules of
Python's own bytecode cache (``data/__pycache__/<name>.<cache tag>.marshal``,
or under ``sys.pycache_prefix``; written even under PYTHONDONTWRITEBYTECODE, as the
KB's article cache is), keyed by a hash of the file's bytes: a one-shot process such as ``bouncebot
lookup`` then reads its six data files without importing or running the YAML
parser. A cache that is missing, stale (the file changed), damaged or cannot be
written costs only the parse: its contents are trusted only when the hash of
the file and the hash of the stored data both match.
"""

from __future__ import annotations

import marshal
import os
import sys
from typing import Any

__all__ = ["CACHE_VERSION", "cache_path", "data_file", "data_text", "load_yaml"]

CACHE_VERSION = 1  # raise when what a data file parses into changes for the same bytes
_MAGIC = b"bouncebot-data\n"
_DIGEST = 16
_MISSING = object()


def load_yaml(text: str) -> Any:
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _path(package: str, name: str) -> str | None:
    """``<package>/data/<name>`` as a file on disk; None when the package is not a folder (a zip)."""
    import importlib

    spec = importlib.import_module(package).__spec__
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "data", name)
        if os.path.isfile(path):
            return path
    return None


def data_text(package: str, name: str) -> str:
    """The text of ``<package>/data/<name>`` (``package`` as in ``app.codes``)."""
    path = _path(package, name)
    if path is not None:
        with open(path, encoding="utf-8") as f:
            return f.read()
    from importlib import resources

    return resources.files(package).joinpath(f"data/{name}").read_text(encoding="utf-8")


def data_file(package: str, name: str) -> Any:
    """``<package>/data/<name>`` parsed as YAML (from its cache when the file has not changed)."""
    path = _path(package, name)
    if path is None:
        return load_yaml(data_text(package, name))
    with open(path, "rb") as f:
        raw = f.read()
    key = _hash(raw + b"%d" % CACHE_VERSION)
    cache = cache_path(path)
    data = _read_cache(cache, key)
    if data is not _MISSING:
        return data
    data = load_yaml(raw.decode("utf-8"))
    _write_cache(cache, key, data)
    return data


def cache_path(path: str) -> str:
    """Where the parsed form of the data file ``path`` is kept (as ``importlib.util.cache_from_source``)."""
    folder, name = os.path.split(os.path.abspath(path))
    leaf = f"{name}.{sys.implementation.cache_tag or 'python'}.marshal"
    if sys.pycache_prefix:
        return os.path.join(sys.pycache_prefix, folder.lstrip(os.sep), leaf)
    return os.path.join(folder, "__pycache__", leaf)



def _hash(data: bytes) -> bytes:
    import hashlib

    return hashlib.blake2b(data, digest_size=_DIGEST).digest()


def _read_cache(cache: str, key: bytes):
    """The data kept for ``key``; ``_MISSING`` when there is none, or it is stale or damaged."""
    try:
        with open(cache, "rb") as f:
            blob = f.read()
    except OSError:
        return _MISSING
    head = len(_MAGIC) + 2 * _DIGEST
    if len(blob) < head or not blob.startswith(_MAGIC) or blob[len(_MAGIC):len(_MAGIC) + _DIGEST] != key:
        return _MISSING
    payload = blob[head:]
    if _hash(payload) != blob[head - _DIGEST:head]:  # damaged: never handed to marshal
        return _MISSING
    try:
        return marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return _MISSING


def _write_cache(cache: str, key: bytes, data: Any) -> None:
    """Keep ``data`` for ``key``, written aside and renamed into place; any failure only skips it."""
    try:
        payload = marshal.dumps(data)
    except ValueError:  # a type marshal does not keep (a YAML timestamp): parse each time
        return
    import threading

    tmp = f"{cache}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(_MAGIC + key + _hash(payload) + payload)
        os.replace(tmp, cache)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
