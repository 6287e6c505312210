"""The answer contract, as types: what every door (``bouncebot ask --json``,
``POST /api/ask``, ``POST /widget/api/ask``, ``GET /api/lookup``) sends and
what every surface (the CLI, the chat, the widget) renders from.

Field names and meanings are the ones the JSON API has always had; what is
new is added beside them. A source says what it is (``kind``: a table ``row``,
with its ``code`` and the ``row`` itself, or an article ``section``), and every
row says where it is in the article (``section``, ``url``), so no client has to
match texts or parse the Markdown to find out. A pasted bounce's recipients
carry their ``action`` and a ``verdict`` (Bouncebot's reading: not the
article's words), and the answer and the look-up say what the pasted message
is (``message_kind``). The answerer decides the structured parts;
``answering.render`` writes the ``answer`` text (Markdown) from them alone.

``tests/integration/test_contract_compat.py`` holds every recorded field of
the old JSON in place.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.codes.verdict import RETRY

__all__ = [
    "Answer", "AskRequest", "CitedRow", "Code", "Draft", "Explanation", "Handoff", "HandoffField", "LLMReport", "Limits", "Lookup", "Notice", "Recipient", "RelatedRow",
    "Row", "Source", "Support", "Text", "Turn", "Verdict",
]


def _valid_text(value: str) -> str:
    """Reject lone UTF-16 surrogates (JSON allows ``"\\ud800"``; UTF-8 does not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains characters that are not text (a lone UTF-16 surrogate); send valid UTF-8") from None
    return value


Text = Annotated[str, AfterValidator(_valid_text)]
Severity = Literal["permanent", "temporary", "success", "unknown"]
MESSAGE_KIND = ("What a pasted message is (app.codes.kind): failure, delay (a delay warning), success (a report of "
                "delivery), autoreply (out of office), challenge (challenge-response), complaint (an ARF spam "
                "complaint) or not_report (no delivery report); None for a question")


# defer_build: a model's validator and serializer are built when it is first used, not at import
# (`bouncebot lookup` builds the Lookup's models only; the schema and the JSON are the same).
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


# ------------------------------------------------------------------ request

class _Request(BaseModel):
    # Fields a client adds are ignored, as they always were on POST /api/ask.
    model_config = ConfigDict(extra="ignore", defer_build=True)


class Turn(_Request):
    """One earlier message of the conversation, as chat clients send it. Each
    ``content`` is bounded like a question (BOUNCEBOT_MAX_QUESTION_BYTES, 413)."""

    role: Literal["user", "assistant"]
    content: Text


class AskRequest(_Request):
    question: Text = Field(description="The agent's question, or a pasted bounce message.")
    history: list[Turn] = Field(default_factory=list,
                                description="The conversation so far, oldest first: {role, content} turns.")


# ------------------------------------------------------------------- answer

class Row(_Model):
    """A row of the article's error table: its cells word for word, and where it is."""

    code: str
    meaning: str
    action: str
    section: str = Field(description="The article section holding the table")
    url: str = Field(description="Link to that section")

    @classmethod
    def of(cls, row) -> "Row":
        """From an ``app.knowledge.articles.ErrorRow``."""
        return cls(code=row.code, meaning=row.meaning, action=row.action, section=row.section, url=row.url)


class CitedRow(Row):
    """A table row and the article whose table holds it: one of the rows of a code
    that several articles' tables hold, each shown with its own citation."""

    article: str = Field(description="The title of the article holding the table")

    @classmethod
    def of(cls, row) -> "CitedRow":
        """From an ``app.knowledge.articles.ErrorRow``."""
        return cls(**Row.of(row).model_dump(), article=row.article)

    def plain(self) -> Row:
        """The row without its article, as ``Code.row`` and ``Source.row`` carry it."""
        return Row(**self.model_dump(exclude={"article"}))


class RelatedRow(Row):
    """A table row that shares part of a code the table lacks: never its meaning."""

    shares: str  # 'class and subject', 'reply code' or 'reply code, class and subject'

    @classmethod
    def of(cls, related) -> "RelatedRow":
        """From an ``app.codes.table.Related``."""
        return cls(**Row.of(related.row).model_dump(), shares=related.shares)


class Explanation(_Model):
    """General guidance for a code the table lacks: not from the article."""

    meaning: str
    action: str
    basis: Literal["provider", "registry", "class-subject", "reply-code"]
    sources: list[str]


class Code(_Model):
    text: str = Field(description="The code as it appears in the question")
    code: str = Field(description="Normalised: 550-5.1.1, 5.1.1 or 550")
    match: Literal["exact", "none"]
    row: Row | None = Field(description="The table row, verbatim; only when match is exact (the first of rows)")
    rows: list[CitedRow] = Field(default_factory=list, description="Every table row holding the code, verbatim, each "
                            "with its own article and section: several when several articles' tables hold it, "
                            "never merged; empty when match is none")
    severity: Severity
    explanation: Explanation | None = Field(description="General guidance; only when match is none")
    related: list[RelatedRow] = Field(description="Closest rows of the table; only when match is none")
    reason: str | None = Field(description="Bounce category, e.g. user_unknown")
    from_history: bool = Field(default=False,
                               description="Carried from an earlier turn of the conversation, not in this message")

    @classmethod
    def of(cls, m) -> "Code":
        """From an ``app.codes.table.CodeMatch``: the row when exact, else general guidance and related rows."""
        e = None if m.exact else m.explanation
        return cls(
            text=m.found.text, code=m.found.code, match="exact" if m.exact else "none",
            row=Row.of(m.row) if m.exact else None, rows=[CitedRow.of(r) for r in m.rows] if m.exact else [],
            severity=m.found.severity,
            explanation=None if e is None else Explanation(meaning=e.meaning, action=e.action, basis=e.basis,
                                                           sources=list(e.sources)),
            related=[RelatedRow.of(r) for r in m.related], reason=m.reason,
        )


class Source(_Model):
    """A cited part of the article: a table row or a section passage."""

    kind: Literal["row", "section"]
    code: str | None = Field(default=None, description="The row's code; only for kind row")
    row: Row | None = Field(default=None, description="The row, verbatim; only for kind row")
    article: str
    section: str
    url: str
    text: str = Field(description="The passage; for a row, 'code: meaning action'")
    focused: str | None = Field(default=None, description="For a section: the sentences or list items of the "
                                "passage that answer the question, verbatim, as the answer quotes them")
    score: float


class Verdict(_Model):
    """What a recipient's failure means for the address and what to do next: Bouncebot's
    reading of the bounce (``app.codes.verdict``), never the article's words."""

    reason: str = Field(description="Why delivery failed, in Sisimai's taxonomy: userunknown, mailboxfull, "
                        "filtered, blocked, expired, hostunknown, authfailure, spamdetected, ...; "
                        "undefined when the bounce does not tell")
    hard: bool = Field(description="A hard bounce: the failure is permanent for this address")
    retry: Literal[RETRY] = Field(description="Whether resending can help: no (use another address or channel), "
                                  "after_fix (once the cause is fixed), later (a temporary condition), "
                                  "wait (not failed yet: the sending server keeps trying)")
    suppress: bool = Field(description="The address belongs on a suppression list now")
    evidence: str | None = Field(description="The line of the bounce the reason was read from, as pasted "
                                 "(at most ~200 characters); None when none")
    basis: str = Field(description="What decided the reason: provider (a provider's documented wording), text "
                       "(the server's words), status (the enhanced status code), reply (the reply code) or kind "
                       "(what the message is)")


class Recipient(_Model):
    """A recipient of a pasted bounce (failed, or delayed in a delay warning) and its decisive code."""

    recipient: str | None
    status: str | None
    reply_code: str | None
    diagnostic: str | None
    decisive: str
    action: Literal["failed", "delayed", "delivered", "relayed", "expanded"] = Field(
        default="failed", description="The delivery-status report's Action for this recipient (RFC 3464)")
    verdict: Verdict | None = Field(default=None, description="What the failure means for the address and what "
                                    "to do next (Bouncebot's reading, not the article's); None when there is none")

    @classmethod
    def of(cls, r) -> "Recipient":
        """From an ``app.codes.bounce.Recipient`` (its ``verdict`` an ``app.codes.verdict.Verdict`` or None)."""
        d = r.to_dict()
        return cls(**{k: d[k] for k in cls.model_fields})


class Limits(_Model):
    """How much of the text was looked at: a cap may have left codes or recipients out."""

    codes_found: int
    codes_examined: int
    recipients_found: int
    recipients_examined: int
    truncated: bool

    @classmethod
    def of(cls, limits) -> "Limits":
        """From an ``app.codes.table.Limits``."""
        return cls(**limits.as_contract())


class Support(_Model):
    """The article's own 'get more help' section, quoted when the article has no answer."""

    article: str
    section: str
    url: str
    text: str


class Notice(_Model):
    """Something the answer must say about itself: a cap left codes or
    recipients out, or the article's passages could not be searched."""

    kind: Literal["codes_capped", "recipients_capped", "search_unavailable"]
    text: str = Field(description="The sentence to show, plain text (also in the Markdown answer)")


class Draft(_Model):
    """A message the agent can send the customer on another channel: not the article's words."""

    label: str = Field(description="Says it is a draft, not from the article")
    channel: Literal["message", "email"] = Field(description="message: chat, SMS or WhatsApp; email: a corrected address")
    text: str = Field(description="The draft, plain text, ready to copy")
    reason: str | None = Field(default=None, description="The bounce reason it was written for, e.g. mailbox_full")
    codes: list[str] = Field(default_factory=list, description="The codes it is about")


class HandoffField(_Model):
    name: str = Field(description="What the article's 'Need more help?' section asks for")
    value: str | None = Field(description="Filled from the conversation; None: the agent must add it")


class Handoff(_Model):
    """A support request prefilled with what the article's support section asks for."""

    to: str | None = Field(description="The support address (BOUNCEBOT_SUPPORT_EMAIL); None when not set")
    mailto: str | None = Field(description="A mailto: link with subject and body; only when the address is set")
    subject: str
    fields: list[HandoffField]
    text: str = Field(description="The request as plain text, ready to copy")


class LLMReport(_Model):
    """What the language-model mode did for one answer (``BOUNCEBOT_LLM=local|openai``): None when it is off."""

    model: str = Field(description="The chat model asked (its name or file)")
    used: bool = Field(description="Whether the model's text is in the shown answer (False: not asked, or it fell back)")
    fallback: Literal["timeout", "server_error", "unknown_code", "unsupported_sentence", "refused", "empty"] | None = (
        Field(default=None, description="Why the default mode's answer is shown instead; None when the model's text "
              "was kept, or when the model was not asked (an answer the model has nothing to add to)"))
    interventions: list[str] = Field(default_factory=list, description="The guard's checks that fired, such as "
                                     "'unknown_code:550-5.9.9' or 'unsupported:<first 60 characters of the sentence>'")
    generated: str | None = Field(default=None, description="The model's text as shown, or the rejected text when "
                                  "it fell back; None when the model was not asked or gave nothing")
    ttft_s: float | None = Field(default=None, description="Seconds to the model's first token")
    total_s: float | None = Field(default=None, description="Seconds to the model's whole text (guard excluded)")


class Answer(_Model):
    question: str
    answer: str = Field(description="The whole answer as Markdown, rendered from the fields below")
    answered: bool = Field(description="False when the article does not answer the question")
    codes: list[Code] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    recipients: list[Recipient] = Field(default_factory=list)
    limits: Limits | None = None
    notices: list[Notice] = Field(default_factory=list)
    support: Support | None = Field(default=None, description="Quoted when the article has no answer")
    other_article: str | None = Field(default=None,
                                      description="The help-centre article the question seems to belong to")
    intent: Literal["question", "follow_up", "small_talk", "draft", "handoff"] = Field(
        default="question", description="What the message was taken to be, given the conversation")
    draft: Draft | None = Field(default=None, description="For intent draft: a message for the customer")
    handoff: Handoff | None = Field(default=None, description="For intent handoff: the support request")
    message_kind: str | None = Field(default=None, description=MESSAGE_KIND)
    mode: Literal["default", "llm"] = Field(default="default", description="Which mode produced the shown answer: "
                                            "default (no language model) or llm (the model's text, guarded)")
    llm: LLMReport | None = Field(default=None, description="What the language-model mode did; None when it is off")

    @property
    def exact(self) -> bool:
        """Whether some code matched a table row exactly (then the sources are those rows)."""
        return any(c.match == "exact" for c in self.codes)

    def to_dict(self) -> dict:
        """The JSON object, as ``bouncebot ask --json`` prints it."""
        return self.model_dump(mode="json")


class Lookup(_Model):
    """``bouncebot lookup --json`` and ``GET /api/lookup``: the codes in a text, no model."""

    text: str
    codes: list[Code]
    recipients: list[Recipient]
    limits: Limits
    message_kind: str | None = Field(default=None, description=MESSAGE_KIND)
