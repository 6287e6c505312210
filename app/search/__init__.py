"""Search: the offline embedding model (``embeddings``), the Chroma client and the
index's versions and fingerprint (``chroma``), the guard every store call goes
through (``guard``) and hybrid dense + BM25 retrieval (``retrieval``)."""
