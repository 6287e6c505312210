"""Imports point down only. Read with ``ast`` from the source, every import in
``app`` and ``ingest`` (at module level or inside a function) is checked
against the layer order:

    base (app, app.config, app.errors, app._data)
      < storage < knowledge < codes < search < ingest < llm < answering < insights < web < cli

A module may import its own layer and those below it, except that ``llm`` (the
language-model door) may not import ``ingest``: it stands on base, knowledge,
codes and search only. ``evals`` sits above everything and nothing in ``app`` or
``ingest`` imports it, except the CLI's ``bouncebot eval``, which imports it
inside the command and is optional.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ..conftest import ROOT

LAYERS = ["base", "storage", "knowledge", "codes", "search", "ingest", "llm", "answering", "insights", "web", "cli",
          "evals"]
OPTIONAL_UPWARD = {("app.cli", "evals.run")}  # `bouncebot eval`: imported in the command, only when asked
OFF_LIMITS = {("llm", "ingest")}  # below, yet not for it


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "ingest":
        return "ingest"
    if parts[0] == "evals":
        return "evals"
    if parts[0] != "app":
        raise ValueError(module)
    if len(parts) == 1 or parts[1] in ("config", "errors", "_data"):
        return "base"
    if parts[1] == "cli":
        return "cli"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(source: str, mod: str, is_package: bool = False):
    """(imported module, line) for every import of the project's own modules in ``source``."""
    package = mod if is_package else mod.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [target]
        else:
            continue
        for t in targets:
            if t.split(".")[0] in ("app", "ingest", "evals"):
                yield t, node.lineno


def upward_imports(source: str, mod: str, is_package: bool = False) -> list[str]:
    mine = LAYERS.index(layer_of(mod))
    return [
        f"{mod}:{line} imports {target} ({layer_of(target)} is above {layer_of(mod)})"
        for target, line in project_imports(source, mod, is_package)
        if LAYERS.index(layer_of(target)) > mine and (mod, target) not in OPTIONAL_UPWARD
    ] + [
        f"{mod}:{line} imports {target} ({layer_of(target)} is off limits to {layer_of(mod)})"
        for target, line in project_imports(source, mod, is_package)
        if (layer_of(mod), layer_of(target)) in OFF_LIMITS
    ]


SOURCES = sorted(p for d in ("app", "ingest") for p in (ROOT / d).rglob("*.py"))


def test_every_module_has_a_layer():
    assert len(SOURCES) > 30
    for p in SOURCES:
        assert layer_of(module_name(p)) in LAYERS


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    upward = upward_imports(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("mod,source,problem", [
    ("app.codes.table", "from app.web.api import api_routes", "web is above codes"),
    ("app.knowledge.articles", "from ..codes import find", "codes is above knowledge"),
    ("app.search.chroma", "def f():\n    from app.answering.answerer import Answerer", "answering is above search"),
    ("ingest.indexer", "import app.web.server", "web is above ingest"),
    ("app.answering.answerer", "from evals import run", "evals is above answering"),
    ("app.llm.local", "from app.answering.services import build", "answering is above llm"),
    ("app.llm.prefix", "def f():\n    from ingest.indexer import ingest", "ingest is off limits to llm"),
    ("app.search.retrieval", "from ..llm import door", "llm is above search"),
    ("app.insights.report", "from app.web.insights import insights_routes", "web is above insights"),
    ("app.answering.answerer", "def f():\n    from app.insights import compute", "insights is above answering"),
])
def test_the_check_catches_upward_imports(mod, source, problem):
    """The check itself can fail: relative, absolute and function-level upward imports are reported."""
    assert any(problem in u for u in upward_imports(source, mod))
