"""Ingest: turn the help-centre articles in the KB folder into a vector index.

- ``articles``  parse Markdown (with front matter), HTML (``_html``) and plain text into
                sections and structured error-table rows
- ``chunks``    cut articles into index documents with content-hash IDs
- ``indexer``   sync those documents into Chroma: embed only what is new,
                remove what is gone, never leave a half-written index
"""
