"""Insights for the help-centre team (issue 15), read from the conversation log
(``app.storage.conversations``): what agents ask, what the article lacks, how answers land.

- ``Period.parse("7d" | "24h" | "2026-11-01..2026-11-30")``: the period a report covers;
- ``compute(log, period, embed=None)`` -> ``Insights``: totals and the tables in ``TABLES``
  (``to_dict()``, ``csv(table)``); ``embed`` (the MiniLM embedder's ``embed_documents``) groups
  refused questions by meaning, without it by shared words; ``CachedEmbed(embed)``, built once,
  embeds each distinct question once across calls (what a page visited again needs);
- ``eval_case(entry)``: a logged message as a ``bouncebot feedback export`` eval case;
- ``render(insights)``: the text ``bouncebot insights`` prints.

The layer sits above ``answering`` and below ``web``: it reads ``app.storage`` and takes the
embedder as a function; it never imports the web stack.
"""

from app.errors import BadPeriod, UnknownInsightsTable
from app.insights.export import COLUMNS, eval_case
from app.insights.grouping import CachedEmbed
from app.insights.period import Period
from app.insights.report import TABLES, Insights, compute
from app.insights.text import render

__all__ = ["BadPeriod", "COLUMNS", "CachedEmbed", "Insights", "Period", "TABLES", "UnknownInsightsTable", "compute",
           "eval_case", "render"]
