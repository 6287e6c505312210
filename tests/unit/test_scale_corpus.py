"""The scale corpus generator (evals/scale_corpus.py): deterministic, labelled, paginated like the
Zendesk articles API, with drafts, code tables (new codes and repeats of the real table's) and the
real article beside it. No model, no store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.knowledge.articles import load_articles
from evals import scale_corpus as sc

REAL_TITLE = "Common Email Delivery Errors"


def pages(out: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob(sc.PAGE_GLOB))]


def exported(out: Path) -> list[dict]:
    return [a for p in pages(out) for a in p["articles"]]


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.parametrize("n", [0, 1, 57, 100, 101, 250])
def test_same_n_gives_the_same_bytes(tmp_path, n):
    a, b = tmp_path / "a", tmp_path / "b"
    sc.write_corpus(n, a)
    sc.write_corpus(n, b)
    assert snapshot(a) == snapshot(b)
    assert (a / sc.REAL_ARTICLE.name).read_bytes() == sc.REAL_ARTICLE.read_bytes()


def test_another_seed_gives_other_articles_and_article_i_does_not_depend_on_n(tmp_path):
    sc.write_corpus(40, tmp_path / "s0")
    sc.write_corpus(40, tmp_path / "s1", seed=1)
    assert snapshot(tmp_path / "s0") != snapshot(tmp_path / "s1")
    sc.write_corpus(250, tmp_path / "big")
    small = [a for a in exported(tmp_path / "s0") if not a["draft"]]
    big = {a["id"]: a for a in exported(tmp_path / "big")}
    assert all(big[a["id"]] == a for a in small)


def test_rewriting_a_smaller_corpus_removes_the_old_pages(tmp_path):
    sc.write_corpus(350, tmp_path)
    sc.write_corpus(120, tmp_path)
    assert [p.name for p in sorted(tmp_path.glob(sc.PAGE_GLOB))] == [sc.page_name(1), sc.page_name(2)]
    assert sum(not a["draft"] for a in exported(tmp_path)) == 120


@pytest.mark.parametrize("n", [1, 57, 250])
def test_every_synthetic_article_is_labelled_and_shaped_like_the_api(tmp_path, n):
    sc.write_corpus(n, tmp_path)
    arts = exported(tmp_path)
    assert arts
    for a in arts:
        assert list(a) == ["id", "title", "body", "html_url", "section_id", "locale", "updated_at", "draft"]
        assert a["title"].endswith(sc.TITLE_SUFFIX)
        assert a["body"].startswith(f"<p>{sc.LABEL}")
        assert a["html_url"].startswith("https://synthetic-help.invalid/hc/")
        assert a["locale"] == "en" and isinstance(a["draft"], bool) and isinstance(a["section_id"], int)
        assert len(a["updated_at"]) == 20 and a["updated_at"].endswith("Z")


@pytest.mark.parametrize("n, drafts", [(0, 0), (1, 1), (199, 1), (400, 2), (1000, 5)])
def test_drafts_are_written_besides_the_n_articles(tmp_path, n, drafts):
    summary = sc.write_corpus(n, tmp_path)
    arts = exported(tmp_path)
    assert summary["drafts"] == sum(a["draft"] for a in arts) == drafts
    assert sum(not a["draft"] for a in arts) == n
    assert all("draft" in a["title"] for a in arts if a["draft"])


@pytest.mark.parametrize("n, per_page, count", [(0, 100, 0), (1, 100, 1), (250, 100, 3), (250, 50, 6), (99, 100, 1)])
def test_pages_link_to_each_other(tmp_path, n, per_page, count):
    sc.write_corpus(n, tmp_path, per_page=per_page)
    ps = pages(tmp_path)
    assert len(ps) == count
    total = sum(len(p["articles"]) for p in ps)
    for k, p in enumerate(ps, 1):
        assert p["page"] == k and p["page_count"] == count and p["count"] == total
        assert 0 < len(p["articles"]) <= per_page
        if k < count:
            assert p["next_page"].endswith(f"?page={k + 1}&per_page={per_page}")
        else:
            assert p["next_page"] is None


def test_ids_and_urls_are_unique(tmp_path):
    sc.write_corpus(1000, tmp_path)
    arts = exported(tmp_path)
    assert len({a["id"] for a in arts}) == len(arts)
    assert len({a["html_url"] for a in arts}) == len(arts)
    assert len({a["title"] for a in arts}) == len(arts)


def test_topics_come_from_the_navigation_list_and_vary():
    topics = sc.load_topics()
    assert len(topics) > 90 and ("Inbox", "Merging Conversations in SparrowDesk") in topics
    assert all(title != REAL_TITLE for _, title in topics)
    bodies = [sc.article(i, topics)["body"] for i in range(len(topics), 3 * len(topics), len(topics))]
    assert len(set(bodies)) == len(bodies)  # one topic, other words


def test_the_loader_reads_the_corpus_skips_drafts_and_finds_the_tables(tmp_path):
    sc.write_corpus(300, tmp_path)
    articles = load_articles(tmp_path)
    assert len(articles) == 301  # the drafts are skipped; the real article is there
    real = [a for a in articles if a.title == REAL_TITLE]
    assert len(real) == 1 and len(real[0].rows) == len(sc.REAL_CODES)
    assert {r.code for r in real[0].rows} == set(sc.REAL_CODES)
    synthetic_rows = [r for a in articles if a.title != REAL_TITLE for r in a.rows]
    new_codes = {r.code for r in synthetic_rows} - set(sc.REAL_CODES)
    assert {"452-4.2.2", "554-5.7.1"} <= new_codes <= set(sc.EXTRA_CODES)
    repeats = [r for r in synthetic_rows if r.code in sc.REAL_CODES]
    assert repeats and all(r.url.startswith(sc.HOST) for r in repeats)
    tabled = sum(1 for a in articles if a.rows and a.title != REAL_TITLE)
    assert 0.1 < tabled / 300 < 0.35  # "some" articles have a table, most do not


def test_cli_writes_the_folder_and_refuses_bad_numbers(tmp_path, capsys):
    assert sc.main(["--articles", "12", "--out", str(tmp_path / "kb")]) == 0
    assert "Wrote 12 synthetic articles" in capsys.readouterr().out
    assert sum(not a["draft"] for a in exported(tmp_path / "kb")) == 12
    assert sc.main(["--articles", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "--articles must be 0 or more" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- the bench harness's own parts

from evals import bench_scale as bs, scale_scoring  # noqa: E402

REAL_URL = "https://help.example/real-article/"


def pred(answered=True, claimed=(), real_exact=(), codes=(), real_sources=0, n_sources=1, real_codes=None,
         ranked=(), synthetic_rows=()):
    return {"answered": answered, "claimed": list(claimed), "real_exact": set(real_exact), "codes": list(codes),
            "real_sources": real_sources, "n_sources": n_sources,
            "real_codes": list(real_exact if real_codes is None else real_codes),
            "cited": list(ranked), "ranked": list(ranked), "synthetic_rows": set(synthetic_rows)}


@pytest.mark.parametrize("category, expect, p, answered, claimed, codes, why", [
    # another topic answered from synthetic articles only: counted as a refusal
    ("unanswerable", {"answered": False}, pred(), False, [], [], "other topic"),
    # ... but not when the real article was cited too
    ("unanswerable", {"answered": False}, pred(real_sources=1), True, [], [], None),
    # ... a decoy or a topic switch that asks about another topic is one too
    ("decoy", {"answered": False, "no_codes": True}, pred(), False, [], [], "other topic"),
    ("topic_switch", {"answered": False}, pred(), False, [], [], "other topic"),
    # ... but small talk and adversarial messages are not: no article on a topic answers those
    ("small_talk", {"answered": False}, pred(), True, [], [], None),
    ("adversarial", {"answered": False}, pred(), True, [], [], None),
    # ... nor a decoy that should be answered
    ("decoy", {"answered": True, "no_codes": True}, pred(), True, [], [], None),
    # ... nor for a case that should be answered
    ("free_form", {"answered": True}, pred(), True, [], [], None),
    # an exact row from a synthetic table for a code the real table lacks: not a claim on the real table
    ("code_missing", {"no_exact": True}, pred(claimed=["452-4.2.2"], codes=[("452-4.2.2", "exact")]),
     True, [], [("452-4.2.2", "none")], "synthetic article's table"),
    # the real row stays claimed beside a synthetic one
    ("code_shape", {}, pred(claimed=["550-5.1.1", "554-5.7.1"], real_exact=["550-5.1.1"], real_sources=1,
                            codes=[("550-5.1.1", "exact"), ("554-5.7.1", "exact")]),
     True, ["550-5.1.1"], [("550-5.1.1", "exact"), ("554-5.7.1", "none")], "synthetic article's table"),
    # an enhanced code alone shown with the real row and a synthetic one (another reply code): the real
    # row stays claimed and the code stays exact; the synthetic row is not a claim on the real table
    ("code_shape", {}, pred(claimed=["550-5.7.1", "554-5.7.1"], real_exact=["550-5.7.1"], real_codes=["5.7.1"],
                            real_sources=1, codes=[("5.7.1", "exact")]),
     True, ["550-5.7.1"], [("5.7.1", "exact")], "synthetic article's table"),
    # nothing synthetic: unchanged
    ("code_shape", {}, pred(claimed=["550-5.1.1"], real_exact=["550-5.1.1"], real_sources=1,
                            codes=[("550-5.1.1", "exact")]), True, ["550-5.1.1"], [("550-5.1.1", "exact")], None),
])
def test_adjusted_scoring_excuses_only_synthetic_answers(category, expect, p, answered, claimed, codes, why):
    got, reason = scale_scoring.adjusted({"category": category, "expect": expect}, p)
    assert got["answered"] is answered and got["claimed"] == claimed and got["codes"] == codes
    assert (reason is None) if why is None else (why in reason)


@pytest.mark.parametrize("p, ranked", [
    # two codes, the first only in synthetic tables: its rows are no ranking loss for the real row after them
    (pred(claimed=["550-5.7.26", "550-5.7.1"], real_exact=["550-5.7.1"], real_sources=1,
          ranked=["A > Codes", "B > Codes", "Common delivery errors"], synthetic_rows=["A > Codes", "B > Codes"]),
     ["Common delivery errors"]),
    # nothing synthetic among the rows: the ranking as it is
    (pred(claimed=["550-5.1.1"], real_exact=["550-5.1.1"], real_sources=1, ranked=["Common delivery errors", "Intro"]),
     ["Common delivery errors", "Intro"]),
])
def test_adjusted_scoring_leaves_synthetic_rows_of_an_exact_answer_out_of_the_ranking(p, ranked):
    got, _ = scale_scoring.adjusted({"category": "code_shape", "expect": {}}, p)
    assert got["ranked"] == got["cited"] == ranked
    assert p["ranked"] != ranked or not p["synthetic_rows"]  # the prediction itself is untouched


@pytest.mark.parametrize("url, real", [(REAL_URL, True), (REAL_URL + "#common-delivery-errors", True),
                                       ("https://synthetic-help.invalid/hc/en-us/articles/1-x", False),
                                       (None, False), ("", False)])
def test_is_real_tells_the_real_article_by_its_url(url, real):
    assert scale_scoring.is_real(url, REAL_URL) is real


@pytest.mark.parametrize("raw, sizes", [("", [1000, 10000]), ("200", [200]), ("200, 1000", [200, 1000])])
def test_sizes_come_from_the_environment(monkeypatch, raw, sizes):
    monkeypatch.setenv("BENCH_SCALE_SIZES", raw)
    assert bs.sizes_from_env() == sizes


@pytest.mark.parametrize("var, raw", [("BENCH_SCALE_SIZES", "1k"), ("BENCH_SCALE_STORES", "disk"),
                                      ("BENCH_SCALE_STORES", ",")])
def test_bad_settings_stop_with_what_to_write(monkeypatch, var, raw):
    monkeypatch.setenv(var, raw)
    with pytest.raises(SystemExit, match=var):
        bs.sizes_from_env() if var == "BENCH_SCALE_SIZES" else bs.stores_from_env()


def test_changing_one_article_changes_one_article_only(tmp_path):
    sc.write_corpus(250, tmp_path)
    before = {a["id"]: a for a in exported(tmp_path)}
    changed = bs.change_one_article(tmp_path)
    after = {a["id"]: a for a in exported(tmp_path)}
    assert [str(i) for i in before if before[i] != after[i]] == [changed]
    assert len(load_articles(tmp_path)) == 251
