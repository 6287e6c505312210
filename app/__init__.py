"""Bouncebot: answers support agents' questions about bounced email replies.

The package is split into layers, each importing only those below it
(``tests/unit/test_layers.py`` holds that):

- ``config``, ``errors``, ``_data``   settings, every error a user can cause, data files
- ``knowledge``   articles, sections, error-table rows; parsing; index documents
- ``codes``       finding codes in text, the table, the code registries, pasted bounces
- ``search``      embeddings, the Chroma client and index, the store guard, hybrid retrieval
- ``answering``   the answer policy and the services built once at start-up
- ``web``         the server: JSON API, chat, widget, security, feedback log
- ``cli``         the ``bouncebot`` command

``ingest`` (beside ``app``) builds the index from ``knowledge`` with the
``search`` layer's embedder and store; ``evals`` depends on all of it.
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
