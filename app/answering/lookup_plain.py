"""The look-up contract without pydantic, for a one-shot ``bouncebot lookup``.

``lookup_data(table, text)`` is the JSON object of ``contract.Lookup`` (what
``services.lookup_contract(table, text).model_dump(mode="json")`` gives), built
from the codes layer's own ``as_contract()`` / ``to_dict()`` forms, key for key
and in the same order. ``LookupView`` gives that object the attribute access
of the contract's models, so ``render.lookup_text`` writes the same lines from it.

Why: importing pydantic and building the Lookup's validators and serializers
is more than half of a ``bouncebot lookup`` process (about 80 ms of 190 ms);
the look-up itself takes well under a millisecond. The typed models stay the
contract (``GET /api/lookup`` and every other door use them, ``/openapi.json``
shows them); ``tests/unit/test_lookup_plain.py`` holds this object equal to
the models' JSON, byte for byte, over every input shape the tests know, so the
two cannot drift apart silently. Nothing here imports pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.codes.table import CodeTable

__all__ = ["LookupView", "lookup_data"]


def lookup_data(table: CodeTable, text: str) -> dict:
    """``{"text", "codes", "recipients", "limits", "message_kind"}``, as ``bouncebot lookup --json`` prints it."""
    result = table.analyse(text)
    return {
        "text": text,
        "codes": [m.as_contract() for m in result.matches],
        "recipients": [r.to_dict() for r in result.recipients],
        "limits": result.limits.as_contract(),
        "message_kind": result.kind,
    }


class LookupView:
    """A contract JSON object read as the contract's models are: ``view.codes[0].row.meaning``.
    Objects nested in it are views too; lists are lists of views. Read-only."""

    __slots__ = ("_data",)

    def __init__(self, data: dict):
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str) -> Any:  # only for names the instance does not hold: the fields
        if name == "_data" or name.startswith("__"):
            raise AttributeError(name)
        try:
            return _view(self._data[name])
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __repr__(self) -> str:
        return f"LookupView({self._data!r})"


def _view(value):
    if isinstance(value, dict):
        return LookupView(value)
    if isinstance(value, list):
        return [_view(v) for v in value]
    return value
