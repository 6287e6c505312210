"""app.codes._lazy: a module-level pattern compiled on first use behaves as re.compile's."""

from __future__ import annotations

import re

import pytest

from app.codes import _lazy
from app.codes._lazy import pattern

CASES = [
    # (source, flags, method, args)
    (r"(\d{3})[ -](\d\.\d{1,3}\.\d{1,3})", 0, "search", ("said 550 5.1.1 unknown",)),
    (r"(\d{3})[ -](\d\.\d{1,3}\.\d{1,3})", 0, "search", ("no code here",)),
    (r"[!-9;-~]{1,76}:", 0, "match", ("Subject: x",)),
    (r"boundary", re.I, "finditer", ("BOUNDARY=a; Boundary=b",)),
    (r"^final-recipient:\s*(.*)$", re.I | re.M, "findall", ("Final-Recipient: a@b\nfinal-recipient: c@d",)),
    (r"\s+", 0, "sub", (" ", "a \t b\n c")),
    (r"\s+", 0, "subn", (" ", "a \t b\n c")),
    (r"[,;]", 0, "split", ("a,b;c",)),
    (r"\d+", 0, "fullmatch", ("12345",)),
    (r"""following\s+recipient | \bthese\s+address""", re.I | re.X, "search", ("The following recipient failed",)),
]


def _shape(result):
    """Comparable form of what a pattern method returns."""
    if isinstance(result, re.Match):
        return ("match", result.span(), result.groups())
    if hasattr(result, "__next__"):
        return [_shape(m) for m in result]
    return result


@pytest.mark.parametrize("source, flags, method, args", CASES)
def test_methods_return_what_the_compiled_pattern_returns(source, flags, method, args):
    lazy, compiled = pattern(source, flags), re.compile(source, flags)
    assert _shape(getattr(lazy, method)(*args)) == _shape(getattr(compiled, method)(*args))
    # and again, once the methods are the compiled pattern's own
    assert _shape(getattr(lazy, method)(*args)) == _shape(getattr(compiled, method)(*args))


def test_nothing_is_compiled_before_first_use():
    source = r"never-used-by-anything-else-(\d+)"
    _lazy._compiled.cache_clear()
    p = pattern(source, re.I)
    assert p.pattern == source and _lazy._compiled.cache_info().currsize == 0
    assert p.search("NEVER-USED-BY-ANYTHING-ELSE-42").group(1) == "42"
    assert _lazy._compiled.cache_info().currsize == 1
    compiled = re.compile(source, re.I)
    assert (p.flags, p.groups, p.groupindex) == (compiled.flags, compiled.groups, compiled.groupindex)


def test_a_bad_expression_fails_when_used_and_an_unknown_attribute_is_an_error():
    bad = pattern(r"(unclosed")
    with pytest.raises(re.error):
        bad.search("x")
    with pytest.raises(AttributeError):
        pattern(r"x").no_such_method  # noqa: B018


def test_every_expression_of_kinds_yaml_compiles():
    # kind.py compiles a rule's expression when it is first searched; a broken one must still fail here.
    from app.codes import kind

    rules = kind._table()[1]
    expressions = [rx for r in rules for rx in [*r.headers.values(), *(rx for _, rx in r.prefixes), r.text] if rx]
    assert len(expressions) > 10
    for rx in expressions:
        re.compile(rx.pattern, re.IGNORECASE | re.MULTILINE)
