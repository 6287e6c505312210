"""Hostile input (issue 12): ``read_bounce`` and ``CodeTable.analyse`` on real
corpus messages mutated (``_mutate.py``: byte flips, truncation, lines
duplicated and deleted, MIME nesting, broken base64 and quoted-printable,
NULs and invalid UTF-8, text beyond Latin-1, CR-only line endings, mboxes,
charsets that do not exist, nested message/rfc822; and, a few cases each, a
1 MB Subject, 10,000 Received: lines, a header folded over 100,000 lines,
10,000 code-like tokens, an mbox of 150 messages) never raise, return the
documented types, keep to the caps, and report no code or address that is
not in the decoded input.

The linearity tests time hostile shapes (``_mutate.SHAPES``) the way
``test_linear.py`` times questions and pastes: CPU time at about 100 KB and
400 KB (other sizes for a few, ``_mutate.SHAPE_SIZES``), best of three, ratio
under 8 (linear about 4, quadratic about 16); no absolute time. A failure
says how to rebuild its input: corpus file, seed, mutations, form
(``_mutate.case``), or shape and size.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.codes.bounce import MAX_RECIPIENTS, Bounce, Recipient, read_bounce
from app.codes.find import FoundCode
from app.codes.table import MAX_CODES, Analysis, CodeMatch, CodeTable, Limits
from app.codes.verdict import Verdict

from ..conftest import KB
from . import _mutate
from .test_linear import GROWTH, RATIO, cpu_seconds

CORPUS = _mutate.corpus()
needs_corpus = pytest.mark.skipif(not CORPUS, reason=f"no bounce corpus under {_mutate.DATA}")
KINDS = ("failure", "delay", "success", "autoreply", "challenge", "complaint", "not_report")  # Bounce.kind
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_REPLY = re.compile(r"[2-5]\d\d")
_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}")
MIN_SECONDS = 0.015  # each timed run of the smaller input does at least this much work


@pytest.fixture(scope="module")
def table():
    return CodeTable.from_kb(KB)


# -- the property ----------------------------------------------------------------


def _check_recipient(r) -> None:
    assert isinstance(r, Recipient)
    assert r.recipient is None or isinstance(r.recipient, str)
    assert r.status is None or _STATUS.fullmatch(r.status), r.status
    assert r.reply_code is None or _REPLY.fullmatch(r.reply_code), r.reply_code
    assert r.diagnostic is None or isinstance(r.diagnostic, str)
    assert isinstance(r.decisive, str) and isinstance(r.action, str)
    assert r.verdict is None or isinstance(r.verdict, Verdict)


def check(raw: str | bytes, table: CodeTable) -> Bounce:
    """The property, for one input: neither call raises; documented types;
    recipients and codes within the caps; every address and code reported
    (and every '\\uXXXX' escape in a diagnostic) is in the decoded input."""
    bounce = read_bounce(raw)
    assert isinstance(bounce, Bounce) and isinstance(bounce.recipients, list)
    assert len(bounce.recipients) <= MAX_RECIPIENTS
    assert isinstance(bounce.found, int) and bounce.found >= len(bounce.recipients)
    assert bounce.kind in KINDS, bounce.kind

    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")  # what the chat hands over
    analysis = table.analyse(text)
    assert isinstance(analysis, Analysis) and isinstance(analysis.limits, Limits)
    assert analysis.kind is None or analysis.kind in KINDS, analysis.kind
    limits = analysis.limits
    assert len(analysis.matches) == limits.codes_examined <= min(limits.codes_found, MAX_CODES)
    assert len(analysis.recipients) == limits.recipients_examined <= min(limits.recipients_found, MAX_RECIPIENTS)
    assert all(isinstance(x, CodeMatch) and isinstance(x.found, FoundCode) for x in analysis.matches)

    recipients = bounce.recipients + analysis.recipients
    for r in recipients:
        _check_recipient(r)
    claims = {x for r in recipients for x in (r.recipient, r.status, r.reply_code)}
    claims |= {x for c in analysis.matches for x in (c.found.reply, c.found.enhanced)}
    claims |= {x for r in recipients for x in _ESCAPE.findall(r.diagnostic or "")}  # '\\uff1a' where '：' stood
    claims.discard(None)
    invented = _mutate.not_in(claims, raw)
    assert not invented, f"reported but not in the input: {invented}"
    return bounce


def test_the_oracle_reads_decoded_parts_and_catches_inventions():
    part = "550 5.=\n1.1 <qp@example.org>"  # a soft line break inside the code
    mail = (_mutate.HEAD + 'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Transfer-Encoding: '
            f"quoted-printable\n\n{part}\n--B\nContent-Transfer-Encoding: base64\n\nNDIxIDQuNC43\n--B--\n")
    assert _mutate.not_in({"5.1.1", "qp@example.org", "4.4.7", "421"}, mail) == []
    assert _mutate.not_in({"5.1.1", "5.7.1", "x@example.org"}, mail.encode()) == ["5.7.1", "x@example.org"]


def _failures(cases, table) -> list[str]:
    out = []
    for repro, raw in cases:
        try:
            check(raw, table)
        except Exception as e:  # noqa: BLE001 - collected, every case is run
            out.append(f"{repro}: {type(e).__name__}: {str(e)[:300]}")
    return out


# -- every corpus message, plain and mutated (deterministic) -------------------------


@needs_corpus
def test_every_corpus_message_plain_and_mutated(table):
    """Each message as it is, and through 1 to 3 mutations its index chooses."""
    failed = _failures(_mutate.sweep(), table)
    assert not failed, f"{len(failed)} of {2 * len(CORPUS)} inputs:\n" + "\n".join(failed[:10])


@needs_corpus
@settings(max_examples=80, deadline=None)
@given(
    index=st.integers(0, max(len(CORPUS) - 1, 0)),
    names=st.lists(st.sampled_from(sorted(_mutate.MUTATIONS)), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    form=st.sampled_from(_mutate.FORMS),
)
def test_random_mutation_chains(table, index, names, seed, form):
    assert not _failures([_mutate.case(index, seed, names, form)], table)


@needs_corpus
@pytest.mark.parametrize("name", sorted(_mutate.HEAVY))
def test_huge_mutations(table, name):
    """A megabyte or 10,000 lines of it, then a light mutation (``_mutate.heavy_case``)."""
    failed = _failures([_mutate.heavy_case(name)], table)
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("form", ["text", "bytes"])
@pytest.mark.parametrize(
    "body",
    [
        "宛先：kijitora@example.jp: 550 5.1.1 user unknown\n",
        "（kijitora@example.jp）: host said: 550 5.1.1 unknown\n",
        "<kijitora@example.jp>: host mx said: 550 5.1.1 ユーザー不明\n",
    ],
    ids=["fullwidth colon", "fullwidth parentheses", "Japanese diagnostic"],
)
def test_text_beyond_latin1_is_read_as_written(table, body, form):
    """A plain (8bit) part beyond Latin-1, as a Japanese bounce pasted into the
    chat is: email's compat32 ``get_payload(decode=True)`` gives such a str
    payload as raw-unicode-escape bytes ('：' as '\\uff1a'), which must not
    become an address ('uff1akijitora@example.jp') or a diagnostic."""
    paste = _mutate.HEAD + "Content-Type: text/plain; charset=utf-8\n\n" + body
    bounce = check(paste if form == "text" else paste.encode(), table)
    assert [r.recipient for r in bounce.recipients] == ["kijitora@example.jp"]
    assert not any("\\u" in (r.diagnostic or "") for r in bounce.recipients), bounce.recipients[0].diagnostic


# -- linear in the size of the input ---------------------------------------------------


def _repeated(work, reps: int):
    return lambda arg: [work(arg) for _ in range(reps)]


def growth_of(work, small, large) -> tuple[float, float, float, int]:
    """(time on ``small``, on ``large``, their ratio, repetitions per run): the
    work is repeated so that each run on ``small`` is well above timer noise."""
    once = cpu_seconds(work, small, runs=1)  # loads the data files too: a run of its own unless it is a sample
    reps = min(50, max(1, math.ceil(MIN_SECONDS / max(once, 1e-6))))
    t_small = cpu_seconds(_repeated(work, reps), small, runs=3 if reps > 1 else 2)
    t_small = t_small if reps > 1 else min(once, t_small)
    t_large = cpu_seconds(_repeated(work, reps), large)
    return t_small / reps, t_large / reps, t_large / max(t_small, 1e-9), reps


@pytest.mark.parametrize("shape", list(_mutate.SHAPES))
def test_hostile_shape_parses_in_linear_time(shape):
    n = _mutate.size_of(shape)
    small, large = _mutate.SHAPES[shape](n), _mutate.SHAPES[shape](GROWTH * n)
    t_small, t_large, ratio, reps = growth_of(read_bounce, small, large)
    measured = (f"{shape}: {len(small):,} bytes {t_small * 1e3:.1f} ms, {len(large):,} bytes {t_large * 1e3:.1f} ms "
                f"(CPU, best of 3 runs of {reps}): x{ratio:.1f}")
    print(f"\n  {measured}", end="")  # shown with -s
    assert ratio < RATIO, measured


def test_hostile_shapes_hold_the_property(table):
    """Every shape, at 20 KB (or its smaller size), through ``check``."""
    sizes = {shape: min(20_000, _mutate.size_of(shape)) for shape in _mutate.SHAPES}
    failed = _failures(((f"SHAPES[{s!r}]({n})", _mutate.SHAPES[s](n)) for s, n in sizes.items()), table)
    assert not failed, "\n".join(failed)
