"""Conversations (issue 11), fast: follow-ups resolve against the earlier turns,
new topics carry nothing, small talk, drafts for the customer, hand-offs to
support, the history bound. The real answerer over the real KB; the search is a
``FakeRetriever`` that is down unless a test says otherwise, so a follow-up
that needed the search would fail (resolution never searches).
"""

from __future__ import annotations

import time

import pytest

from app._data import data_file
from app.answering.answerer import Answerer
from app.answering.conversation import Conversation
from app.answering.contract import Turn
from app.codes.table import CodeTable
from app.errors import QuestionTooLong, SearchUnavailable
from app.knowledge.articles import ErrorRow

from ..fakes import FakeRetriever, cells, chunk, fake_services, hit, kb_articles, kb_rows, result, services_with, wording

W = wording()
DRAFTS = data_file("app.answering", "drafts.yaml")
SUPPORT = next(s for s in kb_articles()[0].sections if s.heading == "Need more help?")
SUPPORT_ITEMS = [line[2:].strip() for b in SUPPORT.blocks for line in b.text.splitlines() if line.startswith("- ")]
TROUBLESHOOTING = "Troubleshooting message delivery failures"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("conversation_index"))


@pytest.fixture(scope="module")
def services(base):
    """Search is down: whatever needs it raises SearchUnavailable."""
    return services_with(base, FakeRetriever(SearchUnavailable("the fake store is down")))


def with_articles(services, **settings) -> Answerer:
    """The answerer as ``build`` makes it (the KB's articles, the conversation settings)."""
    a = services.answerer
    return Answerer(services.table, lambda: a.retriever, support=a.support, top_k=a.top_k,
                    min_similarity=a.min_similarity, max_question_bytes=a.max_question_bytes,
                    articles=kb_articles(), **settings)


@pytest.fixture(scope="module")
def answerer(services):
    return with_articles(services)


def talk(answerer, *messages, history=None):
    """Each message answered with the conversation so far; the last answer as JSON."""
    history = list(history or [])
    answer = None
    for m in messages:
        answer = answerer.ask(m, history)
        history += [{"role": "user", "content": m}, {"role": "assistant", "content": answer.answer}]
    return answer.to_dict()


def carried(d: dict) -> list[str]:
    return [c["code"] for c in d["codes"] if c["from_history"]]


# ------------------------------------------------------- code follow-ups

FIRST_TURNS = {
    "What does 552-5.2.2 mean?": "552-5.2.2",
    "customer's reply bounced with 550 5.1.1": "550-5.1.1",
    "got 421 #4.7.28 on a reply to gmail": "421-4.7.28",
    "Remote server said: 554 5.4.7 delivery expired": "554-5.4.7",
}
FOLLOW_UPS = [
    "ok so what now?", "how do I fix it?", "will it clear up by itself?", "what does that mean?",
    "what next?", "and what should I do?", "why?", "is that permanent?", "what do I do now",
    "so what does the code mean", "how do i fix this", "and then?", "any idea how long it lasts?",
    "what can I do about that error", "ok", "meaning?",
]


@pytest.mark.parametrize("first", FIRST_TURNS)
@pytest.mark.parametrize("follow_up", FOLLOW_UPS)
def test_a_follow_up_is_about_the_earlier_code_its_row_verbatim(answerer, first, follow_up):
    d = talk(answerer, first, follow_up)
    row_code = FIRST_TURNS[first]
    assert d["intent"] == "follow_up" and d["answered"] is True
    assert carried(d) == [row_code] and len(d["codes"]) == 1
    code = d["codes"][0]
    assert code["match"] == "exact" and code["row"]["code"] == row_code
    assert (code["row"]["meaning"], code["row"]["action"]) == kb_rows()[row_code]
    assert code["row"]["meaning"] in d["answer"] and code["row"]["action"] in d["answer"]
    assert [s["kind"] for s in d["sources"]] == ["row"] and d["sources"][0]["code"] == row_code
    assert "I don't know" not in d["answer"]


def test_the_issues_example_ok_so_what_now(answerer):
    d = talk(answerer, "What does 552-5.2.2 mean?", "ok so what now?")
    assert d["codes"][0]["code"] == "552-5.2.2" and d["codes"][0]["from_history"] is True
    assert cells(d["codes"][0]["row"]) == {"code": "552-5.2.2", "meaning": kb_rows()["552-5.2.2"][0],
                                           "action": kb_rows()["552-5.2.2"][1]}


@pytest.mark.parametrize("follow_up, expected", [
    ("what about the second code?", ["552-5.2.2"]),
    ("and the first one?", ["550-5.7.1"]),
    ("what does the last code mean", ["552-5.2.2"]),
    ("and the 2nd?", ["552-5.2.2"]),
    ("how do I fix them?", ["550-5.7.1", "552-5.2.2"]),
])
def test_an_ordinal_picks_one_of_the_earlier_codes(answerer, follow_up, expected):
    d = talk(answerer, "we got 550 5.7.1 and 552 5.2.2 on the same reply", follow_up)
    assert carried(d) == expected and d["intent"] == "follow_up"


def test_a_picked_code_stays_picked_for_the_next_follow_up(answerer):
    d = talk(answerer, "we got 550 5.7.1 and 552 5.2.2", "what about the second code?", "will it clear up by itself?")
    assert carried(d) == ["552-5.2.2"]


def test_a_bare_enhanced_code_after_a_code_is_its_own_row(answerer):
    d = talk(answerer, "What does 550-5.1.1 mean?", "and 4.7.28?")
    assert d["intent"] == "question" and carried(d) == []  # a code of its own: nothing to complete
    assert [(c["code"], c["row"]["code"]) for c in d["codes"]] == [("4.7.28", "421-4.7.28")]


def test_a_bare_enhanced_code_takes_the_earlier_reply_code_when_that_makes_a_row():
    # Two rows share 5.7.1: alone it matches neither exactly; after "554 ..." it is 554-5.7.1.
    rows = [ErrorRow(code, "meaning " + code, "action " + code, "A", "Table", "https://x/#table", None, 1)
            for code in ("550-5.7.1", "554-5.7.1", "554-5.4.4")]
    table = CodeTable(rows)
    conv = Conversation(table)
    alone = conv.read("what about 5.7.1?", [])
    assert alone.intent == "question"
    reading = conv.read("and 5.7.1?", [Turn(role="user", content="got 554 5.4.4"), Turn(role="assistant", content="…")])
    assert reading.intent == "follow_up" and [(c.text, c.code, c.match) for c in reading.codes] == [
        ("5.7.1", "554-5.7.1", "exact")]
    assert reading.codes[0].from_history is False


def test_a_carried_untabled_code_gets_no_row(answerer):
    d = talk(answerer, "what does 550 5.7.26 mean?", "how do I fix it?")
    code = d["codes"][0]
    assert code["code"] == "550-5.7.26" and code["from_history"] is True
    assert code["match"] == "none" and code["row"] is None
    assert not any(s["kind"] == "row" for s in d["sources"])
    assert "not in the article's table" in d["answer"]


@pytest.mark.parametrize("new_topic", [
    "how do I create a macro?", "How do I get an address off the bounce list?", "what does the pro plan cost",
    "Can I change the colour of the inbox?",
])
def test_a_new_topic_does_not_drag_the_old_code_along(services, new_topic):
    nothing = services_with(services, FakeRetriever(result([], best_similarity=0.0)))
    d = talk(with_articles(nothing), "What does 552-5.2.2 mean?", new_topic)
    assert d["codes"] == [] and d["intent"] == "question"


def test_without_history_a_follow_up_phrase_is_a_plain_question(services):
    nothing = services_with(services, FakeRetriever(result([], best_similarity=0.0)))
    d = with_articles(nothing).ask("ok so what now?").to_dict()
    assert d["intent"] == "question" and d["codes"] == [] and d["answered"] is False


# ------------------------------------------------------------- topics

def first_answer_on(services, section: str) -> dict:
    """The first answer quoting ``section`` (what the search found)."""
    found = services_with(services, FakeRetriever(result([hit(chunk(section), 0.9)])))
    return with_articles(found).ask("my reply failed to send, what should I do?").to_dict()


@pytest.mark.parametrize("follow_up", ["still failing after all those steps", "ok so what now?", "what next?",
                                       "none of that worked", "where do I send that request?"])
def test_after_the_whole_troubleshooting_list_comes_support(services, answerer, follow_up):
    first = first_answer_on(services, TROUBLESHOOTING)
    history = [{"role": "user", "content": first["question"]}, {"role": "assistant", "content": first["answer"]}]
    d = answerer.ask(follow_up, history).to_dict()
    assert d["intent"] == "handoff" and d["handoff"] is not None
    assert [s["section"] for s in d["sources"]] == ["Need more help?"]


def test_the_next_step_of_the_troubleshooting_list(answerer):
    steps = [line.split(". ", 1)[1] for s in kb_articles()[0].sections if s.heading == TROUBLESHOOTING
             for b in s.blocks if b.kind == "list" for line in b.text.splitlines()]
    history = [{"role": "user", "content": "what should I check?"},
               {"role": "assistant", "content": "1. " + steps[0]}]  # an answer that gave the first step only
    shown = [steps[0]]
    for _ in steps[1:]:
        d = answerer.ask("what next?", history).to_dict()
        assert d["intent"] == "follow_up" and d["sources"][0]["section"] == TROUBLESHOOTING
        shown.append(d["sources"][0]["text"])
        history += [{"role": "user", "content": "what next?"}, {"role": "assistant", "content": d["answer"]}]
    assert shown == steps
    assert answerer.ask("what next?", history).intent == "handoff"


def test_a_follow_up_on_a_section_quotes_it_again(services, answerer):
    first = first_answer_on(services, "Best practices to reduce delivery failures")
    d = answerer.ask("tell me more about that", [{"role": "user", "content": first["question"]},
                                                 {"role": "assistant", "content": first["answer"]}]).to_dict()
    assert d["intent"] == "follow_up" and d["sources"][0]["section"] == "Best practices to reduce delivery failures"
    assert "Set up SPF and DKIM for your sending domain." in d["answer"]


# ---------------------------------------------------------- small talk

@pytest.mark.parametrize("message", ["hi", "Hello there!", "hey", "thanks!", "thank you so much", "Good morning",
                                     "what can you do?", "who are you?", "help", "cheers", "ok thanks bouncebot"])
def test_small_talk_gets_a_friendly_reply_with_examples(services, message):
    d = with_articles(services).ask(message).to_dict()  # search is down: small talk never needs it
    assert d["intent"] == "small_talk" and d["answered"] is False
    assert "I don't know" not in d["answer"]
    assert all(e in d["answer"] for e in W["small_talk"]["examples"])
    assert d["codes"] == [] and d["sources"] == []


@pytest.mark.parametrize("message", ["hi, got 4.7.28 on a reply, do i need to do anything?",
                                     "what can I do if a reply doesn't go through?", "thanks, and what is 550?"])
def test_a_question_with_a_greeting_is_not_small_talk(answerer, message):
    assert answerer.conversation.read(message, []).intent != "small_talk"


# --------------------------------------------------------------- drafts

@pytest.mark.parametrize("first, reason", [("What does 552-5.2.2 mean?", "mailbox_full"),
                                           ("bounce: 550 5.1.1", "user_unknown"),
                                           ("550-5.7.1 on my reply", "policy"),
                                           ("got 421-4.7.28", "rate_limited"),
                                           ("554 5.4.4 what is it", "routing")])
@pytest.mark.parametrize("ask_for", ["compose a text for the customer",
                                     "can you write something I can text the customer about this?",
                                     "draft a WhatsApp message for them", "write a message I can send the customer"])
def test_a_draft_for_the_customer_from_the_earlier_code(answerer, first, reason, ask_for):
    d = talk(answerer, first, ask_for)
    assert d["intent"] == "draft" and d["answered"] is True
    draft = d["draft"]
    assert draft["label"] == W["draft"]["label"] and W["draft"]["label"] in d["answer"]
    assert draft["reason"] == reason and draft["channel"] == "message"
    assert draft["text"] == " ".join(DRAFTS["reasons"][reason].split()).format(address=DRAFTS["your_address"])
    assert draft["text"] in d["answer"]
    row = d["codes"][0]["row"]
    assert d["sources"][0]["kind"] == "row" and d["sources"][0]["code"] == row["code"]
    assert row["meaning"] in d["answer"]  # the fact it relies on, quoted and cited
    assert d["codes"][0]["from_history"] is True


def test_a_draft_asking_for_another_address_names_the_customers_address(answerer):
    d = talk(answerer, "reply to jo@customer.example bounced: 550 5.1.1", "ask them for a different address")
    assert d["intent"] == "draft"
    assert d["draft"]["text"] == " ".join(DRAFTS["address"].split()).format(address="jo@customer.example")


def test_a_draft_without_a_code_is_still_written(answerer):
    d = answerer.ask("can you write something I can text the customer about this?").to_dict()
    assert d["intent"] == "draft" and d["draft"]["text"]
    assert d["answered"] is True and "I don't know" not in d["answer"]
    assert W["draft"]["no_facts"] in d["answer"]


# ------------------------------------------------------------- hand-off

CONVERSATION = [
    {"role": "user", "content": "Reply to sam@acme.example failed at 14:05 UTC, conversation "
                                "https://acme.sparrowdesk.com/inbox/conversations/4821 : 552 5.2.2"},
    {"role": "assistant", "content": "…"},
]


@pytest.mark.parametrize("message", ["still failing after all those steps", "where do I send that request?",
                                     "how do I contact support?", "I want to escalate this to SparrowDesk support",
                                     "nothing worked, what now?"])
def test_a_handoff_prefilled_from_the_conversation(answerer, message):
    d = answerer.ask(message, CONVERSATION).to_dict()
    assert d["intent"] == "handoff" and d["answered"] is True
    h = d["handoff"]
    assert [f["name"] for f in h["fields"]] == SUPPORT_ITEMS  # the article's own items
    assert [f["value"] for f in h["fields"]] == [
        "https://acme.sparrowdesk.com/inbox/conversations/4821", "sam@acme.example", "552-5.2.2", "14:05 UTC"]
    assert h["to"] is None and h["mailto"] is None and "mailto:" not in d["answer"]
    assert W["handoff"]["no_address"].split()[0] in d["answer"]
    assert h["text"] in d["answer"]


def test_what_the_conversation_lacks_is_marked_for_the_agent(answerer):
    d = talk(answerer, "What does 552-5.2.2 mean?", "contact support please")
    values = {f["name"]: f["value"] for f in d["handoff"]["fields"]}
    assert list(values.values()).count(None) == 3 and "552-5.2.2" in values.values()
    for name, value in values.items():
        if value is None:
            assert W["handoff"]["add"].format(name=name.lower()) in d["handoff"]["text"]


def test_the_support_address_setting_gives_a_mailto_link(services):
    a = with_articles(services, support_email="help@sparrowdesk.example")
    d = a.ask("where do I send that request?", CONVERSATION).to_dict()
    h = d["handoff"]
    assert h["to"] == "help@sparrowdesk.example" and h["mailto"].startswith("mailto:help@sparrowdesk.example?subject=")
    assert h["mailto"] in d["answer"]


# ------------------------------------------------------------- history

def test_history_is_bounded_older_turns_dropped_never_an_error(services):
    a = with_articles(services, max_history_turns=2)
    old = [{"role": "user", "content": "What does 552-5.2.2 mean?"}, {"role": "assistant", "content": "…"},
           {"role": "user", "content": "hmm"}, {"role": "assistant", "content": "…"}]
    assert a.bounded(old) == [Turn(**t) for t in old[-2:]]
    nothing = services_with(services, FakeRetriever(result([], best_similarity=0.0)))
    assert with_articles(nothing, max_history_turns=2).ask("ok so what now?", old).codes == []
    assert with_articles(nothing, max_history_turns=4).ask("ok so what now?", old).codes[0].code == "552-5.2.2"
    assert len(a.bounded(old * 500)) == 2


def test_a_turn_too_long_is_refused_with_its_index(services):
    a = with_articles(services)
    with pytest.raises(QuestionTooLong) as e:
        a.ask("ok?", [{"role": "user", "content": "x" * (a.max_question_bytes + 1)}])
    assert "history[0]" in str(e.value)


def test_resolution_adds_well_under_a_millisecond(answerer):
    history = []
    for i in range(10):
        history += [Turn(role="user", content=f"question {i}: what does 550 5.1.1 mean for sam@acme.example?"),
                    Turn(role="assistant", content=talk(answerer, "What does 550 5.1.1 mean?")["answer"])]
    read = answerer.conversation.read
    read("how do I fix it?", history)  # warm: the earlier turns' look-ups are cached
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        read("how do I fix it?", history)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 0.001, f"{per_call * 1e6:.0f} µs per resolution"


@pytest.mark.parametrize("message", ["hey how's your day going", "thanks a lot, you saved my afternoon"])
def test_chit_chat_the_article_cannot_answer_is_small_talk_not_i_dont_know(services, message):
    nothing = services_with(services, FakeRetriever(result([], best_similarity=0.0)))
    d = with_articles(nothing).ask(message).to_dict()
    assert d["intent"] == "small_talk" and d["answered"] is False and "I don't know" not in d["answer"]


def test_an_unanswerable_question_still_gets_i_dont_know(services):
    nothing = services_with(services, FakeRetriever(result([], best_similarity=0.0)))
    d = with_articles(nothing).ask("how much does the pro plan cost per seat?").to_dict()
    assert d["intent"] == "question" and d["answered"] is False and "I don't know" in d["answer"]


# ------------------------------------- the reading's general rules, table-driven (issue 14)

def turns(*messages) -> list[Turn]:
    """Earlier user messages, each with an empty assistant turn after it (as the evals send them)."""
    return [t for m in messages for t in (Turn(role="user", content=m), Turn(role="assistant", content=""))]


CODE_TURN = "customer's reply bounced with 550 5.1.1, sent to ann@customer.example"

HANDOFFS = [  # (earlier messages, message): a hand-off
    ([CODE_TURN], "hand it off"),
    ([CODE_TURN], "can you hand this over to support"),
    ([CODE_TURN], "who do I contact?"),
    ([CODE_TURN], "who should i talk to about this"),
    ([CODE_TURN], "how do i reach support"),
    ([CODE_TURN], "still failing after all that"),
    ([CODE_TURN], "nothing works, what now"),
    ([CODE_TURN], "it keeps bouncing"),
    ([CODE_TURN], "eskalieren bitte"),
    ([CODE_TURN], "contactar soporte"),
    ([], "escalate: 550 5.1.1 on a reply to ann@customer.example"),
    ([], "who do I contact about a bounce?"),
]


@pytest.mark.parametrize("earlier, message", HANDOFFS)
def test_handoff_words_ask_for_the_support_request(answerer, earlier, message):
    assert answerer.conversation.read(message, turns(*earlier)).intent == "handoff"


FIELDS = [  # (earlier messages, message, {fact: value}): the request's details, from the conversation
    (["replies to ann@customer.example fail with 550 5.1.1, sent yesterday at 3pm"], "escalate",
     {"email": "ann@customer.example", "code": "550-5.1.1", "time": "yesterday at 3pm"}),
    (["sent it around 9:40 this morning to bo@customer.example", "the inbox says 'Message failed to send'"],
     "still failing, who do i contact", {"email": "bo@customer.example", "time": "9:40 this morning",
                                         "code": "Message failed to send"}),
    (["reply to cy@customer.example failed, sent 2 hours ago", "https://acme.sparrowdesk.com/c/77"], "hand it off",
     {"link": "https://acme.sparrowdesk.com/c/77", "time": "2 hours ago", "email": "cy@customer.example",
      "code": "reply to cy@customer.example failed, sent 2 hours ago"}),
    (["it bounced with Recipient address rejected: Access denied, sent 10/14 4:30 pm"], "contact support",
     {"time": "10/14 4:30 pm", "code": "it bounced with Recipient address rejected: Access denied, sent 10/14 4:30 pm"}),
    (["the conversation is https://acme.sparrowdesk.com/c/123, customer dee@customer.example",
      "see https://sparrowdesk-support.sparrowdesk.com/hc/en/articles/6128508718-common-email-delivery-errors/"],
     "escalate to support",  # the help article's own link is no conversation link
     {"link": "https://acme.sparrowdesk.com/c/123", "email": "dee@customer.example"}),
    (["customer says our replies never arrive"], "contact support", {}),  # nothing to fill: nothing invented
]


@pytest.mark.parametrize("earlier, message, facts", FIELDS)
def test_the_handoff_is_filled_from_the_conversation(answerer, earlier, message, facts):
    reading = answerer.conversation.read(message, turns(*earlier))
    assert reading.intent == "handoff" and reading.facts == facts


SMALL_TALK_ELSEWHERE = ["obrigado!", "gracias", "merci", "danke", "grazie", "hola", "bonjour", "grazie mille",
                        "gracias por la ayuda", "merci pour l'aide", "danke für die hilfe", "buongiorno", "parfait merci",
                        "perfecto, gracias", "muito obrigada", "buenas"]


@pytest.mark.parametrize("message", SMALL_TALK_ELSEWHERE)
def test_small_talk_in_other_languages_after_a_code_is_small_talk(answerer, message):
    reading = answerer.conversation.read(message, turns(CODE_TURN))
    assert reading.intent == "small_talk" and reading.codes is None


FOLLOW_UPS_ELSEWHERE = ["y qué hago", "et maintenant ?", "waht shoud i do", "wat now", "qu'est-ce que je dois faire",
                        "was soll ich tun", "cosa devo fare", "che faccio", "e adesso?", "how do i fix tihs",
                        "y eso?", "wht next"]


@pytest.mark.parametrize("message", FOLLOW_UPS_ELSEWHERE)
def test_a_follow_up_in_another_language_or_with_typos_carries_the_code(answerer, message):
    reading = answerer.conversation.read(message, turns(CODE_TURN))
    assert reading.intent == "follow_up" and [c.code for c in reading.codes] == ["550-5.1.1"]
    assert all(c.from_history for c in reading.codes)


NOT_DRAFTS = ["write me a short poem about bounced emails lol", "how do i connect whatsapp so customers can message us there",
              "come collego WhatsApp a SparrowDesk?", "can sparrowdesk send sms", "does sparrowdesk support whatsapp",
              "set up the whatsapp integration"]
DRAFTS_ELSEWHERE = ["write a whatsapp message for her", "scrivi un messaggio whatsapp per lei",
                    "escribe un mensaje para el cliente", "écris un message au client", "write an sms to the customer",
                    "what should i text them on whatsapp"]


@pytest.mark.parametrize("earlier", [[], [CODE_TURN]])
@pytest.mark.parametrize("message", NOT_DRAFTS)
def test_a_request_not_about_the_customers_message_is_no_draft(answerer, earlier, message):
    assert answerer.conversation.read(message, turns(*earlier)).intent != "draft"


@pytest.mark.parametrize("message", DRAFTS_ELSEWHERE)
def test_a_verb_of_writing_and_a_kind_of_message_is_a_draft(answerer, message):
    reading = answerer.conversation.read(message, turns(CODE_TURN))
    assert reading.intent == "draft" and [c.code for c in reading.codes] == ["550-5.1.1"]


OTHER_ONE = [  # (earlier messages, message, the code it means): the one not talked about last
    (["5.7.1 and 5.2.2 on two replies", "start with 5.2.2"], "now the other one", "5.7.1"),
    (["one got 550 5.1.1, another 552 5.2.2", "what does 552 5.2.2 mean"], "and the other?", "550-5.1.1"),
    (["one got 550 5.1.1, another 552 5.2.2", "tell me about the second"], "now the other one", "550-5.1.1"),
    (["one got 550 5.1.1, another 552 5.2.2", "the first one?"], "now the other one", "552-5.2.2"),
    (["550 5.1.1 on one reply", "552 5.2.2 on another"], "what about the other one", "550-5.1.1"),
]


@pytest.mark.parametrize("earlier, message, code", OTHER_ONE)
def test_the_other_one_is_the_code_not_discussed_last(answerer, earlier, message, code):
    reading = answerer.conversation.read(message, turns(*earlier))
    assert reading.intent == "follow_up" and [c.code for c in reading.codes] == [code]


def test_who_to_contact_after_asking_about_support_is_a_follow_up_on_its_section(answerer):
    reading = answerer.conversation.read("what should i include", turns("i need to contact sparrowdesk support about bounces"))
    assert reading.intent == "follow_up" and reading.topic.section.heading == SUPPORT.heading
