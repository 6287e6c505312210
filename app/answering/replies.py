"""The conversation's own replies, as contract parts: a draft for the customer
and a support request prefilled from the conversation.

- ``draft(reading, facts)``: a template per bounce reason (``data/drafts.yaml``,
  plain customer language), for the conversation's first code's reason, or the
  one asking for a different address; always labelled as Bouncebot's draft.
- ``handoff(support, facts, codes, to)``: the article's "Need more help?" items,
  read from its section (not written here), each filled from the conversation
  or left for the agent to add; a ``mailto:`` link only when the support
  address is set (``BOUNCEBOT_SUPPORT_EMAIL``).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from app._data import data_file
from app.answering.contract import Code, Draft, Handoff, HandoffField, Support
from app.answering.conversation import Reading
from app.answering.handoff import fill

DRAFTS = data_file("app.answering", "drafts.yaml")
_ITEM = re.compile(r"^\s*[-*+]\s+(.*\S)\s*$", re.M)


def _oneline(text: str) -> str:
    return " ".join(text.split())


def draft(reading: Reading, wording: dict, address: str | None) -> Draft:
    codes = reading.codes or []
    reason = next((c.reason for c in codes if c.reason), None)
    if reading.address_request:
        template, reason_used = DRAFTS["address"], reason
    elif reason in DRAFTS["reasons"]:
        template, reason_used = DRAFTS["reasons"][reason], reason
    else:
        template, reason_used = DRAFTS["default"], reason
    text = _oneline(template).format(address=address or DRAFTS["your_address"])
    return Draft(label=wording["draft"]["label"], channel=reading.channel, text=text, reason=reason_used,
                 codes=[c.code for c in codes])


def support_items(support: Support | None) -> list[str]:
    """The details the article's support section asks for: its list items, verbatim."""
    return [m.group(1) for m in _ITEM.finditer(support.text)] if support is not None else []


def handoff(support: Support | None, facts: dict, codes: list[Code], to: str | None, wording: dict) -> Handoff:
    w = wording["handoff"]
    fields = [HandoffField(name=name, value=fill(name, facts)) for name in support_items(support)]
    code = facts.get("code")
    subject = w["subject"].format(code=code) if code else w["subject_no_code"]
    lines = [w["greeting"], "", w["body"], ""]
    lines += [f"- {f.name}: {f.value if f.value is not None else w['add'].format(name=f.name.lower())}" for f in fields]
    lines += ["", w["closing"]]
    text = "\n".join(lines)
    mailto = None
    if to:
        mailto = f"mailto:{quote(to, safe='@')}?subject={quote(subject)}&body={quote(text)}"
    return Handoff(to=to or None, mailto=mailto, subject=subject, fields=fields, text=text)
