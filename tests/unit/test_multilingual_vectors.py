"""The multilingual encoder's document vectors on disk (app.search.multilingual):
computed at ingest for new documents only (unchanged ids reuse the previous
version's vectors), keyed by index version and encoder, memory-mapped at open,
and a missing, damaged or mismatched file rebuilt, never read. A counting fake
encoder stands in for multilingual-e5 (no model here)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from app.errors import BadSetting, IndexNotReady
from app.search import lexical, multilingual as ml
from app.search.chroma import fingerprint


class CountingEncoder:
    """Deterministic unit vectors from the text's hash; counts what it embeds."""

    def __init__(self, name="fake-e5", dim=8):
        self.name = name
        self.dim = dim
        self.embedded: list[str] = []
        self.queries = 0

    def _vec(self, text):
        raw = np.frombuffer(hashlib.sha256(f"{self.name}\x00{text}".encode()).digest()[: self.dim * 4], dtype=np.uint32)
        v = raw.astype(np.float64) / 2**32 - 0.5
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed_documents(self, texts):
        texts = list(texts)
        self.embedded += texts
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text):
        self.queries += 1
        return self._vec(text).tolist()


class PagedCollection:
    """What the vectors read of a Chroma collection: name, metadata and ``get`` in pages."""

    def __init__(self, name, docs: dict[str, str], fingerprint_of=None):
        self.name = name
        self.docs = [(i, t, {"heading_path": "H", "kind": "section"}) for i, t in docs.items()]
        self.metadata = {"fingerprint": fingerprint(list(docs) if fingerprint_of is None else fingerprint_of)}

    def get(self, include=(), limit=None, offset=0, ids=None):
        page = self.docs[offset : offset + limit if limit else None]
        return {"ids": [d[0] for d in page], "documents": [d[1] for d in page], "metadatas": [d[2] for d in page]}


DOCS_V1 = {"b-id": "bounce list", "a-id": "mailbox full", "c-id": "SPF and DKIM"}
DOCS_V2 = {"b-id": "bounce list", "a-id": "mailbox full", "d-id": "SPF, DKIM and DMARC"}  # c changed into d


def docs(d: dict[str, str]):
    return [(i, t, {"heading_path": "H", "kind": "section"}) for i, t in d.items()]


def row_ids(d: dict[str, str]) -> np.ndarray:
    """The lexical index's rows: the ids, sorted."""
    return lexical.in_memory(docs(d)).ids


def write(folder, name, d, enc, **kw):
    return ml.write_version(folder, name, fingerprint(list(d)), docs(d), enc, **kw)


def test_written_vectors_are_the_encoders_in_row_order(tmp_path):
    enc = CountingEncoder()
    path = write(tmp_path, "v1", DOCS_V1, enc)
    got = ml.load(path, ml.encoder_id(enc), row_ids(DOCS_V1))
    assert [i.decode() for i in got.ids] == sorted(DOCS_V1)
    want = np.stack([enc._vec(ml.document_text(DOCS_V1[i], {"heading_path": "H"})) for i in sorted(DOCS_V1)])
    np.testing.assert_array_equal(got.matrix, want)
    assert isinstance(np.load(path / "vectors.npy", mmap_mode="r"), np.memmap)  # mapped, not read
    assert len(enc.embedded) == 3


def test_a_new_version_embeds_only_its_added_or_changed_documents(tmp_path):
    enc = CountingEncoder()
    v1 = write(tmp_path, "v1", DOCS_V1, enc)
    enc.embedded.clear()
    v2 = write(tmp_path, "v2", DOCS_V2, enc)
    assert enc.embedded == [ml.document_text(DOCS_V2["d-id"], {"heading_path": "H"})]
    old, new = ml.load(v1), ml.load(v2, expected_ids=row_ids(DOCS_V2))
    for i in ("a-id", "b-id"):
        np.testing.assert_array_equal(new.matrix[list(new.ids).index(i.encode())], old.matrix[list(old.ids).index(i.encode())])
    enc.embedded.clear()
    write(tmp_path, "v3", DOCS_V1, enc)  # back to v1's documents: all reused
    assert enc.embedded == []


def test_vectors_of_another_encoder_are_never_reused(tmp_path):
    write(tmp_path, "v1", DOCS_V1, CountingEncoder("e5-a"))
    other = CountingEncoder("e5-b")
    path = write(tmp_path, "v2", DOCS_V1, other)
    assert len(other.embedded) == 3
    with pytest.raises(ValueError, match="not 'e5-a'"):
        ml.load(path, "e5-a")


def test_vectors_are_keyed_by_version_and_encoder():
    keys = {ml.cache_key(n, f, e) for n, f, e in [("v1", "f1", "e"), ("v2", "f1", "e"), ("v1", "f2", "e"), ("v1", "f1", "x")]}
    assert len(keys) == 4


def test_open_maps_the_versions_file_without_embedding(tmp_path):
    enc = CountingEncoder()
    write(tmp_path, "v1", DOCS_V1, enc)
    enc.embedded.clear()
    col = PagedCollection("v1", DOCS_V1)
    got = ml.open_for(col, tmp_path, enc, row_ids(DOCS_V1))
    assert enc.embedded == [] and len(got) == 3
    assert ml.try_open(PagedCollection("v2", DOCS_V2), tmp_path, enc, row_ids(DOCS_V2)) is None  # another version


def test_a_replica_without_the_file_builds_it_once_from_the_collection(tmp_path):
    enc = CountingEncoder()
    col = PagedCollection("v1", DOCS_V1)
    first = ml.open_for(col, tmp_path / "vec", enc, row_ids(DOCS_V1))
    assert len(enc.embedded) == 3
    enc.embedded.clear()
    again = ml.open_for(col, tmp_path / "vec", enc, row_ids(DOCS_V1))  # another process on the machine
    assert enc.embedded == []
    np.testing.assert_array_equal(first.matrix, again.matrix)


def _flip_last_byte(p):
    b = bytearray(p.read_bytes())
    b[-1] ^= 0xFF
    p.write_bytes(bytes(b))


def _other_format(path):
    m = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**m, "format": "e5-vectors/0"}))


DAMAGE = {
    "vectors flipped": lambda path: _flip_last_byte(path / "vectors.npy"),
    "ids flipped": lambda path: _flip_last_byte(path / "ids.npy"),
    "vectors truncated": lambda path: (path / "vectors.npy").write_bytes((path / "vectors.npy").read_bytes()[:-8]),
    "vectors missing": lambda path: (path / "vectors.npy").unlink(),
    "manifest missing": lambda path: (path / "manifest.json").unlink(),
    "manifest garbled": lambda path: (path / "manifest.json").write_text("{not json"),
    "other format": _other_format,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_file_is_rebuilt_never_read(tmp_path, damage):
    enc = CountingEncoder()
    path = write(tmp_path, "v1", DOCS_V1, enc)
    good = np.array(ml.load(path).matrix)
    DAMAGE[damage](path)
    with pytest.raises(ValueError):
        ml.load(path, ml.encoder_id(enc), row_ids(DOCS_V1))
    enc.embedded.clear()
    col = PagedCollection("v1", DOCS_V1)
    opened = ml.try_open(col, tmp_path, enc, row_ids(DOCS_V1))  # at open: the ids and sizes are checked
    assert opened is None or not opened.check()  # the matrix's checksum, at the first non-English question
    got = ml.open_for(col, tmp_path, enc, row_ids(DOCS_V1), opened=opened)
    assert len(enc.embedded) == 3  # embedded again: nothing taken from the damaged file
    np.testing.assert_array_equal(got.matrix, good)
    ml.load(path, ml.encoder_id(enc), row_ids(DOCS_V1))  # and saved whole


def test_a_matrix_damaged_after_open_is_caught_at_first_use_and_rebuilt(tmp_path):
    enc = CountingEncoder()
    path = write(tmp_path, "v1", DOCS_V1, enc)
    good = np.array(ml.load(path).matrix)
    col = PagedCollection("v1", DOCS_V1)
    opened = ml.try_open(col, tmp_path, enc, row_ids(DOCS_V1))
    assert opened is not None and not opened.checked  # opening checks the ids, not the matrix's checksum
    _flip_last_byte(path / "vectors.npy")
    enc.embedded.clear()
    got = ml.open_for(col, tmp_path, enc, row_ids(DOCS_V1), opened=opened)
    assert got is not opened and got.checked and len(enc.embedded) == 3
    np.testing.assert_array_equal(got.matrix, good)


def test_an_intact_opened_matrix_is_used_as_it_is(tmp_path):
    enc = CountingEncoder()
    write(tmp_path, "v1", DOCS_V1, enc)
    col = PagedCollection("v1", DOCS_V1)
    opened = ml.try_open(col, tmp_path, enc, row_ids(DOCS_V1))
    enc.embedded.clear()
    assert ml.open_for(col, tmp_path, enc, row_ids(DOCS_V1), opened=opened) is opened and opened.checked
    assert enc.embedded == []


def test_vectors_whose_ids_are_not_the_versions_are_refused_and_rebuilt(tmp_path):
    enc = CountingEncoder()
    col = PagedCollection("v1", DOCS_V1)
    key = ml.cache_key("v1", col.metadata["fingerprint"], ml.encoder_id(enc))
    wrong = ml.compute(docs(DOCS_V2), enc)  # whole and checksummed, but of other documents
    ml.save(tmp_path, key, wrong, {"collection": "v1", "fingerprint": col.metadata["fingerprint"],
                                   "encoder": ml.encoder_id(enc)})
    with pytest.raises(ValueError, match="ids are not"):
        ml.load(tmp_path / key, ml.encoder_id(enc), row_ids(DOCS_V1))
    got = ml.open_for(col, tmp_path, enc, row_ids(DOCS_V1))
    assert [i.decode() for i in got.ids] == sorted(DOCS_V1)


def test_a_collection_that_changed_behind_its_fingerprint_is_refused(tmp_path):
    col = PagedCollection("v1", DOCS_V1, fingerprint_of=list(DOCS_V2))
    with pytest.raises(IndexNotReady, match="bouncebot ingest"):
        ml.open_for(col, tmp_path, CountingEncoder(), row_ids(DOCS_V1))
    with pytest.raises(IndexNotReady, match="bouncebot ingest"):
        ml.write_version(tmp_path, "v1", fingerprint(list(DOCS_V2)), docs(DOCS_V1), CountingEncoder())


def test_without_a_folder_the_vectors_are_computed_in_memory(tmp_path):
    enc = CountingEncoder()
    got = ml.open_for(PagedCollection("v1", DOCS_V1), None, enc, row_ids(DOCS_V1))
    assert len(enc.embedded) == 3 and [i.decode() for i in got.ids] == sorted(DOCS_V1)
    assert not any(tmp_path.iterdir())


def test_an_empty_version_loads(tmp_path):
    path = ml.write_version(tmp_path, "v0", fingerprint([]), [], CountingEncoder())
    assert len(ml.load(path, expected_ids=np.array([], dtype="S1"))) == 0


def test_only_the_newest_folders_are_kept(tmp_path):
    import os

    enc = CountingEncoder()
    for n in range(ml.KEEP + 2):
        path = write(tmp_path, f"v{n}", {**DOCS_V1, f"x{n}": f"doc {n}"}, enc)
        os.utime(path, (n + 1e9, n + 1e9))
    assert len([p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]) == ml.KEEP


@pytest.mark.parametrize("settings,chroma_url,tail", [
    ({}, None, ("index", "multilingual")),
    ({}, "http://chroma:8000", ("multilingual",)),
])
def test_where_the_vectors_live(tmp_path, settings, chroma_url, tail):
    from app.config import Settings

    s = Settings().with_(index_dir=tmp_path / "index", model_dir=tmp_path / "cache" / "model", chroma_url=chroma_url)
    got = ml.multilingual_dir(s)
    if chroma_url:  # this machine's cache, beside the lexical index's, one folder per server
        assert got.parent == tmp_path / "cache" / "multilingual" and got.name == lexical.lexical_dir(s).name
    else:  # under the index: removed with it
        assert got == tmp_path.joinpath(*tail)


@pytest.mark.parametrize("raw,want", [(None, True), ("on", True), ("1", True), ("off", False), ("0", False),
                                      ("false", False), (" OFF ", False)])
def test_multilingual_setting(raw, want):
    from app.config import Settings

    env = {} if raw is None else {"BOUNCEBOT_MULTILINGUAL": raw}
    assert Settings.from_env(env).multilingual is want


def test_a_bad_multilingual_setting_says_what_to_use():
    from app.config import Settings

    with pytest.raises(BadSetting, match="on or off"):
        Settings.from_env({"BOUNCEBOT_MULTILINGUAL": "maybe"})


# --- at ingest (the real indexer, a real embedded Chroma, fake encoders) ---------------------


def _ingest(tmp_path, kb, **kw):
    from app.search.chroma import make_client, open_collection
    from ingest.indexer import ingest

    from ..fakes import FakeEmbedder, fake_settings

    settings = fake_settings(tmp_path / "index", kb_dir=kb)
    client = make_client(settings)
    report = ingest(settings, client, FakeEmbedder(), progress=False, **kw)
    return settings, open_collection(client, settings), report


def _vectors_of(settings, col, enc):
    return ml.load(ml.multilingual_dir(settings) / ml.cache_key(col.name, col.metadata["fingerprint"], ml.encoder_id(enc)),
                   ml.encoder_id(enc))


def test_ingest_writes_the_versions_vectors_and_reuses_them_for_unchanged_documents(tmp_path):
    import shutil

    from ..conftest import KB

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    enc = CountingEncoder()
    settings, col, first = _ingest(tmp_path, kb, multilingual=enc)
    assert len(enc.embedded) == first.chunks and len(_vectors_of(settings, col, enc)) == first.chunks
    article = next(kb.rglob("*.md"))
    heading = "## Best practices to reduce delivery failures\n"
    article.write_text(article.read_text(encoding="utf-8").replace(heading, heading + "\nOne more sentence.\n", 1),
                       encoding="utf-8")
    enc.embedded.clear()
    settings, col2, second = _ingest(tmp_path, kb, multilingual=enc)
    assert col2.name != col.name and 0 < second.added < second.chunks
    assert len(enc.embedded) == second.added  # only what changed
    assert len(_vectors_of(settings, col2, enc)) == second.chunks


def test_ingest_of_an_up_to_date_index_adds_missing_vectors_only(tmp_path):
    from ..conftest import KB

    enc = CountingEncoder()
    settings, col, report = _ingest(tmp_path, KB, multilingual=None)  # built with BOUNCEBOT_MULTILINGUAL=off
    assert not ml.multilingual_dir(settings).exists()
    _ingest(tmp_path, KB, multilingual=enc)
    assert len(enc.embedded) == report.chunks and len(_vectors_of(settings, col, enc)) == report.chunks
    enc.embedded.clear()
    _ingest(tmp_path, KB, multilingual=enc)
    assert enc.embedded == []


def test_ingest_with_a_stand_in_embedder_writes_no_multilingual_vectors_by_default(tmp_path):
    """A test's fake MiniLM gets no real multilingual-e5 work (unit tests stay model-free)."""
    from ..conftest import KB

    settings, _, _ = _ingest(tmp_path, KB)
    assert not ml.multilingual_dir(settings).exists()


def test_the_retriever_maps_the_ingested_vectors_and_ranks_as_in_memory(tmp_path):
    from app.search.retrieval import HybridRetriever

    from ..conftest import KB
    from ..fakes import FakeEmbedder

    enc = CountingEncoder()
    settings, col, report = _ingest(tmp_path, KB, multilingual=enc)
    enc.embedded.clear()
    mapped = HybridRetriever(col, FakeEmbedder(), multilingual=lambda: enc, lexical_dir=lexical.lexical_dir(settings),
                             multilingual_dir=ml.multilingual_dir(settings))
    reference = CountingEncoder()
    in_memory = HybridRetriever(col, FakeEmbedder(), multilingual=lambda: reference)
    for q in ["¿Cómo quito una dirección de la lista de rebotes?", "Wie kann ich eine Adresse von der Bounce-Liste entfernen?"]:
        got, want = mapped.search(q, k=3), in_memory.search(q, k=3)
        assert got.vector.space == "multilingual"
        assert [(h.id, h.score) for h in got.hits] == [(h.id, h.score) for h in want.hits]
    assert enc.embedded == [] and len(reference.embedded) == report.chunks


def test_a_kb_larger_than_the_limit_gets_no_vectors_and_its_questions_take_the_english_path(tmp_path, caplog):
    """The multilingual model embeds a few documents a second here: above BOUNCEBOT_MULTILINGUAL_MAX_DOCS
    neither ingest nor a question embeds the whole KB with it (hours at 60,000 documents)."""
    from app.search.chroma import make_client, open_collection
    from app.search.retrieval import HybridRetriever
    from ingest.indexer import ingest

    from ..conftest import KB
    from ..fakes import FakeEmbedder, fake_settings

    enc = CountingEncoder()
    settings = fake_settings(tmp_path / "index", kb_dir=KB).with_(multilingual_max_docs=3)
    client = make_client(settings)
    report = ingest(settings, client, FakeEmbedder(), progress=False, multilingual=enc)
    assert report.chunks > 3 and enc.embedded == [] and not ml.multilingual_dir(settings).exists()
    assert "BOUNCEBOT_MULTILINGUAL_MAX_DOCS=3" in caplog.text
    col = open_collection(client, settings)
    capped = HybridRetriever(col, FakeEmbedder(), multilingual=lambda: enc, multilingual_dir=ml.multilingual_dir(settings),
                             multilingual_max_docs=3)
    got = capped.search("¿Cómo quito una dirección de la lista de rebotes?", k=3)
    assert got.vector.space == "minilm" and got.hits and enc.embedded == []
    free = HybridRetriever(col, FakeEmbedder(), multilingual=lambda: enc, multilingual_dir=ml.multilingual_dir(settings))
    assert free.search("¿Cómo quito una dirección de la lista de rebotes?", k=3).vector.space == "multilingual"
    assert len(enc.embedded) == report.chunks  # without the limit the question embeds them all, once
