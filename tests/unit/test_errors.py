"""Every error a user can cause lives in one tree, in ``app/errors.py``:
each class states its exit code and HTTP status, the module's docstring shows
them truly, nothing raises the base class itself, and no error class is
defined anywhere else (read with ``ast`` from the source of ``app``,
``ingest`` and ``evals``)."""

from __future__ import annotations

import ast
import re

import pytest

import app.errors as errors
from app.errors import BouncebotError

from ..conftest import ROOT

SOURCES = sorted(p for d in ("app", "ingest", "evals") for p in (ROOT / d).rglob("*.py"))
ERRORS_PY = ROOT / "app" / "errors.py"


def tree(cls: type = BouncebotError) -> list[type]:
    out = [cls]
    for sub in cls.__subclasses__():
        out += tree(sub)
    return out


SUBCLASSES = tree()[1:]
NAMES = {c.__name__ for c in tree()}


def test_the_tree_is_the_issue_s():
    assert {c.__name__ for c in SUBCLASSES} >= {
        "BadSetting", "BadChromaURL", "KBNotFound", "CannotReadFile", "BadQuestion", "EmptyQuestion", "NotText",
        "QuestionTooLong", "BadFeedback", "FeedbackTooLarge", "RateLimited", "IndexNotReady", "IndexBuildFailed",
        "MalformedArticle", "SearchUnavailable", "FeedbackUnavailable", "FeedbackFull", "NoFeedbackYet"}


@pytest.mark.parametrize("cls", tree(), ids=lambda c: c.__name__)
def test_each_class_states_its_exit_code_and_http_status(cls):
    assert cls.__module__ == "app.errors"
    assert "exit_code" in vars(cls) and "http_status" in vars(cls), f"{cls.__name__} inherits one of them"
    assert isinstance(cls.exit_code, int) and 1 <= cls.exit_code <= 5
    assert isinstance(cls.http_status, int) and 400 <= cls.http_status <= 599


def test_the_docstring_shows_the_tree_as_it_is():
    """Each line ``Name   exit N, HTTP S`` under its parent, as drawn (``├──``/``└──``)."""
    drawn: dict[str, tuple[int, int, str | None]] = {}
    parents: list[str] = []
    for line in errors.__doc__.splitlines():
        m = re.match(r"^\s{4}((?:[│ ]   )*)(?:[├└]── )?(\w+)\s+exit (\d), HTTP (\d{3})\b", line)
        if not m:
            continue
        depth = len(m.group(1)) // 4 + (1 if "──" in line else 0)
        name = m.group(2)
        parents[depth:] = [name]
        drawn[name] = (int(m.group(3)), int(m.group(4)), parents[depth - 1] if depth else None)
    actual = {c.__name__: (c.exit_code, c.http_status, c.__base__.__name__ if c is not BouncebotError else None)
              for c in tree()}
    assert drawn == actual


def _name(node) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def bare_raises(source: str) -> list[int]:
    """Lines that raise ``BouncebotError`` itself (called or not, plain or ``errors.``)."""
    return [n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Raise) and n.exc is not None
            and _name(n.exc.func if isinstance(n.exc, ast.Call) else n.exc) == "BouncebotError"]


def error_classes(source: str) -> list[str]:
    """Classes in ``source`` deriving from a class of the tree."""
    return [n.name for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.ClassDef) and {_name(b) for b in n.bases} & NAMES]


def test_no_module_raises_the_base_class():
    bare = [f"{p.relative_to(ROOT)}:{line}" for p in SOURCES for line in bare_raises(p.read_text(encoding="utf-8"))]
    assert not bare, "raise a subclass from app/errors.py instead: " + ", ".join(bare)


def test_no_error_class_is_defined_outside_app_errors():
    elsewhere = [f"{p.relative_to(ROOT)}: class {name}" for p in SOURCES if p != ERRORS_PY
                 for name in error_classes(p.read_text(encoding="utf-8"))]
    assert not elsewhere, "define it in app/errors.py: " + ", ".join(elsewhere)


def test_the_scans_can_fail():
    """The scans see a bare raise, called or not, and a subclass defined elsewhere."""
    src = ("class Oops(errors.BadQuestion):\n    pass\n\nclass Fine(ValueError):\n    pass\n\n"
           "def f():\n    raise BouncebotError('x')\n\ndef g():\n    raise errors.BouncebotError\n\n"
           "def h():\n    raise errors.SearchUnavailable('y')\n")
    assert bare_raises(src) == [8, 11]
    assert error_classes(src) == ["Oops"]


def test_the_api_and_the_cli_ask_the_error_only():
    """The API answers ``exc.http_status`` and the CLI exits with ``exit_code``:
    neither picks a status or a code by the error's class or number."""
    for rel in ("app/web/api.py", "app/cli.py", "app/web/server.py", "app/web/widget.py", "app/web/chat.py"):
        text = (ROOT / rel).read_text(encoding="utf-8")
        assert not re.search(r"exit_code\s*[=!<>]=|http_status\s*[=!<>]=", text), rel
