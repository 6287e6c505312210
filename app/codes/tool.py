"""The code look-up as a LangChain tool, for agents and chains.

The tool returns the same JSON objects as ``bouncebot lookup --json``: a
table row verbatim when the match is exact, ``"row": null`` otherwise.
"""

from __future__ import annotations

import json

from langchain_core.tools import BaseTool, StructuredTool

from app.codes.table import CodeTable

DESCRIPTION = (
    "Look up SMTP reply codes (e.g. 550) and enhanced status codes (e.g. 5.1.1) found in a bounce "
    "message or question. Returns JSON: for each code, whether it matches a row of the help article's "
    "error table exactly, and if so the row's meaning and what to do, word for word. A code with "
    '"match": "none" is not in the table: do not state a meaning for it.'
)


def make_lookup_tool(table: CodeTable) -> BaseTool:
    def lookup_smtp_codes(text: str) -> str:
        result = table.analyse(text)
        return json.dumps({"codes": [m.as_contract() for m in result.matches], "limits": result.limits.as_contract()},
                          ensure_ascii=False)

    return StructuredTool.from_function(lookup_smtp_codes, name="lookup_smtp_codes", description=DESCRIPTION)
