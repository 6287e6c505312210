"""The bounce parser against the second corpus: 216 bounces from other bounce
parsers' test suites, with the failed recipients (and, for some, the codes)
those suites assert (shared/data/bounces-external, see its README.md).

Per file: parsing does not fail, and every failed recipient the source
asserts is reported (or one of its ``recipient_alternatives``). Files whose
``recipients`` is null (the source states none) are only parsed.

In total (printed with -s): recipient recall and precision per source, status
and reply agreement, and the slowest file's CPU time (printed, not asserted).
The targets: recall >= 98%, and no reported address that is not a failed
recipient of its file.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.codes.bounce import Bounce, read_bounce

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "bounces-external"
TARGET_RECALL = 0.98

if not (DATA / "expected.jsonl").is_file():  # pragma: no cover - the corpus ships beside the project
    pytest.skip(f"external bounce corpus not found at {DATA}", allow_module_level=True)

RECORDS = [json.loads(line) for line in (DATA / "expected.jsonl").read_text(encoding="utf-8").splitlines() if line]


@dataclass
class Result:
    rec: dict
    bounce: Bounce
    seconds: float  # CPU time of read_bounce

    @property
    def source(self) -> str:
        return self.rec["source"].split("@")[0]

    @property
    def got(self) -> list[str]:
        return [r.recipient.lower() for r in self.bounce.recipients if r.recipient]

    def accepted(self, expected: str) -> set[str]:
        """``expected`` and the alternatives the source accepts for it (lower case)."""
        alternatives = self.rec.get("recipient_alternatives") or []
        return {expected.lower(), *(a.lower() for a in alternatives)}

    @property
    def missed(self) -> list[str]:
        return [e for e in self.rec["recipients"] or [] if not self.accepted(e) & set(self.got)]

    @property
    def extras(self) -> list[str]:
        allowed = {a for e in self.rec["recipients"] or [] for a in self.accepted(e)}
        allowed |= {a.lower() for a in self.rec.get("recipient_alternatives") or []}
        return [g for g in self.got if g not in allowed]


def _parse(rec: dict) -> Result:
    raw = (DATA / rec["file"]).read_bytes()
    start = time.process_time()
    bounce = read_bounce(raw)
    return Result(rec, bounce, time.process_time() - start)


@pytest.fixture(scope="module")
def results() -> dict[str, Result]:
    return {rec["file"]: _parse(rec) for rec in RECORDS}


@pytest.mark.parametrize("rec", RECORDS, ids=[r["file"].removeprefix("emails/") for r in RECORDS])
def test_file_gives_its_failed_recipients(rec, results):
    result = results[rec["file"]]
    assert isinstance(result.bounce, Bounce)
    if rec["recipients"] is None:
        return  # the source states none: parsing must only not fail
    assert not result.missed, f"missed {result.missed}; got {result.got}"


def _agreement(results: list[Result], field: str, attribute: str) -> tuple[int, int]:
    """Expected codes (``field``: 'status' or 'reply') that a recipient of the file reports."""
    ok = n = 0
    for r in results:
        got = {getattr(x, attribute) for x in r.bounce.recipients}
        for want in r.rec.get(field) or []:
            alternatives = r.rec.get(f"{field}_alternatives") or []
            n += 1
            ok += want in got or any(a in got for a in alternatives)
    return ok, n


def _rate(ok: int, n: int) -> str:
    return f"{ok}/{n} = {ok / n:.1%}" if n else "-"


def test_external_corpus_recall_and_precision(results, capsys):
    asserted = [r for r in results.values() if r.rec["recipients"] is not None]
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # expected, found, reported, extras
    for r in asserted:
        counts = per[r.source]
        counts[0] += len(r.rec["recipients"])
        counts[1] += len(r.rec["recipients"]) - len(r.missed)
        counts[2] += len(r.got)
        counts[3] += len(r.extras)
    expected, found, reported, extras = (sum(c[i] for c in per.values()) for i in range(4))
    slowest = max(results.values(), key=lambda r: r.seconds)
    lines = [
        "",
        f"external bounce corpus: {len(results)} files, {len(asserted)} with asserted recipients",
        f"  recipients recall {_rate(found, expected)} (target {TARGET_RECALL:.0%}), "
        f"precision {_rate(reported - extras, reported)}, {extras} reported that are not failed recipients",
    ]
    for source, (e, f, g, x) in sorted(per.items()):
        lines.append(f"    {source}: recall {_rate(f, e)}, precision {_rate(g - x, g)}")
    lines += [
        f"  status agreement {_rate(*_agreement(list(results.values()), 'status', 'status'))}, "
        f"reply agreement {_rate(*_agreement(list(results.values()), 'reply', 'reply_code'))}",
        f"  slowest file: {slowest.rec['file']} {slowest.seconds * 1000:.1f} ms CPU",
    ]
    for r in asserted:
        if r.missed or r.extras:
            lines.append(f"  FAIL {r.rec['file']}: missed {r.missed}, extra {r.extras}")
    with capsys.disabled():
        print("\n".join(lines))
    assert found / expected >= TARGET_RECALL
    assert extras == 0, [(r.rec["file"], r.extras) for r in asserted if r.extras]
