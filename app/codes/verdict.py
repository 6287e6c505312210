"""What to do with a failed recipient's address: the verdict.

>>> v = decide("5.1.1", "550", "550 5.1.1 <a@example.org>... User Unknown")
>>> v.reason, v.hard, v.retry, v.suppress, v.basis
('userunknown', True, 'after_fix', True, 'text')

The reason is read as the tables in ``data/reasons.yaml`` say (the order is
documented there): the message kind when it fixes one, a provider's own
reading of its code, the server's wording (ordered phrase groups, on the
diagnostic first, then on the report text), the enhanced status code, the
reply code; then ``refine`` adjusts it by where in the SMTP dialogue it was
said. ``hard``, ``suppress`` and ``retry`` are properties of the reason in the
same file. Nothing here branches on a reason's name.

Stdlib and app.codes only; never raises. Linear in the size of the input: at
most MAX_TEXT characters of report text are read, each phrase is one
substring search or one bounded regular expression, and what depends only on
the report text is worked out once per text (a bounce's recipients share it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from app._data import data_file
from app.codes.registry import explain, named_providers

__all__ = ["MAX_EVIDENCE", "MAX_TEXT", "RETRY", "Verdict", "decide", "tables"]

# Whether resending can help: 'no' (the address will not take mail: use another address or
# channel), 'after_fix' (once something is fixed: the address's spelling, the sending domain's
# authentication, the content), 'later' (a temporary condition: resend in a while), 'wait' (not
# failed yet: the sending server keeps trying by itself).
RETRY = ("no", "after_fix", "later", "wait")

MAX_TEXT = 64 * 1024  # characters of report text read (a bounce's report is a few KB)
MAX_DIAGNOSTIC = 8 * 1024
MAX_EVIDENCE = 200  # characters of the line a reason was read from
_KEY = 24  # characters of the diagnostic looked for in the report text
_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
_REPLY = re.compile(r"[2-5]\d\d")
_FOLD = re.compile(r"\n[ \t]+(?=\S)")  # a line that continues the one before it (Postfix, Exim indent them)
# Header lines of a quoted original message: the sender's words, not the server's.
_HEADER_LINE = re.compile(
    r"^[ \t]*(?:received|from|to|cc|subject|date|message-id|reply-to|return-path|sender|references|in-reply-to"
    r"|mime-version|user-agent|dkim-signature|authentication-results|content-[\w-]{1,40}|x-[\w-]{1,60}"
    r"|arc-[\w-]{1,40}|thread-[\w-]{1,40})[ \t]*:[^\n]*",
    re.IGNORECASE | re.MULTILINE,
)
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")  # keeps every offset


@dataclass(frozen=True)
class Verdict:
    reason: str  # Sisimai's taxonomy: 'userunknown', 'mailboxfull', 'blocked', ...; 'undefined' when nothing tells
    hard: bool  # permanent for this address (Sisimai's hardbounce)
    retry: str  # one of RETRY
    suppress: bool  # the address belongs on a suppression list now
    evidence: str | None  # the line of the bounce the reason was read from (at most ~200 characters)
    basis: str  # what decided the reason: 'provider', 'text', 'status', 'reply' or 'kind'


class _Found(NamedTuple):
    reason: str
    evidence: str | None
    basis: str


class _Words(NamedTuple):
    """A list of phrases: lower-case substrings, and the '/regex/' ones as one expression."""

    literals: tuple[str, ...]
    regex: re.Pattern[str] | None

    def find(self, hay: str, low: str) -> tuple[int, int] | None:
        """The earliest (start, end) of a phrase in ``hay`` (``low``: ``hay`` lower-cased)."""
        best = None
        for phrase in self.literals:
            i = low.find(phrase)
            if i >= 0 and (best is None or i < best[0]):
                best = (i, i + len(phrase))
        hit = self.regex.search(hay) if self.regex else None
        if hit and (best is None or hit.start() < best[0]):
            best = hit.span()
        return best


class _Tables(NamedTuple):
    reasons: dict[str, dict[str, Any]]
    kinds: dict[str, dict[str, Any]]
    providers: dict[str, dict[str, Any]]
    phrases: list[tuple[str, _Words]]
    stages: dict[str, _Words]  # in dialogue order
    ambiguous: list[str]
    refine: list[dict[str, Any]]
    status: dict[str, str | None]
    fallback: dict[str, str]
    reply: dict[str, str]


def _words(phrases: list[str]) -> _Words:
    regexes = [p[1:-1] for p in phrases if len(p) > 2 and p[0] == p[-1] == "/"]
    literals = tuple(p.lower() for p in phrases if not (len(p) > 2 and p[0] == p[-1] == "/"))
    regex = re.compile("|".join(f"(?:{r})" for r in regexes), re.IGNORECASE | re.MULTILINE) if regexes else None
    return _Words(literals, regex)


@lru_cache(maxsize=1)
def tables() -> _Tables:
    """``data/reasons.yaml``, compiled (once per process)."""
    d = data_file("app.codes", "reasons.yaml")
    return _Tables(
        reasons=d["reasons"],
        kinds=d["kinds"],
        providers=d["providers"],
        phrases=[(g["reason"], _words(g["match"])) for g in d["phrases"]],
        stages={name: _words(words) for name, words in d["stages"].items()},
        ambiguous=d["ambiguous"],
        refine=d["refine"],
        status={str(k): v for k, v in d["status"].items()},
        fallback=d["fallback"],
        reply={str(k): v for k, v in d["reply"].items()},
    )


def decide(status: str | None, reply: str | None, diagnostic: str | None, *, action: str = "failed",
           kind: str = "failure", text: str = "", providers: frozenset[str] | set[str] = frozenset()) -> Verdict:
    """The verdict for one recipient: its enhanced status code and reply code,
    the server's words (``diagnostic``), its RFC 3464 ``action``, what the
    message is (``kind``, see app.codes.bounce.Bounce), the report's text, and
    the providers it names (worked out from the text when not given)."""
    try:
        return _decide(status, reply, diagnostic, action, kind, text, providers)
    except Exception:  # noqa: BLE001 - a paste must never crash the chat; the tables are tested
        return Verdict("undefined", False, "later", False, None, "status" if status else "reply")


def _decide(status, reply, diagnostic, action, kind, text, providers) -> Verdict:
    t = tables()
    m = _STATUS.search(status) if isinstance(status, str) else None
    status, code = (m.group(), m.groups()) if m else (None, None)  # '5.1.1', ('5', '1', '1')
    reply = reply if isinstance(reply, str) and _REPLY.fullmatch(reply) else None
    diag = diagnostic[:MAX_DIAGNOSTIC] if isinstance(diagnostic, str) else ""
    body = _body(text if isinstance(text, str) else "")
    if action == "delayed" and kind in ("failure", "not_report"):
        kind = "delay"  # this recipient is still being tried
    klass = code[0] if code else (reply[0] if reply else None)
    permanent = klass == "5" or (klass is None and action == "failed" and kind in ("failure", "not_report"))
    fixed = t.kinds.get(kind)

    if fixed and not fixed.get("after_text"):
        only = set(fixed.get("unless", ()))
        found = (_wording(t, diag, only) or _wording(t, body, only)) if only else None
        found = found or _Found(fixed["reason"], kind, "kind")
    else:
        found = _wording(t, diag) or _body_wording(body)
        named = providers or named_providers(diag) | _body_providers(body)
        found = _by_provider(t, reply, status, named, found) or found
        if found is None and fixed:
            found = _Found(fixed["reason"], kind, "kind")
        found = found or _by_code(t, code, reply) or _fallback(t, status, reply)
        if found.basis != "provider":
            found = found._replace(reason=_refined(t, found.reason, code, klass == "4", _stage(t, diag, body)))

    props = {**t.reasons.get(found.reason, t.reasons["undefined"]), **(fixed or {})}
    retry = props["retry"]
    if isinstance(retry, dict):
        retry = retry["permanent" if permanent else "temporary"]
    hard, suppress = (_holds(props[k], permanent) for k in ("hard", "suppress"))
    return Verdict(found.reason, hard, retry, suppress, found.evidence, found.basis)


def _holds(rule: str, permanent: bool) -> bool:
    return rule == "always" or (rule == "permanent" and permanent)


# -- what depends on the report text alone (once per text) ------------------------


@lru_cache(maxsize=16)
def _body(text: str) -> str:
    """The report text as read: its first MAX_TEXT characters, without the
    header lines of a quoted message, continuation lines joined."""
    return _FOLD.sub(" ", _HEADER_LINE.sub("", text[:MAX_TEXT]))


@lru_cache(maxsize=16)
def _body_wording(body: str) -> _Found | None:
    return _wording(tables(), body)


@lru_cache(maxsize=16)
def _body_providers(body: str) -> frozenset[str]:
    return frozenset(named_providers(body))


# -- reading the reason -------------------------------------------------------------


def _wording(t: _Tables, hay: str, only: set[str] | None = None) -> _Found | None:
    """The first phrase group (of ``only`` these reasons) with a phrase in ``hay``."""
    low = hay.translate(_LOWER)
    for reason, words in t.phrases:
        if only is None or reason in only:
            span = words.find(hay, low) if hay else None
            if span:
                return _Found(reason, _line(hay, *span), "text")
    return None


def _line(hay: str, start: int, end: int) -> str:
    """The line holding hay[start:end], cut to MAX_EVIDENCE characters around it."""
    first = hay.rfind("\n", 0, start) + 1
    last = hay.find("\n", end)
    last = len(hay) if last < 0 else last
    if last - first > MAX_EVIDENCE:
        first = max(first, min(start - (MAX_EVIDENCE - (end - start)) // 2, last - MAX_EVIDENCE))
        last = min(last, first + MAX_EVIDENCE)
    return " ".join(hay[first:last].split())


def _by_provider(t, reply, status, providers, wording: _Found | None) -> _Found | None:
    """A provider's documented reading of (reply, status), when the bounce names it."""
    if not (reply and status and providers):
        return None
    exp = explain(reply, status, providers=providers)
    rule = t.providers.get(exp.reason, {}) if exp and exp.basis == "provider" else {}
    if "reason" not in rule or (wording and wording.reason in rule.get("or", ())):
        return None
    return _Found(rule["reason"], f"{reply} {status} ({', '.join(sorted(providers))})", "provider")


def _by_code(t: _Tables, code: tuple[str, str, str] | None, reply: str | None) -> _Found | None:
    if code:
        _, subject, detail = code
        exact = f"X.{subject}.{detail}"
        reason = t.status[exact] if exact in t.status else t.status.get(f"X.{subject}")
        if reason:
            return _Found(reason, ".".join(code), "status")
    if reply and reply in t.reply:
        return _Found(t.reply[reply], reply, "reply")
    return None


def _fallback(t: _Tables, status: str | None, reply: str | None) -> _Found:
    """Nothing told: the basis is the code that said nothing specific (or none)."""
    if status or reply:
        return _Found(t.fallback["coded"], status or reply, "status" if status else "reply")
    return _Found(t.fallback["uncoded"], None, "text")


# -- where in the dialogue ----------------------------------------------------------


def _stage(t: _Tables, diag: str, body: str) -> str | None:
    """What the reply refused (a stage of the dialogue), when the bounce tells:
    said in the diagnostic, else around it in the report text, else anywhere there."""
    for hay in (diag, _near(body, diag)):
        said = _said(t, hay)
        if said:
            return said
    return _body_stage(body)  # the same for every recipient of the bounce: read once


def _said(t: _Tables, hay: str) -> str | None:
    low = hay.translate(_LOWER)
    said = [name for name, words in t.stages.items() if words.find(hay, low)]
    if set(t.ambiguous) <= set(said):
        said = [name for name in said if name not in t.ambiguous]
    return said[-1] if said else None


@lru_cache(maxsize=16)
def _body_stage(body: str) -> str | None:
    return _said(tables(), body)


def _near(body: str, diag: str) -> str:
    """The line of the report text where the diagnostic stands, and the two before it."""
    at = body.find(diag[:_KEY]) if len(diag) >= _KEY else -1
    if at < 0:
        return ""
    start = body.rfind("\n", 0, at) + 1
    for _ in range(2):
        start = body.rfind("\n", 0, max(start - 1, 0)) + 1
    end = body.find("\n", at)
    return body[start : end if end >= 0 else len(body)]


def _refined(t: _Tables, reason: str, code, temporary: bool, stage: str | None) -> str:
    """``reason`` after the first rule of ``refine`` that applies."""
    keys = {f"X.{code[1]}.{code[2]}", f"X.{code[1]}.*"} if code else set()
    for rule in t.refine:
        if reason not in (rule["reason"] if isinstance(rule["reason"], list) else [rule["reason"]]):
            continue
        when = rule["when"]
        if (
            ("stage" in when and stage != when["stage"])
            or ("not_stage" in when and stage == when["not_stage"])
            or ("status" in when and not keys & set(when["status"]))
            or ("not_status" in when and keys & set(when["not_status"]))
            or ("temporary" in when and temporary != when["temporary"])
        ):
            continue
        return rule["to"]
    return reason
