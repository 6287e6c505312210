"""The renderer alone, from hand-built contract objects (no table, no model):
what each decided part becomes in the Markdown answer and in the CLI's lines.
That it writes exactly what the answerer wrote before is pinned against
recordings in ``tests/integration/test_contract_compat.py``."""

from __future__ import annotations

import pytest

from app.answering import render
from app.answering.contract import (Answer, Code, Explanation, Limits, Lookup, Recipient, RelatedRow, Row, Source,
                                    Support)
from app.answering.render import WORDING, lookup_text, markdown, notice, plain

URL = "https://help.example.com/a#errors"
# Words with what str.format and Markdown would read as markup: they must come out as they are.
ROW = Row(code="550-5.1.1", meaning="No such {user}: **gone**.", action="Check the address_{x} first.",
          section="Errors", url=URL)
SUPPORT = Support(article="Delivery Errors", section="Need help?", url=URL + "-help",
                  text="Write to us.\n\n- with the link")
W = WORDING


def exact(text="550 5.1.1", code="550-5.1.1", row=ROW, severity="permanent") -> Code:
    return Code(text=text, code=code, match="exact", row=row, severity=severity, explanation=None, related=[],
                reason="user_unknown")


def untabled(code="550-5.7.26", explanation=True, related=()) -> Code:
    e = Explanation(meaning="Auth failed.", action="Set up SPF.", basis="registry", sources=["https://iana.org"])
    return Code(text=code, code=code, match="none", row=None, severity="temporary",
                explanation=e if explanation else None, related=list(related), reason=None)


def row_source(row=ROW, score=1.0) -> Source:
    return Source(kind="row", code=row.code, row=row, article="Delivery Errors", section=row.section, url=row.url,
                  text=f"{row.code}: {row.meaning} {row.action}", score=score)


def section_source(text="First line.\n\nSecond *para*.", section="Bounce list", score=0.61) -> Source:
    return Source(kind="section", article="Delivery Errors", section=section, url=URL + "-list", text=text,
                  score=score)


def answer(**parts) -> Answer:
    return Answer(question="q", answer="", answered=bool(parts.get("sources")), **parts)


def cite(s: Source) -> str:
    return W["citation"].format(article=s.article, section=s.section, url=s.url)


# ------------------------------------------------------------------ Markdown

def test_an_exact_code_is_its_heading_and_the_rows_words_quoted_verbatim():
    md = markdown(answer(codes=[exact()], sources=[row_source()]))
    head = W["exact_heading"].format(code="550-5.1.1", via="", severity_label="permanent failure",
                                     section="Errors", url=URL)
    assert md == (f"{head}\n\n> **{W['meaning_label']}:** No such {{user}}: **gone**.\n>\n"
                  f"> **{W['action_label']}:** Check the address_{{x}} first.")
    assert "Delivery Errors ›" not in md  # the row is cited in its heading, not again as a passage


def test_a_code_matched_through_another_row_code_says_which_row():
    md = markdown(answer(codes=[exact(text="5.1.1", code="5.1.1")], sources=[row_source()]))
    assert md.startswith("**5.1.1** (table row 550-5.1.1): permanent failure, from the table in [Errors](")


def test_an_untabled_code_gets_no_row_words_but_labelled_general_guidance_and_related_rows():
    related = [RelatedRow(**ROW.model_dump(), shares="reply code")]
    md = markdown(answer(codes=[untabled(related=related)], support=SUPPORT))
    blocks = md.split("\n\n")
    assert blocks[0] == W["not_in_table"].format(code="550-5.7.26", severity_label="temporary failure")
    assert blocks[1] == W["general_heading"].format(basis_label=W["basis_labels"]["registry"])
    assert blocks[2] == f"> Auth failed.\n>\n> **{W['general_action_label']}:** Set up SPF."
    assert blocks[3] == W["related_line"].format(codes=f"[550-5.1.1]({URL}) (reply code)")
    assert ROW.meaning not in md and ROW.action not in md  # a related row is offered by its code only
    assert blocks[4] == W["support_intro"].format(section="Need help?", url=URL + "-help")  # no passage: get help


def test_an_untabled_code_nothing_explains_says_so():
    md = markdown(answer(codes=[untabled(explanation=False)]))
    assert md.split("\n\n") == [W["not_in_table"].format(code="550-5.7.26", severity_label="temporary failure"),
                                W["no_general"]]  # and no support block: the answer has none


def test_passages_are_quoted_with_their_citations_a_row_passage_as_its_row():
    sec, row = section_source(), row_source(score=0.5)
    md = markdown(answer(sources=[sec, row]))
    assert md == "\n\n".join([
        W["passages_intro"].format(article="Delivery Errors"),
        "> First line.\n>\n> Second *para*.", cite(sec),
        f"> **550-5.1.1**\n>\n> **{W['meaning_label']}:** {ROW.meaning}\n>\n> **{W['action_label']}:** {ROW.action}",
        cite(row),
    ])


def test_passages_after_an_untabled_code_are_introduced_as_general():
    md = markdown(answer(codes=[untabled()], sources=[section_source()]))
    assert W["passages_intro_after_codes"] in md.split("\n\n")
    assert W["passages_intro"].format(article="Delivery Errors") not in md
    assert W["support_intro"].split("{")[0] not in md  # passages found: no support block


def test_a_refusal_says_it_does_not_know_names_the_other_article_and_quotes_support():
    md = markdown(answer(support=SUPPORT, other_article="Single Sign-On"))
    first = W["dont_know"].format(article="Delivery Errors") + " " + W["other_article"].format(title="Single Sign-On")
    assert md == "\n\n".join([first, W["support_intro"].format(section="Need help?", url=URL + "-help"),
                              "> Write to us.\n>\n> - with the link"])


@pytest.mark.parametrize("articles,count", [(2, "2"), (10001, "10,001")])
def test_a_refusal_from_a_kb_of_several_articles_names_the_help_centre_not_one_article(articles, count):
    md = markdown(answer(support=SUPPORT), articles=articles)
    assert md == "\n\n".join([W["dont_know_many"].format(count=count),
                                W["support_intro_many"].format(section="Need help?", url=URL + "-help",
                                                               article="Delivery Errors"),
                                "> Write to us.\n>\n> - with the link"])
    assert "Delivery Errors* does not answer" not in md and "I only answer from it" not in md
    # the codes alone (no passage): the support line names its article too
    coded = markdown(answer(codes=[untabled()], support=SUPPORT), articles=articles)
    assert W["support_intro_many"].format(section="Need help?", url=URL + "-help", article="Delivery Errors") in coded


def test_a_refusal_without_a_support_section_is_the_sentence_alone():
    assert markdown(answer()) == W["dont_know"].format(article=render.FALLBACK_ARTICLE)


def test_the_caps_are_one_paragraph_recipients_first_and_search_down_follows():
    codes_cap = notice("codes_capped", examined=50, found=1200)
    rcpt_cap = notice("recipients_capped", examined=100, found=101)
    down = notice("search_unavailable", problem="the store did not answer")
    md = markdown(answer(codes=[untabled(explanation=False)], notices=[down, codes_cap, rcpt_cap]))
    blocks = md.split("\n\n")
    assert blocks[2] == f"{rcpt_cap.text} {codes_cap.text}" and "1,200" in codes_cap.text
    assert blocks[3] == down.text == W["search_unavailable"].format(problem="the store did not answer")


def test_search_down_is_not_said_when_an_exact_code_needed_no_search():
    down = notice("search_unavailable", problem="x")
    assert down.text not in markdown(answer(codes=[exact()], sources=[row_source()], notices=[down]))


@pytest.mark.parametrize("kind,values,key", [
    ("codes_capped", {"examined": 50, "found": 60}, "limits_codes"),
    ("recipients_capped", {"examined": 100, "found": 4000}, "limits_recipients"),
    ("search_unavailable", {"problem": "timed out"}, "search_unavailable"),
])
def test_a_notice_is_its_kind_and_the_wording_filled_in(kind, values, key):
    n = notice(kind, **values)
    assert (n.kind, n.text) == (kind, W[key].format(**values))
    assert "{" not in n.text


# ---------------------------------------------------------------- plain text

def test_plain_takes_the_markdown_out_of_a_template_only():
    template = "**{code}**{via}: see [{section}]({url}) and *{article}* `x`"
    assert plain(template) == "{code}{via}: see {section} and {article} x"
    assert plain(W["general_heading"]) == "General guidance, not from the article (from {basis_label}):"


def lookup(codes, recipients=()) -> Lookup:
    return Lookup(text="t", codes=codes, recipients=list(recipients),
                  limits=Limits(codes_found=len(codes), codes_examined=len(codes), recipients_found=len(recipients),
                                recipients_examined=len(recipients), truncated=False))


def test_the_cli_lines_of_a_lookup():
    related = [RelatedRow(**ROW.model_dump(), shares="reply code"), RelatedRow(**{**ROW.model_dump(), "code": "550"},
                                                                               shares="reply code")]
    recipients = [Recipient(recipient="a@example.org", status="5.1.1", reply_code="550", diagnostic="d",
                            decisive="from the Diagnostic-Code"),
                  Recipient(recipient=None, status=None, reply_code=None, diagnostic=None, decisive="none found")]
    text = lookup([exact(text="5.1.1", code="5.1.1"), untabled(related=related)], recipients)
    assert lookup_text(text).splitlines() == [
        "Recipient a@example.org: 550 5.1.1 (from the Diagnostic-Code)",
        "Recipient (not named): no code (none found)",
        "5.1.1  exact: table row 550-5.1.1 (permanent failure)",
        "  What it means: No such {user}: **gone**.",
        "  What you can do: Check the address_{x} first.",
        "550-5.7.26  not in the article's table (temporary failure)",
        "  General guidance, not from the article (from the IANA registry of SMTP enhanced status codes): "
        "Auth failed.",
        "  What you can generally do: Set up SPF.",
        "  Closest in the article's table (different codes, not an exact match): 550-5.1.1, 550.",
    ]


def test_the_cli_lines_name_one_recipient_only_when_the_bounce_names_it_and_say_when_no_code_is_found():
    unnamed = Recipient(recipient=None, status="5.1.1", reply_code=None, diagnostic=None, decisive="why")
    assert lookup_text(lookup([], [unnamed])) == W["labels"]["no_codes"]


def test_the_cli_lines_are_the_wording_files(monkeypatch):
    monkeypatch.setitem(W["cli"], "exact", "{code} IS {table_row} / {severity_label}")
    monkeypatch.setitem(W["labels"], "table_row", "row {row_code}")
    monkeypatch.setitem(W["severity_labels"], "permanent", "for good")
    assert lookup_text(lookup([exact()])).splitlines()[0] == "550-5.1.1 IS row 550-5.1.1 / for good"
