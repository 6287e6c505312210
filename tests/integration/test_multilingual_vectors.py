"""The real multilingual encoder's document vectors written at ingest
(app.search.multilingual), over the real KB in a real embedded Chroma: a
non-English question is ranked exactly as when every document was embedded in
memory on the first such question, and that question embeds no document."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.search import lexical, multilingual as ml
from app.search.retrieval import HybridRetriever, language, multilingual_embedder

pytestmark = pytest.mark.slow

DEV = Path(__file__).resolve().parents[2] / "evals" / "datasets" / "dev.jsonl"


class Counting:
    """The process's multilingual-e5, counting the documents it embeds (no
    machine-wide cache by texts: every document asked for is embedded)."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.name = encoder.name
        self.documents = 0
        self.queries = 0

    def embed_documents(self, texts):
        texts = list(texts)
        self.documents += len(texts)
        return self.encoder.embed_documents(texts)

    def embed_query(self, text):
        self.queries += 1
        return self.encoder.embed_query(text)


def non_english_dev_questions() -> list[str]:
    cases = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [c["question"] for c in cases if language(c["question"]) != "en"]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder):
    """The real KB ingested by the real indexer, with the real multilingual encoder."""
    from app.config import Settings
    from app.search.chroma import make_client, open_collection
    from ingest.indexer import ingest

    from tests.conftest import KB, kb_documents

    settings = Settings().with_(kb_dir=KB, index_dir=tmp_path_factory.mktemp("ml") / "index", collection="ml_kb")
    client = make_client(settings)
    counting = Counting(multilingual_embedder())
    ingest(settings, client, embedder, progress=False, multilingual=counting)
    assert counting.documents == kb_documents()  # a new index: every document, once
    return settings, open_collection(client, settings), counting


def retriever(settings, col, embedder, encoder, multilingual_dir=True):
    return HybridRetriever(col, embedder, multilingual=lambda: encoder, lexical_dir=lexical.lexical_dir(settings),
                           multilingual_dir=ml.multilingual_dir(settings) if multilingual_dir else None)


def test_non_english_questions_rank_as_before_and_embed_no_document(indexed, embedder):
    settings, col, counting = indexed
    assert non_english_dev_questions()
    before = Counting(multilingual_embedder())
    reference = retriever(settings, col, embedder, before, multilingual_dir=False)  # the old way: all, in memory
    counting.documents = 0
    mapped = retriever(settings, col, embedder, counting)
    for q in non_english_dev_questions():
        got, want = mapped.search(q, k=3), reference.search(q, k=3)
        assert got.vector.space == want.vector.space == "multilingual"
        assert [h.id for h in got.hits] == [h.id for h in want.hits], q
        assert [h.score for h in got.hits] == pytest.approx([h.score for h in want.hits], abs=1e-6), q
        assert got.best_similarity == pytest.approx(want.best_similarity, abs=1e-6), q
    assert before.documents == len(col.get(include=[])["ids"])  # the old way embedded the whole KB
    assert counting.documents == 0 and counting.queries == len(non_english_dev_questions())


def test_ingest_vectors_equal_the_collections_texts_embedded(indexed):
    settings, col, _ = indexed
    path = ml.multilingual_dir(settings) / ml.cache_key(col.name, col.metadata["fingerprint"], ml.encoder_id(multilingual_embedder()))
    saved = ml.load(path, ml.encoder_id(multilingual_embedder()))
    fresh = ml.open_for(col, None, multilingual_embedder(), saved.ids)  # read back from Chroma, embedded now
    np.testing.assert_allclose(saved.matrix, fresh.matrix, atol=1e-6)


def test_a_changed_article_embeds_only_its_changed_documents(tmp_path, embedder, kb_copy):
    from app.config import Settings
    from app.search.chroma import make_client
    from ingest.indexer import ingest

    settings = Settings().with_(kb_dir=kb_copy, index_dir=tmp_path / "index", collection="ml_edit")
    client = make_client(settings)
    counting = Counting(multilingual_embedder())
    first = ingest(settings, client, embedder, progress=False, multilingual=counting)
    article = next(kb_copy.rglob("*.md"))
    text = article.read_text(encoding="utf-8")
    heading = "## Best practices to reduce delivery failures\n"
    assert heading in text
    article.write_text(text.replace(heading, heading + "\nA new sentence for this test.\n", 1), encoding="utf-8")
    counting.documents = 0
    second = ingest(settings, client, embedder, progress=False, multilingual=counting)
    assert 0 < second.added < first.chunks
    assert counting.documents == second.added


def test_a_replica_without_the_file_builds_it_once(indexed, embedder, tmp_path):
    settings, col, _ = indexed
    replica = settings.with_(index_dir=tmp_path / "replica-index")  # another machine: no vectors beside its index
    shutil.copytree(lexical.lexical_dir(settings), lexical.lexical_dir(replica))
    counting = Counting(multilingual_embedder())
    first = retriever(replica, col, embedder, counting)
    assert counting.documents == 0  # opening does not embed
    q = non_english_dev_questions()[0]
    a = first.search(q, k=3)
    assert counting.documents == len(col.get(include=[])["ids"])
    counting.documents = 0
    b = retriever(replica, col, embedder, counting).search(q, k=3)  # another process on that machine
    assert counting.documents == 0 and [h.id for h in a.hits] == [h.id for h in b.hits]


def test_multilingual_off_takes_the_english_path(indexed, embedder):
    settings, col, _ = indexed
    r = HybridRetriever(col, embedder, multilingual=None, lexical_dir=lexical.lexical_dir(settings),
                        multilingual_dir=ml.multilingual_dir(settings))
    assert r.search(non_english_dev_questions()[0], k=3).vector.space == "minilm"


def test_the_services_ingest_wrote_the_vectors_their_retriever_maps(services):
    r = services.answerer.retriever
    opened = ml.try_open(r.collection, ml.multilingual_dir(services.settings), multilingual_embedder(), r.lexical.ids)
    assert opened is not None and opened.check() and len(opened) == r.collection.count()


def test_with_multilingual_off_nothing_is_written_and_questions_take_the_english_path(tmp_path, embedder):
    from app.answering.services import build
    from app.config import Settings

    from tests.conftest import KB

    settings = Settings.from_env({"BOUNCEBOT_MULTILINGUAL": "off"}).with_(kb_dir=KB, index_dir=tmp_path / "index",
                                                                           collection="ml_off")
    services = build(settings, embedder=embedder, ingest_first=True)
    assert not ml.multilingual_dir(settings).exists()
    result = services.answerer.retriever.search("¿Cómo quito una dirección de la lista de rebotes?", k=3)
    assert result.vector.space == "minilm"
