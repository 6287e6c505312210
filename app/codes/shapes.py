"""The shapes mail servers write failed recipients in, read from a bounce's
report text in one pass over its lines. Each rule is one function:

* :func:`_anchor`: a line led by the address and ':' or '...' (Postfix
  ``<a@b>: host ... said:`` and ``<a@b>: unknown user``, qmail ``<a@b>:``,
  OpenSMTPD and Exim ``a@b: mailbox is full``, Sendmail ``<a@b>... User
  unknown``, Postfix ``<a@b> (expanded from <x>):``);
* :func:`_subject`: a line led by the address a failure sentence is about
  (``a@b does not exist``, ``<a@b> is over quota``);
* :func:`_label`: a labelled field (``Recipient Address: a@b``, ``Failed
  Recipient: a@b``, ``Intended recipient: a@b``);
* :func:`_list_item`: a line led by an address (or a display name and
  ``<a@b>``) in the list under a heading (:data:`_HEADING`: Exim "The following
  address(es) failed:", Exchange "did not reach the following recipient(s):"
  and "Delivery has failed to these recipients or groups:", Gmail "Delivery to
  the following recipient failed permanently:", Sendmail "The following
  addresses had permanent fatal errors", GroupWise "undeliverable to the
  following:", Lotus Notes "was not delivered to:"). The list ends at another
  section's heading ("Diagnostic information for administrators:", "because:",
  "Possible alternative addresses:") or a separator line;
* :func:`_bare`: a line of only ``<a@b>`` in a mail system's report;
* :func:`_failure_sentence`: a failure sentence naming the address after
  'to', 'for' or a colon ("Sorry, your message to a@b cannot be delivered",
  "Your message wasn't delivered to a@b", "Unknown user: a@b"); counted only
  when no line of the other shapes names anyone (then a sentence's address is
  more often the same one rewritten, or someone else's).

The lines after a recipient's line (its block: up to a blank line, and
further indented lines) are its diagnostic: addresses there name no other
recipient, except Sendmail's ``(expanded from: <alias>)``, which names the
address its DSN reports as the Final-Recipient (:data:`_SENDMAIL_ALIAS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.codes._lazy import pattern
from app.codes import addresses as a
from app.codes.decode import Report

__all__ = ["names_in"]

_ADDRESS = a.ADDRESS
# What follows a leading address on an anchor line: ':' (Postfix, qmail,
# OpenSMTPD), '...' (Sendmail), Postfix's '(expanded from <x>):'.
_ANCHOR_TAIL = pattern(r"""[>"]?(?:[ \t]{0,4}:(?:\s|$)|\.\.\.|[ \t]+\((?:expanded|generated)\s+from[^()]{0,300}\):)""")
# A list item with a display name: 'Frank Smith <frank@example.org>', 'Frank (frank@...)'.
_NAMED = pattern(r"[ \t]{0,16}[^\W\d_](?:[^\W\d_]|[ .,'\"-]){0,59}[<(]\s?(?:mailto:)?(" + _ADDRESS + ")")
# A line that introduces a list of failed recipients (the addresses follow it).
_HEADING = pattern(
    r"""following\s+(?:[\w-]+\s+){0,3}?(?:recipient|address|destination|user|mailbox|e-?mail)
      | \bto\s+the\s+following\s*:?\s*$ | \bthese\s+(?:recipient|address)
      | (?:failed|invalid|undeliverable|bad)\s+(?:recipient|address)
      | (?:recipients?|address(?:es|\(es\))?)\s+(?:follows?|failed)
      | (?:not|n't|never)\s+(?:be\s+|been\s+|yet\s+been\s+)?delivered\s+to\s*:?\s*$
      | \baddress(?:es)?\s+to\s+which\b.*:\s*$ | failure\s+reasons
      | destinataires?\s+suivants | (?:siguientes|seguintes)\s+destinat | destinatari\s+seguenti
      | (?:ces|estos|estes|questi)\s+destinat | folgenden?\s+(?:empf|adress) | volgende\s+(?:ontvanger|adres)""",
    re.I | re.X,
)
_HEADING_CHARS = 300  # a heading is a line of a sentence or two, not a paragraph
_ARMED_LINES = 4  # lines a heading's first item may come after
_SEPARATOR = pattern(r"\s*[-=*_~#]{3,}\s*$")
_BARE_LINE = pattern(r"[ \t]{0,16}<(" + _ADDRESS + r")>[ \t]*")
_LABEL = pattern(
    r"[ \t]{0,8}(?:(?:(?:failed|intended|final|undeliverable|invalid|bad|unknown|rejected)[ \t]+)?"
    r"(?:recipient|rcpt|addressee)(?:[ \t]+address)?|(?:failed|undeliverable|invalid|bad|unknown|rejected)"
    r"[ \t]+(?:e-?mail[ \t]+)?address)(?:\(e?s\)|e?s)?[ \t]*:[ \t]*[<\"']?(" + _ADDRESS + ")",
    re.I,
)
_FAILURE_WORDS = pattern(
    r"\b(?:not|never|unable|undeliver\w*|fail\w*|error|problem|reject\w*|refused|unknown|invalid|exceed\w*"
    r"|full|quota|disabled|discontinued|suspended|inactive|no\s+such|cannot|bounced?|denied|blocked|expired"
    r"|unreachable|unrouteable|unavailable|giving\s+up|gave\s+up|delayed|temporary|permanent\w*)\b|n't\b",
    re.I,
)
# A leading address that a failure sentence is about: 'a@b does not exist'.
_VERB = pattern(r"""[>"]?[ \t]{1,4}(?:is|was|does|did|has|had|could|can|cannot|can't|doesn't|isn't|wasn't)\b""", re.I)
_SENTENCE = 120  # characters either side of an address its failure sentence is looked for in
_TO_BEFORE = pattern(
    r"""(?:\bto|\bfor|recipient|address|user|userid|mailbox|account|addressee)\s?:?\s{0,8}[<"'(\[]{0,2}(?:mailto:)?$
      | :\s{0,8}[<"'(\[]{0,2}$
      | \bto\s(?:"[^"<>]{1,40}"|[^\W\d_][\w.'-]{0,20}(?:\s[\w.'-]{1,20}){0,2})\s?<$  # to John Smith <a@b>""",
    re.I | re.X,
)
_NOT_RECIPIENT_BEFORE = pattern(
    r"(?:\bfrom|sender|reply|contact|assistance|help|write|questions|forward|send\s+(?:mail|e-?mail|a\s+message))"
    r"\b[^<>@]{0,30}$",
    re.I,
)
# No failed recipient: the mail system's own addresses in a failure sentence.
_SYSTEM = pattern(r"(?:mailer-daemon|postmaster|no-?reply)@", re.I)
_DAEMON = pattern(r"mailer-daemon@", re.I)
# Sendmail's '(expanded from: <alias>)' under a recipient: its DSN names the
# alias as the Final-Recipient (the expanded address as X-Actual-Recipient),
# so the alias is the one reported.
_SENDMAIL_ALIAS = pattern(r"[ \t]{1,16}\(expanded\s+from:\s{0,4}<?(" + _ADDRESS + ")>?\)")


@dataclass
class _Pass:
    """One pass over the report text: who may not be named, and where it is
    (in a recipient's block, in a list)."""

    own: set[str | None]  # the bounce's own sender
    senders: set[str | None]  # the original sender (MAIL FROM, the original's From:)
    everyone: set[str | None]  # and the bounce's To: (a bare address line may be any of them)
    system: bool  # the report comes from a mail system (a bare <address> line is a recipient)
    armed: int = 0  # lines left for a heading's first item; -1: in a list that has items
    block: int = -1  # indentation of the line that opened the current recipient's block; -1: none


def names_in(lines: list[str], report: Report) -> list[str]:
    """The failed recipients ``lines`` (of ``report``'s text) name, in order, once each."""
    aliases = a.aliases(lines)
    own = a.own(report)
    senders = own | a.senders(report, lines, bounce_to=False)
    state = _Pass(own, senders, senders | a.senders(report, lines), a.from_mail_system(report))
    names: dict[str | None, str] = {}  # of the lines that open a block
    mentioned: dict[str | None, str] = {}  # of failure sentences: only when no line opens a block
    last: str | None = None  # the key of the recipient whose block this is
    for line in lines:
        alias = _SENDMAIL_ALIAS.match(line) if state.armed else None
        if alias and state.block >= 0 and last in names:
            names[last] = alias.group(1)  # the expanded address's line came first
            continue
        if alias:  # under an item that is no address ('"|/usr/bin/procmail"')
            last = a.key(alias.group(1))
            names.setdefault(last, alias.group(1))
            continue
        opened, named = _line(line, state)
        for name in named:
            if a.key(name) not in aliases and not _DAEMON.match(name):
                (names if opened else mentioned).setdefault(a.key(name), name)
                last = a.key(name) if opened else last
    return a.unique((names or mentioned).values())


def _line(line: str, state: _Pass) -> tuple[bool, list[str]]:
    """Whether the line opens a recipient's block, and the recipients it
    names; moves ``state`` on."""
    stripped = line.strip()
    if not stripped:
        state.block = -1
        return False, []
    if a.HEADERISH.match(line):
        return False, []
    led = a.LED.match(line)
    indent = len(led.group(1)) if led else len(line) - len(line.lstrip())
    if not 0 <= state.block < indent:  # not a folded continuation of the block's first line
        named = next((n for rule in _OPENING for n in [rule(line, led, state)] if n), None)
        if named:
            if a.key(named) in state.own:
                return False, []
            state.block, state.armed = indent, -1 if state.armed else 0
            return True, [named]
    if len(stripped) <= _HEADING_CHARS and _HEADING.search(stripped) and not a.ADDR.search(line):
        state.armed, state.block = _ARMED_LINES, -1
        return False, []
    if state.armed < 0 and (_SEPARATOR.match(line) or _ends_section(line)):
        state.armed, state.block = 0, -1
        return False, []
    if state.armed > 0:
        state.armed -= 1
    if state.block >= 0:
        return False, []  # a recipient's own diagnostic: the addresses in it are its
    return False, [m.group() for m in a.ADDR.finditer(line) if _failure_sentence(line, m, state.senders)]


# -- the rules: a line that opens a recipient's block -----------------------------


def _anchor(line: str, led: re.Match | None, state: _Pass) -> str | None:
    return led.group(2) if led and _ANCHOR_TAIL.match(line, led.end()) else None


def _subject(line: str, led: re.Match | None, state: _Pass) -> str | None:
    """'a@b does not exist', '<a@b> is over quota'."""
    verb = _VERB.match(line, led.end()) if led else None
    return led.group(2) if verb and _FAILURE_WORDS.search(line, verb.start()) else None


def _label(line: str, led: re.Match | None, state: _Pass) -> str | None:
    m = _LABEL.match(line)
    return m.group(1) if m else None


def _list_item(line: str, led: re.Match | None, state: _Pass) -> str | None:
    if not state.armed:
        return None
    if led:
        return led.group(2)
    m = _NAMED.match(line)
    return m.group(1) if m else None


def _bare(line: str, led: re.Match | None, state: _Pass) -> str | None:
    m = _BARE_LINE.fullmatch(line) if state.system else None
    return m.group(1) if m and a.key(m.group(1)) not in state.everyone else None


_OPENING = (_anchor, _subject, _label, _list_item, _bare)


# -- the rule for the other lines, and where a list ends ---------------------------


def _failure_sentence(line: str, m: re.Match, senders: set[str | None]) -> bool:
    """The address follows 'to', 'for' or ':' in a sentence (the 120
    characters around it) that says delivery failed."""
    before = line[max(0, m.start() - 60) : m.start()]
    return bool(
        _TO_BEFORE.search(before[-24:])
        and not _NOT_RECIPIENT_BEFORE.search(before)
        and a.key(m.group()) not in senders
        and not _SYSTEM.match(m.group())
        and _FAILURE_WORDS.search(line[max(0, m.start() - _SENTENCE) : m.end() + _SENTENCE])
    )


def _ends_section(line: str) -> bool:
    """A heading of another section ('Diagnostic information for administrators:', 'because:')."""
    return line[:1] not in (" ", "\t") and line.rstrip().endswith(":") and not a.ADDR.search(line)
