"""The widget panel's scripts as files (no server, no browser): panel.html loads every one of them, in
the order ``app.web.widget.PANEL_SCRIPTS`` serves them, and each reads from the shared object
(``window.BouncebotPanel``) only what a script loaded before it has put there.

``panel_js()`` is the panel's whole source, for the tests that read it (tests/integration/test_widget.py,
test_verdict_surfaces.py). The browser side is tests/integration/browser/test_widget_browser.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from app.web.widget import PANEL_SCRIPTS, STATIC_TYPES

from ..conftest import ROOT

STATIC = ROOT / "app/web/static"
NAMESPACE = "window.BouncebotPanel"


def panel_files() -> list:
    """Every panel*.js on disk, in the order the panel loads them; a script on disk that is not served
    (or served and missing) fails here, so no test reading the panel can miss one."""
    on_disk = {p.name for p in STATIC.glob("panel*.js")}
    assert on_disk == set(PANEL_SCRIPTS), f"panel scripts on disk {sorted(on_disk)} vs served {PANEL_SCRIPTS}"
    return [STATIC / name for name in PANEL_SCRIPTS]


def panel_js() -> str:
    """The panel's whole source: all its scripts, concatenated in load order."""
    return "\n".join(p.read_text(encoding="utf-8") for p in panel_files())


def code_of(js: str) -> str:
    """``js`` without its comments and with every string literal emptied."""
    code = re.sub(r"/\* .*?\*/|// [^\n]*", "", js, flags=re.S)
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', code)


class Scripts(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.scripts: list[dict] = []
        self._inline: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._inline = {**dict(attrs), "text": ""}
            self.scripts.append(self._inline)

    def handle_data(self, data):
        if self._inline is not None:
            self._inline["text"] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._inline = None


def test_panel_html_loads_every_panel_script_in_order_and_no_inline_script():
    scripts = Scripts((STATIC / "panel.html").read_text(encoding="utf-8")).scripts
    panel_files()
    loaded = [s for s in scripts if "src" in s]
    assert [s["src"] for s in loaded] == [f"widget/{name}" for name in PANEL_SCRIPTS]
    assert all("defer" in s and "async" not in s and not s["text"].strip() for s in loaded)  # defer keeps the order
    # the CSP (script-src 'self') runs no inline script: the only one without src is the config, which is data
    assert [s.get("type") for s in scripts if "src" not in s] == ["application/json"]
    assert PANEL_SCRIPTS[-1] == "panel.js"  # the conversation starts once everything it uses is there
    assert all(STATIC_TYPES[name] == "text/javascript; charset=utf-8" for name in PANEL_SCRIPTS)


@pytest.mark.parametrize("index", range(len(PANEL_SCRIPTS)), ids=PANEL_SCRIPTS)
def test_each_script_reads_only_what_an_earlier_one_shares(index):
    codes = [code_of(p.read_text(encoding="utf-8")) for p in panel_files()]
    code = codes[index].strip()
    # one strict function over the shared object: no global of its own; the first script makes the object
    assert re.match(r'\(function \(P\) \{\s*"";', code), code[:80]  # "use strict", its string emptied
    made = f"}})({NAMESPACE} = {NAMESPACE} || {{}});"
    assert code.endswith(made if index == 0 else f"}})({NAMESPACE});"), code[-80:]

    def shared(c):
        return set(re.findall(r"\bP\.(\w+) = ", c))

    earlier = set().union(*map(shared, codes[:index]))
    read = set(re.findall(r"\bP\.(\w+)\b(?! = )", code))
    assert read <= earlier, f"{PANEL_SCRIPTS[index]} reads {sorted(read - earlier)} before any script shares it"
    later = set().union(*(re.findall(r"\bP\.(\w+)\b(?! = )", c) for c in codes[index + 1:]))
    assert shared(code) <= later, f"{PANEL_SCRIPTS[index]} shares {sorted(shared(code) - later)}: nothing reads it"


def test_panel_js_is_all_the_panels_scripts():
    js = panel_js()
    for path in panel_files():
        assert path.read_text(encoding="utf-8") in js
    assert js.count("(function (P) {") == len(PANEL_SCRIPTS)
