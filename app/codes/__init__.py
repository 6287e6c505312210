"""Codes and bounces: finding SMTP codes in text (``find``), the article's error
table and exact matching (``table``), general meanings of codes the table lacks
from data files (``registry``, ``data/``), reading pasted bounce messages
(``bounce``, MIME in ``_mime``) and the look-up as a LangChain tool (``tool``).
Needs neither the model nor the vector store."""
