"""``app._data.data_file`` keeps each parsed data file beside it (``data/__pycache__``): a cache
that is missing, stale, damaged or cannot be written costs only a parse, never a wrong answer."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from app import _data
from app._data import cache_path, data_file

REAL = [(pkg, p.name) for pkg in ("app.codes", "app.answering", "app.search", "app.web")
        for p in sorted((Path(importlib.import_module(pkg).__file__).parent / "data").glob("*.yaml"))]


@pytest.fixture()
def pkg(tmp_path, monkeypatch):
    """A package of its own (``cachepkg``) with ``data/x.yaml``; returns that file."""
    root = tmp_path / "src"
    (root / "cachepkg" / "data").mkdir(parents=True)
    (root / "cachepkg" / "__init__.py").write_text("", encoding="utf-8")
    source = root / "cachepkg" / "data" / "x.yaml"
    source.write_text("a: 1\nb: [x, y]\nc: {d: true, e: null, f: 1.5}\nwords: “quoted” é\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "cachepkg", raising=False)
    yield source
    sys.modules.pop("cachepkg", None)


EXPECTED = {"a": 1, "b": ["x", "y"], "c": {"d": True, "e": None, "f": 1.5}, "words": "“quoted” é"}


def _no_parse(monkeypatch):
    def refuse(text):
        raise AssertionError("parsed although the cache holds the file")

    monkeypatch.setattr(_data, "load_yaml", refuse)


def test_the_second_read_comes_from_the_cache(pkg, monkeypatch):
    assert data_file("cachepkg", "x.yaml") == EXPECTED
    cache = Path(cache_path(str(pkg)))
    assert cache.parent == pkg.parent / "__pycache__" and cache.name.startswith("x.yaml.")
    _no_parse(monkeypatch)
    got = data_file("cachepkg", "x.yaml")
    assert got == EXPECTED and list(got) == list(EXPECTED)  # the same keys in the same order


def test_a_changed_file_is_parsed_again(pkg):
    data_file("cachepkg", "x.yaml")
    pkg.write_text("a: 2\n", encoding="utf-8")
    assert data_file("cachepkg", "x.yaml") == {"a": 2}
    pkg.write_text("a: 1\nb: [x, y]\nc: {d: true, e: null, f: 1.5}\nwords: “quoted” é\n", encoding="utf-8")
    assert data_file("cachepkg", "x.yaml") == EXPECTED


def _flip_last(b: bytes) -> bytes:
    return b[:-1] + bytes([b[-1] ^ 0xFF])


DAMAGE = [
    ("empty", lambda b: b""),
    ("truncated", lambda b: b[: len(b) // 2]),
    ("header only", lambda b: b[:47]),
    ("a payload byte flipped", _flip_last),
    ("wrong magic", lambda b: b"x" + b[1:]),
    ("garbage", lambda b: os.urandom(len(b))),
    ("another file's key", lambda b: b[:15] + bytes(16) + b[31:]),
    ("a bad payload with its own hash", None),  # payload not marshal data, its hash right
]


@pytest.mark.parametrize("damage", [d for _, d in DAMAGE], ids=[n for n, _ in DAMAGE])
def test_a_damaged_cache_costs_only_a_parse(pkg, damage, monkeypatch):
    data_file("cachepkg", "x.yaml")
    cache = Path(cache_path(str(pkg)))
    blob = cache.read_bytes()
    if damage is None:
        payload = b"\xff not marshal"
        damaged = blob[:31] + _data._hash(payload) + payload
    else:
        damaged = damage(blob)
    cache.write_bytes(damaged)
    assert data_file("cachepkg", "x.yaml") == EXPECTED
    _no_parse(monkeypatch)
    assert data_file("cachepkg", "x.yaml") == EXPECTED  # and written again, whole


def test_an_unwritable_cache_is_only_skipped(pkg, monkeypatch):
    (pkg.parent / "__pycache__").write_text("a file where the cache folder should be", encoding="utf-8")
    assert data_file("cachepkg", "x.yaml") == EXPECTED
    assert data_file("cachepkg", "x.yaml") == EXPECTED
    assert not [p for p in pkg.parent.iterdir() if p.name.endswith(".tmp")]


def test_data_marshal_cannot_keep_is_parsed_each_time(pkg):
    pkg.write_text("when: 2026-12-01\n", encoding="utf-8")  # a YAML date
    assert data_file("cachepkg", "x.yaml")["when"].isoformat() == "2026-12-01"
    assert not Path(cache_path(str(pkg))).exists()
    assert data_file("cachepkg", "x.yaml")["when"].isoformat() == "2026-12-01"


def test_the_pycache_prefix_is_followed(pkg, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "prefix"))
    assert data_file("cachepkg", "x.yaml") == EXPECTED
    cache = Path(cache_path(str(pkg)))
    assert cache.is_file() and (tmp_path / "prefix") in cache.parents
    assert not (pkg.parent / "__pycache__").exists()


@pytest.mark.parametrize("package, name", REAL, ids=[f"{p}:{n}" for p, n in REAL])
def test_every_data_file_reads_as_its_yaml(package, name):
    path = Path(importlib.import_module(package).__file__).parent / "data" / name
    parsed = _data.load_yaml(path.read_text(encoding="utf-8"))  # the loader the app reads them with
    assert data_file(package, name) == parsed  # parsed, or from the cache
    assert data_file(package, name) == parsed  # from the cache when it could be written


@pytest.mark.parametrize("package, name", REAL, ids=[f"{p}:{n}" for p, n in REAL])
def test_every_data_file_reads_the_same_without_libyaml(package, name):
    # PyYAML without its C extension parses with the pure-Python loader: the data must not depend on which.
    import yaml

    text = (Path(importlib.import_module(package).__file__).parent / "data" / name).read_text(encoding="utf-8")
    assert yaml.load(text, Loader=yaml.SafeLoader) == _data.load_yaml(text)
