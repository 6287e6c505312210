"""Regular expressions compiled on first use, not at import.

``pattern(r"...", re.I)`` stands where ``re.compile(r"...", re.I)`` stood at a
module's top level: its methods (``search``, ``match``, ``finditer``, ...) are
the compiled pattern's own, bound on first use, so a call costs what it did.
A stage that a paste never reaches (the MIME decoding of a code typed alone,
the recipient shapes of a one-line question) never compiles its expressions:
``bouncebot lookup`` is a one-shot process and each compile is paid per run.
"""

from __future__ import annotations

import re
from functools import cache

__all__ = ["pattern"]

_METHODS = ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split", "scanner")


@cache
def _compiled(source: str, flags: int) -> re.Pattern:
    return re.compile(source, flags)


class _LazyPattern:
    """A ``re.Pattern`` compiled when one of its attributes is first asked for."""

    def __init__(self, source: str, flags: int = 0):
        self.pattern = source  # as re.Pattern.pattern
        self._flags = flags

    def __getattr__(self, name: str):  # only for what the instance does not hold yet
        if name.startswith("__"):
            raise AttributeError(name)
        compiled = _compiled(self.pattern, self._flags)
        for method in _METHODS:  # from now on found on the instance: no call through here
            self.__dict__[method] = getattr(compiled, method)
        self.__dict__["flags"] = compiled.flags
        self.__dict__["groups"] = compiled.groups
        self.__dict__["groupindex"] = compiled.groupindex
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"pattern({self.pattern!r}, {self._flags})"


def pattern(source: str, flags: int = 0) -> _LazyPattern:
    """``re.compile(source, flags)``, done when the pattern is first used."""
    return _LazyPattern(source, flags)
