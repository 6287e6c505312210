"""The bounce parser against 593 real bounce emails (the Sisimai set-of-emails
corpus) and their CRLF / CR copies, with the codes Sisimai's own test suite
expects for each recipient. See shared/data/bounces/README.md.

Measured, per record:

* status: the expected enhanced status code is reported, for records whose
  code is real (Sisimai's pseudo-codes such as 5.0.910 never appear in the
  mail and are not counted);
* reply code: the expected SMTP reply code is reported, for records with one;
* invented: a record that expects no code at all (feedback reports, vacation
  replies) gets none, and no record gets Sisimai's pseudo-code;
* reason and hard/soft: the verdict (app.codes.verdict.decide, given the
  parsed codes, the diagnostic, the action and the decoded report text) names
  Sisimai's reason, and its ``hard`` is Sisimai's hardbounce. Sisimai's label is
  a hint, not the truth (see the README): the disagreements are printed.
  The message kind comes from the corpus here, standing in for the kind
  detector: ARF records are complaints, RFC 3834 ones auto-replies, and
  records whose reason is 'delivered' success reports.

Recipients are compared by position; in an email with several recipients a
code reported for another position also counts (multiset), since the order
Sisimai reports them in is not always the order of the mail.

One record failing does not fail the suite: the targets are on the totals, and
the failing ids are printed with what was expected and what came back.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.codes._mime import read_report, to_text
from app.codes.bounce import Bounce, Recipient, read_bounce
from app.codes.verdict import Verdict, decide

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "bounces"
TARGET_STATUS = 0.995
TARGET_REPLY = 0.995
TARGET_REASON = 0.90
TARGET_HARD = 0.95

if not (DATA / "expected.jsonl").is_file():  # pragma: no cover - the corpus ships beside the project
    pytest.skip(f"bounce corpus not found at {DATA}", allow_module_level=True)


def _load(name: str) -> list[dict]:
    with open(DATA / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


RECORDS = _load("expected.jsonl") + _load("expected_line_endings.jsonl")


def _rid(rec: dict) -> str:
    return f"{rec['id'].removeprefix('maildir/')}#{rec['recipient_index']}"


@dataclass
class Outcome:
    rec: dict
    got: list[Recipient]
    status_ok: bool | None  # None: not measured for this record
    reply_ok: bool | None
    invented: str | None  # the invented code, if any
    verdict: Verdict | None = None  # this record's position's verdict
    reason_ok: bool = False
    hard_ok: bool = False

    @property
    def got_pair(self) -> str:
        return ", ".join(f"{r.status or '-'}/{r.reply_code or '-'}" for r in self.got) or "nothing"


def _matches(field: str, key: str, recs: list[dict], got: list, rec: dict) -> bool:
    """Expected ``rec[key]`` is reported at its position, or (several
    recipients) as often across the email as the email expects it."""
    want = rec[key]
    i = rec["recipient_index"] - 1
    if i < len(got) and getattr(got[i], field) == want:
        return True
    if len(recs) < 2:
        return False
    expected_count = sum(1 for r in recs if r[key] == want)
    return Counter(getattr(g, field) for g in got)[want] >= expected_count


def _verdicts(raw: bytes, recs: list[dict], bounce: Bounce) -> list[Verdict]:
    """A verdict per expected position: the parser's own for each recipient it
    read (the kind detector's kind, the decoded report text), or, where it read
    no one, the verdict the message's kind and report text alone give."""
    report = read_report(to_text(raw))
    text = "\n".join([report.text, *report.dsn])
    verdicts = [r.verdict for r in bounce.recipients]
    nothing = decide(None, None, None, kind=bounce.kind, text=text)
    return verdicts + [nothing] * (max(len(recs), len(verdicts)) - len(verdicts))


def _evaluate(recs: list[dict], got: list[Recipient], verdicts: list[Verdict]) -> list[Outcome]:
    out = []
    for rec in recs:
        real = bool(rec["status"]) and not rec["status_is_sisimai_pseudo"]
        status_ok = _matches("status", "status", recs, got, rec) if real else None
        reply_ok = _matches("reply_code", "replycode", recs, got, rec) if rec["replycode"] else None
        invented = None
        if not rec["status"] and not rec["replycode"]:
            # Nothing expected: no recipient of this email may carry a code.
            codes = [c for g in got for c in (g.status, g.reply_code) if c]
            invented = ", ".join(codes) or None
        elif rec["status_is_sisimai_pseudo"] and any(g.status == rec["status"] for g in got):
            invented = rec["status"]
        verdict = verdicts[rec["recipient_index"] - 1]
        reason_ok = _matches("reason", "reason", recs, verdicts, rec)
        hard_ok = _matches("hard", "hardbounce", recs, verdicts, rec)
        out.append(Outcome(rec, got, status_ok, reply_ok, invented, verdict, reason_ok, hard_ok))
    return out


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    by_file: dict[str, list[dict]] = defaultdict(list)
    for rec in RECORDS:
        by_file[rec["id"]].append(rec)
    result: dict[str, Outcome] = {}
    for path, recs in by_file.items():
        recs.sort(key=lambda r: r["recipient_index"])
        raw = (DATA / "emails" / path).read_bytes()
        bounce = read_bounce(raw)
        for o in _evaluate(recs, bounce.recipients, _verdicts(raw, recs, bounce)):
            result[_rid(o.rec)] = o
    return result


@pytest.mark.parametrize("rec", RECORDS, ids=[_rid(r) for r in RECORDS])
def test_record_parses_to_codes_that_are_in_the_mail(rec, outcomes):
    """Per record, only what must always hold; accuracy is judged in total."""
    o = outcomes[_rid(rec)]
    text = _all_text((DATA / "emails" / rec["id"]).read_bytes())
    for r in o.got:
        assert isinstance(r, Recipient)
        assert set(r.to_dict()) == {"recipient", "status", "reply_code", "diagnostic", "decisive", "action", "verdict"}
        for code in (r.status, r.reply_code):
            assert code is None or code in text


def _all_text(raw: bytes) -> str:
    """The mail as bytes plus every part decoded (base64, quoted-printable)."""
    text = raw.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")
    parts = [text]
    for part in email.message_from_string(text, policy=email.policy.compat32).walk():
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            parts.append(data.decode("latin-1"))
    return "\n".join(parts)


def _rate(flags: list[bool | None]) -> tuple[int, int]:
    measured = [f for f in flags if f is not None]
    return sum(measured), len(measured)


def _per_server(all_o: list[Outcome]) -> list[str]:
    """Every figure per mail server (Sisimai's module), worst reason agreement first."""
    by: dict[str, list[Outcome]] = defaultdict(list)
    for o in all_o:
        by[o.rec["module"]].append(o)

    def pct(flags: list[bool | None]) -> str:
        ok, n = _rate(flags)
        return f"{ok / n:5.0%}" if n else "    -"

    rows = sorted(by.items(), key=lambda kv: (_rate([o.reason_ok for o in kv[1]])[0] / len(kv[1]), kv[0]))
    lines = [f"  {'mail server':26} {'records':>7} {'status':>6} {'reply':>6} {'reason':>6} {'hard':>6}"]
    for module, os_ in rows:
        figures = [pct([o.status_ok for o in os_]), pct([o.reply_ok for o in os_]),
                   pct([o.reason_ok for o in os_]), pct([o.hard_ok for o in os_])]
        lines.append(f"  {module:26} {len(os_):7} " + " ".join(f"{f:>6}" for f in figures))
    return lines


def test_corpus_accuracy(outcomes, capsys):
    all_o = list(outcomes.values())
    s_ok, s_n = _rate([o.status_ok for o in all_o])
    r_ok, r_n = _rate([o.reply_ok for o in all_o])
    reason_ok, hard_ok, n = sum(o.reason_ok for o in all_o), sum(o.hard_ok for o in all_o), len(all_o)
    bsd = [o for o in all_o if "line_endings" not in o.rec]
    none_n = sum(1 for o in all_o if not o.rec["status"] and not o.rec["replycode"])
    invented = [o for o in all_o if o.invented]
    pseudo = [o for o in all_o if o.rec["status_is_sisimai_pseudo"]]
    pseudo_coded = sum(1 for o in pseudo if any(g.status for g in o.got))
    lines = [
        "",
        f"bounce corpus: {len(all_o)} records ({len({o.rec['id'] for o in all_o})} files)",
        f"  status     {s_ok}/{s_n} = {s_ok / s_n:.1%}  (target {TARGET_STATUS:.0%})",
        f"  reply code {r_ok}/{r_n} = {r_ok / r_n:.1%}  (target {TARGET_REPLY:.0%})",
        f"  invented   {len(invented)} (of {none_n} records expecting no code, plus pseudo-code records)",
        f"  (for information: {pseudo_coded} of {len(pseudo)} pseudo-code records get a real code from the mail)",
        f"  reason     {reason_ok}/{n} = {reason_ok / n:.1%}  (target {TARGET_REASON:.0%}; Sisimai's reason)",
        f"  hard/soft  {hard_ok}/{n} = {hard_ok / n:.1%}  (target {TARGET_HARD:.0%}; Sisimai's hardbounce)",
        "  (for information, expected.jsonl alone: reason {}/{n}, hard/soft {}/{n})".format(
            *(sum(getattr(o, f) for o in bsd) for f in ("reason_ok", "hard_ok")), n=len(bsd)),
        *_per_server(all_o),
    ]
    for o in all_o:
        wrong = []
        if o.status_ok is False:
            wrong.append(f"status want {o.rec['status']}")
        if o.reply_ok is False:
            wrong.append(f"reply want {o.rec['replycode']}")
        if o.invented:
            wrong.append(f"invented {o.invented}")
        if wrong:
            lines.append(f"  FAIL {_rid(o.rec)}: {'; '.join(wrong)}; got {o.got_pair}")
    for o in all_o:
        v = o.verdict
        if not (o.reason_ok and o.hard_ok):
            lines.append(
                f"  VERDICT {_rid(o.rec)}: want {o.rec['reason']}/{'hard' if o.rec['hardbounce'] else 'soft'}, "
                f"got {v.reason}/{'hard' if v.hard else 'soft'} by {v.basis}: {(v.evidence or '-')[:100]}"
            )
    with capsys.disabled():
        print("\n".join(lines))
    assert not invented, [_rid(o.rec) for o in invented]
    assert s_ok / s_n >= TARGET_STATUS
    assert r_ok / r_n >= TARGET_REPLY
    assert reason_ok / n >= TARGET_REASON
    assert hard_ok / n >= TARGET_HARD
