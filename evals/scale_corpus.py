"""A deterministic scale corpus: N synthetic help-centre articles around the real one.

    python -m evals.scale_corpus --articles N --out DIR [--seed S] [--per-page 100]

DIR becomes a KB folder: a copy of the real article (``kb/common-email-delivery-errors.md``)
and a help-centre export in the shape of the Zendesk Help Center articles API, paginated
(``articles-0001.json`` ...: ``{"articles": [...], "page", "page_count", "next_page",
"per_page", "count"}``), which ``app.knowledge.zendesk`` reads.

- Same N, seed and page size: the same bytes. Article ``i`` is made from its own seed
  (``seed:i``), so it is the same article whatever N is.
- Every synthetic article is labelled: its title ends with ``[synthetic]``, its body
  starts with "Synthetic article for scale testing", and its ``html_url`` is under
  ``synthetic-help.invalid`` (a reserved, never-resolving host).
- Topics are the help centre's navigation titles (``evals/data/scale_topics.yaml``, read
  at generation time); the wording is made here from slots (roles, places, steps,
  brands), combined per article: no article text is copied from anywhere.
- About one article in five has an HTML table of SMTP codes the real article's table
  lacks (columns "Error code | What it means | What you can do"); one in 250 (at least
  one when N >= 2) repeats one of the real table's codes with its own words, so the
  rule "two articles' rows for one code are shown each with its own citation, never
  merged" is exercised.
- ``max(1, N // 200)`` drafts are written besides the N published articles; a loader
  must skip them (their titles say so too).
"""

from __future__ import annotations

import argparse
import html
import json
import random
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
REAL_ARTICLE = ROOT / "kb" / "common-email-delivery-errors.md"
TOPICS_FILE = Path(__file__).resolve().parent / "data" / "scale_topics.yaml"
HOST = "https://synthetic-help.invalid"
LABEL = "Synthetic article for scale testing"
TITLE_SUFFIX = " [synthetic]"
PAGE_GLOB = "articles-*.json"
FIRST_ID = 9_100_000_000
FIRST_SECTION_ID = 8_100_000
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
TABLE_EVERY = 5  # about one article in five has a table of codes the real article lacks
REPEAT_EVERY = 250  # one in this many repeats a code of the real article's table
REPEAT_FIRST = 3  # ... starting with this article, so small corpora have one too

# Codes the real article's table holds (kb/common-email-delivery-errors.md): repeated on purpose.
REAL_CODES = ("421-4.7.28", "550", "550-5.1.1", "550-5.7.1", "552-5.2.2", "554-5.4.4", "554-5.4.7")

# Codes the real table lacks, each with synthetic words (ours, short, generic).
EXTRA_CODES = {
    "452-4.2.2": ("The mailbox is over its storage quota for now.", "Wait a few hours, then send again."),
    "554-5.7.1": ("The receiving server refused the message under its local policy.",
                  "Ask the recipient's administrator to allow mail from your domain."),
    "451-4.7.1": ("The receiving server asked the sender to try again later (greylisting or a policy check).",
                  "Nothing to change: the message is retried automatically."),
    "450-4.2.1": ("The mailbox is temporarily unavailable.", "Send again later."),
    "421-4.4.5": ("The receiving server was too busy to take the connection.", "Send again in a few minutes."),
    "550-5.7.26": ("The message failed the recipient's sender-authentication checks.",
                   "Publish SPF, DKIM and DMARC records for your sending domain."),
    "553-5.1.3": ("The recipient address is not written the way an address must be.",
                  "Correct the address format (name@domain) and send again."),
    "550-5.4.1": ("The recipient's domain does not accept mail for this address.",
                  "Check the domain part of the address with the customer."),
    "554-5.7.9": ("The message was refused by a security policy on the receiving side.",
                  "Contact the recipient through another channel and ask them to check their filters."),
    "552-5.3.4": ("The message is larger than the receiving server accepts.",
                  "Send a smaller message or share large files as links."),
    "450-4.7.25": ("The sending server's address has no matching reverse DNS record.",
                   "Ask your email administrator to set up reverse DNS for the sending IP."),
    "421-4.7.0": ("The connection was closed because of a temporary security check.",
                  "Send again later; if it continues, review your sending reputation."),
    "550-5.7.350": ("A rule set by the recipient's administrator rejected the message.",
                    "Ask the recipient to check their organisation's mail flow rules."),
    "451-4.3.0": ("The receiving server had a temporary problem of its own.", "Send again later."),
    "554-5.6.0": ("The message content could not be accepted as sent.",
                  "Remove unusual attachments or formatting and send again."),
    "550-5.2.1": ("The mailbox has been disabled and does not accept mail.",
                  "Confirm a current address with the customer."),
}

REPEAT_WORDS = ("This code also appears in other articles; here it is described for this topic only.",
                "Check the sending settings described above, then try again.")

ROLES = ("Owner", "Admin", "Team lead", "Agent with settings access", "Billing admin")
PLACES = ("Settings", "Admin settings", "the Inbox sidebar", "Workspace settings", "the Channels page",
          "the Automation page", "the Reports area", "Help Centre settings")
TABS = ("General", "Advanced", "Permissions", "Notifications", "Defaults", "Display")
BUTTONS = ("Save", "Save changes", "Apply", "Confirm", "Done")
BRANDS = ("Aster Goods", "Brightline", "Cobalt Travel", "Dunmore Bank", "Everfield", "Fernway Foods",
          "Granite Labs", "Harbor Health", "Ivy Learning", "Juniper Home")
ASPECTS = ("a quick guide", "step by step", "common questions", "for administrators", "for new agents",
           "troubleshooting", "best practices", "what changes for your team")
HEADINGS = {
    "before": ("Before you start", "What you need first", "Prerequisites", "Who can do this"),
    "steps": ("Steps", "How to set it up", "Set it up", "Turn it on"),
    "notes": ("Things to know", "Good to know", "Limits and behaviour", "How it works"),
    "faq": ("Frequently asked questions", "Questions agents ask", "Common questions"),
    "codes": ("Error codes you may see", "Codes shown for this feature", "Related sending errors"),
}
OPENERS = ("This guide explains {topic} for the {brand} workspace.",
           "Use this article to learn about {topic} in the {brand} help desk.",
           "Here is how {topic} works for teams like {brand}.",
           "{Topic}: what it does and how your team at {brand} can use it.")
WHY = ("It helps your team answer customers faster.", "It keeps work organised across shifts.",
       "It saves agents from repeating the same steps.", "It gives managers a clearer picture of the queue.")
BEFORE = ("You need the {role} role to change these settings.",
          "Only people with the {role} role see this option.",
          "Ask someone with the {role} role if the option is missing.")
STEPS = ("Open {place}.", "Go to the {tab} tab.", "Find the section named after {topic}.",
         "Choose the option you want for {brand}.", "Click {button}.", "Check the change with a test conversation.",
         "Tell your team what changed.")
NOTES = ("Changes apply to new conversations; existing ones keep their old settings.",
         "The setting is per brand, so each brand can differ.",
         "It can take a minute or two before every agent sees the change.",
         "Agents without the {role} role can see the setting but not change it.",
         "You can undo the change at any time from the same page.",
         "Reports show the change from the next day onwards.")
FAQ = (("Can I try this without affecting customers?", "Yes: use a test contact and a test conversation first."),
       ("Does this cost extra?", "This synthetic article does not cover pricing."),
       ("Why can't I see the option?", "Check that you have the {role} role."),
       ("Can I set this per team?", "Yes, when your plan includes more than one team."))


def load_topics(path: Path = TOPICS_FILE) -> list[tuple[str, str]]:
    """(category, title) pairs from the navigation list, in file order."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [(cat, title) for cat, titles in data.items() for title in titles]


def _fill(template: str, slots: dict) -> str:
    return template.format(**slots)


def _para(text: str) -> str:
    return f"<p>{html.escape(text, quote=False)}</p>"


def _list(items: list[str], ordered: bool = False) -> str:
    tag = "ol" if ordered else "ul"
    return f"<{tag}>" + "".join(f"<li>{html.escape(i, quote=False)}</li>" for i in items) + f"</{tag}>"


def code_table(rows: list[tuple[str, str, str]]) -> str:
    head = "<tr><th>Error code</th><th>What it means</th><th>What you can do</th></tr>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c, quote=False)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def table_rows_for(i: int, rnd: random.Random) -> list[tuple[str, str, str]]:
    """The code rows article ``i`` carries (none for most)."""
    rows = []
    if i % REPEAT_EVERY == REPEAT_FIRST:
        code = REAL_CODES[(i // REPEAT_EVERY) % len(REAL_CODES)]
        rows.append((code, *REPEAT_WORDS))
    if i % TABLE_EVERY == 1 or rows:
        for code in rnd.sample(sorted(EXTRA_CODES), rnd.randint(2, 4)):
            rows.append((code, *EXTRA_CODES[code]))
    return rows


def article(i: int, topics: list[tuple[str, str]], seed: int = 0, draft: bool = False) -> dict:
    """Synthetic article number ``i`` as a Zendesk export article (a dict in the API's key order)."""
    rnd = random.Random(f"{seed}:{'draft' if draft else 'article'}:{i}")
    cat_index = i % len(topics)
    category, title = topics[cat_index]
    brand, aspect = rnd.choice(BRANDS), rnd.choice(ASPECTS)
    topic = title.rstrip("?").strip()
    slots = {"topic": topic, "Topic": topic, "brand": brand,
             "role": rnd.choice(ROLES), "place": rnd.choice(PLACES), "tab": rnd.choice(TABS),
             "button": rnd.choice(BUTTONS)}
    parts = [_para(f"{LABEL}: not a real help-centre article."),
             _para(_fill(rnd.choice(OPENERS), slots) + " " + rnd.choice(WHY))]
    kinds = ["before", "steps", "notes", "faq"]
    rnd.shuffle(kinds)
    for kind in ["steps"] + [k for k in kinds if k != "steps"][: rnd.randint(1, 2)]:
        heading = f"{rnd.choice(HEADINGS[kind])}: {topic}"
        parts.append(f"<h2>{html.escape(heading, quote=False)}</h2>")
        if kind == "before":
            parts.append(_para(_fill(rnd.choice(BEFORE), slots)))
        elif kind == "steps":
            n = rnd.randint(3, 5)
            steps = [STEPS[0]] + sorted(rnd.sample(STEPS[1:-1], n - 2), key=STEPS.index) + [STEPS[-1]]
            parts.append(_list([_fill(s, slots) for s in steps], ordered=True))
        elif kind == "notes":
            parts.append(_list([_fill(s, slots) for s in rnd.sample(NOTES, rnd.randint(2, 3))]))
        else:
            for q, a in rnd.sample(FAQ, 2):
                parts.append(_para(f"{q} {_fill(a, slots)}"))
    rows = [] if draft else table_rows_for(i, rnd)
    if rows:
        parts.append(f"<h2>{html.escape(rnd.choice(HEADINGS['codes']), quote=False)}</h2>")
        parts.append(_para(f"These codes can appear when {slots['topic']} sends email on your behalf."))
        parts.append(code_table(rows))
    number = f"{i:05d}"
    label = f" draft {number}" if draft else f" {number}"
    art_id = FIRST_ID + (500_000 if draft else 0) + i
    full_title = f"{title} ({aspect}, {brand}){label}{TITLE_SUFFIX}"
    slug = "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")
    slug = "-".join(p for p in slug.split("-") if p)
    updated = EPOCH + timedelta(days=(i * 7) % 300, minutes=(i * 13) % 1440)
    return {
        "id": art_id,
        "title": full_title,
        "body": "".join(parts),
        "html_url": f"{HOST}/hc/en-us/articles/{art_id}-{slug}",
        "section_id": FIRST_SECTION_ID + sorted({c for c, _ in topics}).index(category),
        "locale": "en",
        "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "draft": draft,
    }


def drafts_for(n: int) -> list[int]:
    """Which draft numbers go with a corpus of ``n`` articles."""
    return list(range(max(1, n // 200))) if n else []


def all_articles(n: int, seed: int = 0, topics: list[tuple[str, str]] | None = None) -> list[dict]:
    """The N published articles, with the drafts spread among them (every ~200th place)."""
    topics = topics or load_topics()
    published = [article(i, topics, seed) for i in range(n)]
    out: list[dict] = []
    drafts = drafts_for(n)
    for k, a in enumerate(published):
        if drafts and k % 200 == 100 and k // 200 < len(drafts):
            out.append(article(drafts[k // 200], topics, seed, draft=True))
        out.append(a)
    while len(out) < n + len(drafts):  # corpora under 100 articles: the draft goes last
        out.append(article(drafts[len(out) - n], topics, seed, draft=True))
    return out


def page_name(p: int) -> str:
    return f"articles-{p:04d}.json"


def write_corpus(n: int, out: Path, seed: int = 0, per_page: int = 100) -> dict:
    """Write the KB folder; returns a summary. Old export pages in ``out`` are removed first."""
    if n < 0 or per_page < 1:
        raise ValueError("--articles must be >= 0 and --per-page >= 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(PAGE_GLOB):
        old.unlink()
    shutil.copyfile(REAL_ARTICLE, out / REAL_ARTICLE.name)
    arts = all_articles(n, seed)
    pages = [arts[k : k + per_page] for k in range(0, len(arts), per_page)]
    for p, chunk in enumerate(pages, 1):
        nxt = f"{HOST}/api/v2/help_center/en-us/articles.json?page={p + 1}&per_page={per_page}" \
            if p < len(pages) else None
        doc = {"articles": chunk, "page": p, "page_count": len(pages), "per_page": per_page,
               "next_page": nxt, "count": len(arts)}
        (out / page_name(p)).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    rows = sum(a["body"].count("<tr>") - 1 for a in arts if "<table>" in a["body"])
    return {"articles": n, "drafts": sum(a["draft"] for a in arts), "pages": len(pages), "table_rows": rows,
            "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.scale_corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, required=True, help="synthetic articles to write (drafts not counted)")
    ap.add_argument("--out", type=Path, required=True, help="KB folder to write (created; old export pages removed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-page", type=int, default=100, help="articles per export page")
    args = ap.parse_args(argv)
    if args.articles < 0 or args.per_page < 1:
        print("error: --articles must be 0 or more and --per-page 1 or more", file=sys.stderr)
        return 2
    s = write_corpus(args.articles, args.out, args.seed, args.per_page)
    print(f"Wrote {s['articles']} synthetic articles (+{s['drafts']} drafts, {s['table_rows']} code-table rows) "
          f"in {s['pages']} export pages and the real article to {s['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
