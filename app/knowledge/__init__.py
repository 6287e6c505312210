"""The knowledge model, at the bottom: articles, sections, blocks and error-table
rows (``articles``: Markdown with front matter, HTML through ``_html``, plain
text), and their index documents with content-hash IDs (``chunks``). Imports
nothing of the rest of the app."""
