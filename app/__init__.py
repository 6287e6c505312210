"""Bouncebot: answers support agents' questions about bounced email replies.

The package is split by role:

- ``config``     one settings object, read once from the environment
- ``errors``     the exceptions a user can cause, each with a message saying what to do
- ``codes``      finding SMTP reply codes and enhanced status codes in free text
- ``bounce``     reading pasted bounce messages: recipients and decisive codes (``_mime``)
- ``lookup``     matching found codes against the article's error table (exact or not)
- ``registry``   general meanings of codes the table lacks, from data files
- ``tools``      the look-up as a LangChain tool
- ``embeddings`` the offline MiniLM embedding model (run through ONNX)
- ``store``      the Chroma client (embedded or server) and the index's fingerprint
- ``retrieval``  hybrid dense + BM25 search over the index
- ``answer``     composing the answer contract from look-up and retrieval
- ``startup``    building the clients once
- ``chat``       the agents' Gradio chat (built separately from launching)
- ``api``        the JSON API; ``feedback`` the SQLite feedback store
- ``widget``     the help-centre widget and the /demo page
- ``server``     one FastAPI app serving all of the above
- ``cli``        the ``bouncebot`` command
"""

import os

# Nothing in this package may reach the internet: set the switches that keep
# Hugging Face and Gradio offline before any of them is imported.
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)

__version__ = "0.1.0"
