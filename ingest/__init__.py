"""Ingest: turn the help-centre articles in the KB folder into a vector index.

``indexer`` syncs the documents of ``app.knowledge.chunks`` into Chroma with an
embedder and a client handed to it: embed only what is new, build the new
version aside and switch to it at the end, never leave a mixed index. It
imports the knowledge and search layers only.
"""
