"""The wording every surface shares, read once: ``data/wording.yaml`` (``WORDING``, its
``labels:`` block as ``LABELS``), and ``plain`` for a template shown as plain text."""

from __future__ import annotations

import re

from app._data import data_file

__all__ = ["LABELS", "WORDING", "plain"]

WORDING = data_file("app.answering", "wording.yaml")
LABELS = WORDING["labels"]
_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\s]*\)")
_EMPHASIS = re.compile(r"(\*\*|\*|`)(.+?)\1")


def plain(template: str) -> str:
    """A wording template without its Markdown: ``**x**``, ``*x*``, `` `x` `` become x,
    ``[x](url)`` becomes x. For the wording only, before it is filled in."""
    return _EMPHASIS.sub(r"\2", _LINK.sub(r"\1", template)).strip()
