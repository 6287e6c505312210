"""Plain-language explanations of SMTP codes from three data files, for codes
the help article's table does not cover.

Resolution order, first match wins (the ``basis`` of the answer):

1. ``provider``      a provider entry whose reply code and enhanced code both
                     match (``550`` + ``5.7.26`` -> Gmail's 550-5.7.26), used
                     only when the pasted text names that provider (its
                     ``markers``): other servers use the same codes otherwise;
2. ``registry``      the IANA registry entry for the enhanced code, matched as
                     X.subject.detail (``4.2.2`` and ``5.2.2`` both use X.2.2);
3. ``class-subject`` an enhanced code the registry does not list
                     (``5.7.509``): its class and subject meanings combined;
4. ``reply-code``    the reply code's own entry (``421``, ``554``).

An enhanced code whose subject is not 0-7 (``5.9.1``) falls through to its
reply code. Anything else (``6.1.1``, ``199``) has no explanation. What an agent can do is
looked up by severity and reason in the data, never decided here. The files
are read once, on first use. Needs neither the model nor the vector store and
must not import torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

from app._data import data_file
from app.codes.find import severity_of

__all__ = ["Explanation", "RegistryData", "action_for", "data", "explain", "named_providers"]

_REPLY = re.compile(r"[2-5][0-5]\d")  # RFC 5321 shape, as in app.codes
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")


@dataclass(frozen=True)
class Explanation:
    """What a code means, what to do about it, and where that comes from."""

    code: str  # '550-5.7.26', '5.1.10' or '554'
    severity: str  # 'permanent', 'temporary', 'success' or 'unknown'
    meaning: str
    action: str
    reason: str
    basis: str  # 'provider', 'registry', 'class-subject' or 'reply-code'
    sources: tuple[str, ...]


@dataclass(frozen=True)
class RegistryData:
    """The three data files, indexed for look-up."""

    registry_url: str
    reasons: dict[str, str]
    actions: dict[str, dict[str, str]]
    source_urls: dict[str, str]
    classes: dict[str, dict[str, Any]]
    subjects: dict[str, dict[str, Any]]
    unregistered_note: str
    enhanced: dict[str, dict[str, Any]]  # 'X.1.1' -> entry
    replies: dict[str, dict[str, Any]]  # '550' -> entry
    providers: dict[tuple[str, str], list[dict[str, Any]]]  # ('550', '5.7.26') -> entries
    markers: dict[str, list[str]]  # 'Gmail' -> words that name it in a bounce


def _read(name: str) -> dict[str, Any]:
    return data_file("app.codes", name)


@lru_cache(maxsize=1)
def data() -> RegistryData:
    """Load and index the data files (once per process)."""
    esc = _read("enhanced_status_codes.yaml")
    replies = _read("reply_codes.yaml")
    providers: dict[tuple[str, str], list[dict[str, Any]]] = {}
    provider_file = _read("provider_codes.yaml")
    for entry in provider_file["providers"]:
        key = (_clean_reply(str(entry["reply"])), _clean_enhanced(str(entry["enhanced"])))
        providers.setdefault(key, []).append(entry)
    return RegistryData(
        registry_url=esc["registry"]["url"],
        reasons=esc["reasons"],
        actions=esc["actions"],
        source_urls=esc["source_urls"],
        classes={str(k): v for k, v in esc["classes"].items()},
        subjects={str(k): v for k, v in esc["subjects"].items()},
        unregistered_note=esc["unregistered_note"],
        enhanced={e["code"]: e for e in esc["codes"]},
        replies={str(e["code"]): e for e in replies["codes"]},
        providers=providers,
        markers={k: [w.lower() for w in v] for k, v in provider_file["markers"].items()},
    )


def _clean_reply(reply: str | None) -> str | None:
    reply = (reply or "").strip()
    return reply if _REPLY.fullmatch(reply) else None


def _clean_enhanced(enhanced: str | None) -> str | None:
    """'5.7.01' -> '5.7.1'; None unless it is class 2, 4 or 5 in X.Y.Z form."""
    m = _ENHANCED.fullmatch((enhanced or "").strip())
    return ".".join(str(int(part)) for part in m.groups()) if m else None


def _labelled(d: RegistryData, digit: str, meaning: str) -> str:
    cls = d.classes.get(digit)
    return f"{cls['label']}: {meaning}" if cls else meaning


def _source_url(d: RegistryData, source: str) -> str:
    return d.source_urls.get(source, source)


def named_providers(text: str | None) -> set[str]:
    """The providers a pasted text names (by their markers).

    One lower-casing pass, then one substring search per marker (a fixed,
    short list): linear in the text. A text with many codes is scanned once
    by its caller, which passes the result to :func:`explain` as ``providers``.
    """
    low = (text or "").lower()
    return {p for p, words in data().markers.items() if any(w in low for w in words)}


def _by_provider(d: RegistryData, reply: str | None, enh: str | None, providers: set[str]):
    entries = d.providers.get((reply, enh)) if reply and enh else None
    entries = [e for e in entries or [] if e["provider"] in providers]
    if not entries:
        return None
    meaning = " ".join(e["meaning"] for e in entries)
    sources = list(dict.fromkeys(url for e in entries for url in e["sources"]))
    return _labelled(d, enh[0], meaning), entries[0]["reason"], "provider", sources


def _by_registry(d: RegistryData, enh: str | None):
    if not enh:
        return None
    cls, subject, detail = enh.split(".")
    entry = d.enhanced.get(f"X.{subject}.{detail}")
    if entry is None:
        return None
    reason = d.classes[cls].get("reason", entry["reason"])
    sources = [d.registry_url, _source_url(d, entry["source"])]
    return _labelled(d, cls, entry["meaning"]), reason, "registry", sources


def _by_class_subject(d: RegistryData, enh: str | None):
    if not enh:
        return None
    cls, subject, _ = enh.split(".")
    subj = d.subjects.get(subject)
    if subj is None:
        return None
    note = d.unregistered_note.format(code=enh)
    reason = d.classes[cls].get("reason", subj["reason"])
    sources = [d.registry_url, _source_url(d, "RFC 3463")]
    return _labelled(d, cls, f"{subj['meaning']} {note}"), reason, "class-subject", sources


def _by_reply(d: RegistryData, reply: str | None):
    entry = d.replies.get(reply) if reply else None
    if entry is None:
        return None
    sources = [_source_url(d, entry["source"])]
    return _labelled(d, reply[0], entry["meaning"]), entry["reason"], "reply-code", sources


def action_for(severity: str, reason: str) -> str:
    """The agent's next step for this severity and reason (data, not code)."""
    actions = data().actions
    table = actions.get(severity, actions["unknown"])
    return table.get(reason, table["default"])


def explain(
    reply: str | None,
    enhanced: str | None,
    context: str | None = None,
    providers: Iterable[str] | None = None,
) -> Explanation | None:
    """Explain a reply code and/or enhanced status code; None when unknown.

    ``context`` is the text the code came from: a provider's own reading is
    used only when it names that provider. ``providers``, when given, is
    ``named_providers(context)`` worked out once by a caller explaining many
    codes of one text, and ``context`` is then not scanned again. Values that
    are not a three-digit reply code or a class 2/4/5 enhanced code (``6.1.1``)
    are ignored, as if they had not been given. Results are cached: the data
    never changes.
    """
    named = frozenset(named_providers(context) if providers is None else providers)
    return _explain(_clean_reply(reply), _clean_enhanced(enhanced), named)


@lru_cache(maxsize=4096)
def _explain(reply: str | None, enh: str | None, providers: frozenset[str]) -> Explanation | None:
    d = data()
    found = (
        _by_provider(d, reply, enh, providers)
        or _by_registry(d, enh)
        or _by_class_subject(d, enh)
        or _by_reply(d, reply)
    )
    if found is None:
        return None
    meaning, reason, basis, sources = found
    severity = severity_of(reply, enh)
    code = f"{reply}-{enh}" if reply and enh else (reply or enh or "")
    return Explanation(code, severity, meaning, action_for(severity, reason), reason, basis, tuple(sources))
