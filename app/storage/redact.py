"""Personal data out of the conversation log's text, before it is stored.

``redact(text)`` replaces, in this order:

- email addresses (the local part goes with the address) -> ``[email]``;
- phone numbers -> ``[phone]``: international (``+44 20 7946 0958``, ``0044 ...``), with an area
  code in brackets (``(555) 010-9999``), national with a trunk 0 (``030 1234567``), the North
  American ``555-010-9999`` shape, or any run of 7 to 15 digits right after a word such as
  "phone", "call" or "mobile". Never an SMTP code (``550-5.1.1``, ``421 4.7.28``), a date, a time,
  an IP address or a bare number (a ticket id, a timestamp);
- names of people -> ``[name]``: the capitalised words after a greeting or a sign-off ("Hi Anna",
  "Thanks,\\nJohn Doe"), after a title ("Mr. Smith"), or after a word that introduces a person
  ("my customer Maria Lopez", "my name is ..."). Product and company names met in bounces
  (Gmail, Microsoft 365, Outlook, ...) and ordinary capitalised words are never taken for names.

It is a net, not a proof: a name with no cue before it is kept. Nothing here imports the code
look-up (the storage layer sits below it); ``tests/unit/test_redact.py`` checks that every code the
look-up finds in the eval questions survives redaction.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")

# A run of digit groups that might be a phone number; checked by ``_is_phone``.
_PHONE_CANDIDATE = re.compile(
    r"(?<![\w/.:@+-])(?:\+|00(?=\d))?(?:\(\d{1,5}\)[ .-]?)?\d{1,15}(?:(?:[ .-]|[ .-]?\(\d{1,5}\)[ .-]?)\d{1,15}){0,6}"
    r"(?![\w/:@]|[.,-]\d)")
_SMTP_CODE = re.compile(r"(?<!\d)[245]\.\d{1,3}\.\d{1,3}(?!\d)")
_IP = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_NANP = re.compile(r"\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}")
_PHONE_CUE = re.compile(r"(?i:\b(?:phone|tel|telephone|mobile|cell|call|text|sms|whatsapp|fax|number|"
                        r"ring|reach (?:me|him|her|them) (?:at|on))\b)[\s:.#-]*(?:is\s+|at\s+|on\s+)?$")


def _is_phone(candidate: str, before: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if not 7 <= digits <= 15:
        return False
    if _SMTP_CODE.search(candidate) or _IP.fullmatch(candidate) or _DATE.fullmatch(candidate):
        return False
    if candidate.startswith("+") or candidate.startswith("00"):
        return digits >= 8
    if "(" in candidate or _NANP.fullmatch(candidate):
        return True
    if candidate.startswith("0") and digits >= 9 and "." not in candidate:
        return True
    return bool(_PHONE_CUE.search(before[-30:]))


def _phones(text: str) -> str:
    out, last = [], 0
    for m in _PHONE_CANDIDATE.finditer(text):
        candidate = m.group().rstrip(" .-")
        if _is_phone(candidate, text[max(0, m.start() - 40):m.start()]):
            out.append(text[last:m.start()] + "[phone]")
            last = m.start() + len(candidate)
    return "".join(out) + text[last:]


# Capitalised words that are not people's names where a cue might put one.
NOT_NAMES = frozenset("""
mr mrs ms miss mx dr prof all everyone everybody team there folks guys sir madam madame support friend friends
colleague colleagues bouncebot sparrowdesk gmail google googlemail workspace microsoft outlook hotmail live
msn office exchange yahoo aol icloud apple proton protonmail zoho gmx yandex mailchimp sendgrid mailgun
postmark amazon ses postmaster mailer-daemon daemon twilio whatsapp slack zendesk freshdesk intercom
salesforce hubspot postfix exim sendmail qmail inbox smtp mail email help centre center admin administrator
agent agents customer customers user users i i'm im you we they he she it this that these those there here
what why how when where who which can could would should will shall may might must do does did is are was were
be been am please the a an and or but so if then also just again still now today tomorrow yesterday monday
tuesday wednesday thursday friday saturday sunday january february march april june july august september
october november december morning afternoon evening night hello hi hey dear thanks thank regards best cheers
sincerely greetings ok okay yes no sorry bounce bounced error errors delivery code codes common
troubleshooting need more new my our your his her their its any some every each another other
""".split())

_UP, _LOW = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
# Anna, O'Neil, McDonald, Mary-Jane
_WORD = rf"[{_UP}](?:['’]?[{_UP}])?[{_LOW}]+(?:[{_UP}][{_LOW}]+)?(?:[-'’][{_UP}]?[{_LOW}]+)*"
_NAME = rf"(?P<name>{_WORD}(?:[ \t]+(?:{_WORD}|[A-Z]\.))*)"
_TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?"
_GREETING = (r"(?i:\b(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|thanks|thank you|many thanks|cheers)\b)"
             r"[,!.]?[ \t]*")
_SIGN_OFF = (r"(?i:\b(?:regards|best regards|kind regards|warm regards|best wishes|best|sincerely|yours|thanks|"
             r"thank you|many thanks|cheers)\b)"
             r"(?:,[ \t]*\n?|[!.]?[ \t]*\n)[ \t]*")
# Words that introduce a person, in lower case (Title Case text such as "A Customer Reply" is not a cue).
_INTRO = (r"(?:\b(?:customer|client|contact|colleague|recipient|sender|caller|manager|boss|coworker|co-worker|"
          r"named|called|name is|name's|i am|i'm|this is|ask|tell|cc)|\bI am|\bI'm|\bThis is|\bMy name is)"
          r"\b[,:]?[ \t]+")
_CUED_NAME = re.compile(rf"(?:{_GREETING}|{_SIGN_OFF}|{_INTRO})(?:{_TITLE}[ \t]+)?{_NAME}")
_TITLED_NAME = re.compile(rf"\b{_TITLE}[ \t]+{_NAME}")


def _ordinary(word: str) -> bool:
    return re.sub(r"['’]s$", "", word).strip("'’-").lower() in NOT_NAMES


def _replace_name(m: re.Match) -> str:
    """The match with the leading words of its name that are not ordinary words replaced by [name]."""
    kept_end = None
    for w in re.finditer(r"\S+", m.group("name")):
        if _ordinary(w.group()):
            break
        kept_end = w.end()
    if kept_end is None:
        return m.group()
    start = m.start("name") - m.start()
    return m.group()[:start] + "[name]" + m.group()[start + kept_end:]


def _names(text: str) -> str:
    return _CUED_NAME.sub(_replace_name, _TITLED_NAME.sub(_replace_name, text))


def redact(text: str) -> str:
    """``text`` with email addresses, phone numbers and people's names replaced (module docstring)."""
    if not text:
        return text
    text = EMAIL.sub("[email]", text)
    text = _phones(text)
    return _names(text)
