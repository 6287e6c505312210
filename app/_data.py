"""Reading the data files that live in app/data/ (wording, examples, code
registry, other article titles): YAML through libyaml when it is there."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=LOADER)


def data_file(name: str) -> Any:
    return load_yaml(resources.files("app").joinpath(f"data/{name}").read_text(encoding="utf-8"))
