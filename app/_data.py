"""Reading the data files that live beside the code that uses them, in each
layer's ``data/`` folder (wording, examples, code registries, other article
titles): YAML through libyaml when it is there."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=LOADER)


def data_text(package: str, name: str) -> str:
    """The text of ``<package>/data/<name>`` (``package`` as in ``app.codes``)."""
    return resources.files(package).joinpath(f"data/{name}").read_text(encoding="utf-8")


def data_file(package: str, name: str) -> Any:
    """``<package>/data/<name>`` parsed as YAML."""
    return load_yaml(data_text(package, name))
