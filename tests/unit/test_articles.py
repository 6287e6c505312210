"""Parsing articles in the three formats help centres export, and refusing
malformed ones with the file and line."""

from __future__ import annotations

import textwrap

import pytest

from app.errors import MalformedArticle
from app.knowledge.articles import load_articles, parse_article

MD = textwrap.dedent(
    """\
    ---
    title: Bounce basics
    subtitle: Why replies fail
    url: https://help.example.com/bounce-basics
    ---

    Replies can bounce.

    ## Codes

    Some codes.

    | Code | What it means | What you can do |
    | --- | --- | --- |
    | 550-5.1.1 | Address unknown. | Fix the address. |
    | 552 | Mailbox full. | Try later. |

    ### Details

    - one
    - two
    """
)

HTML = """<!doctype html><html><head><title>Bounce basics</title>
<link rel="canonical" href="https://help.example.com/bounce-basics">
<meta name="description" content="Why replies fail"></head>
<body><nav><a href="/">Home</a><a href="/x">Other article</a></nav>
<h1>Bounce basics</h1>
<p>Replies can bounce.</p>
<h2>Codes</h2>
<p>Some codes.</p>
<table><tr><th>Error code</th><th>What it means</th><th>What you can do</th></tr>
<tr><td>550-5.1.1</td><td>Address unknown.</td><td>Fix the <b>address</b>.</td></tr>
<tr><td>552</td><td>Mailbox full.</td><td>Try later.</td></tr></table>
<h3>Details</h3><ul><li>one</li><li>two</li></ul>
<script>var x = "<p>not text</p>";</script>
</body></html>
"""

TXT = """Bounce basics

Replies can bounce.

Codes

Some codes.

Details

• one
• two
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("name,text", [("a.md", MD), ("a.html", HTML), ("a.txt", TXT)])
def test_sections_and_heading_paths(tmp_path, name, text):
    a = parse_article(write(tmp_path, name, text))
    assert a.title == "Bounce basics"
    assert [s.heading_path for s in a.sections] == [
        ("Bounce basics",),
        ("Bounce basics", "Codes"),
        ("Bounce basics", "Details") if name.endswith(".txt") else ("Bounce basics", "Codes", "Details"),
    ]
    assert a.sections[0].blocks[0].text == "Replies can bounce."
    assert "Other article" not in str(a.sections)  # navigation dropped


@pytest.mark.parametrize("name,text", [("a.md", MD), ("a.html", HTML)])
def test_error_table_rows_extracted(tmp_path, name, text):
    a = parse_article(write(tmp_path, name, text))
    assert a.url == "https://help.example.com/bounce-basics"
    assert a.subtitle == "Why replies fail"
    assert [(r.code, r.meaning, r.action, r.section) for r in a.rows] == [
        ("550-5.1.1", "Address unknown.", "Fix the address.", "Codes"),
        ("552", "Mailbox full.", "Try later.", "Codes"),
    ]
    assert a.rows[0].url == "https://help.example.com/bounce-basics#codes"


def test_table_without_a_code_column_is_kept_as_text(tmp_path):
    md = "---\ntitle: T\n---\n\n| Plan | Price |\n| --- | --- |\n| Pro | 10 |\n"
    a = parse_article(write(tmp_path, "t.md", md))
    assert a.rows == []
    assert a.sections[0].blocks[0].kind == "table"


@pytest.mark.parametrize(
    "text,line,problem",
    [
        ("---\ntitle: [unclosed\n---\nBody.\n", 2, "broken front matter"),
        ("---\ntitle: T\nBody without a closing line\n", 1, "never closed"),
        ("---\n- a\n- b\n---\nBody.\n", 2, "key: value"),
        ("---\nsubtitle: no title\n---\n\nJust text.\n", 1, "no title"),
        (MD.replace("| 552 | Mailbox full. | Try later. |", "| 552 | Mailbox full. |"), 16, "filled cells"),
        (MD.replace("| 552 | Mailbox full. | Try later. |", "| 552 | | Try later. |"), 16, "filled cells"),
        (MD.replace("| --- | --- | --- |\n", ""), 14, "separator"),
    ],
)
def test_malformed_markdown_names_file_and_line(tmp_path, text, line, problem):
    with pytest.raises(MalformedArticle) as e:
        parse_article(write(tmp_path, "bad.md", text), "sub/bad.md")
    assert (e.value.path, e.value.line) == ("sub/bad.md", line)
    assert problem in e.value.problem
    assert str(e.value).startswith(f"sub/bad.md:{line}: ")


def test_malformed_html_table_row(tmp_path):
    html = HTML.replace("<td>Mailbox full.</td><td>Try later.</td>", "<td>Mailbox full.</td>")
    with pytest.raises(MalformedArticle) as e:
        parse_article(write(tmp_path, "bad.html", html))
    assert e.value.line == 11


def test_load_articles_reads_every_format_sorted(tmp_path):
    write(tmp_path, "b.md", MD)
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "a.html", HTML)
    write(tmp_path, "c.txt", TXT)
    write(tmp_path, "notes.json", "{}")
    assert [a.path for a in load_articles(tmp_path)] == ["b.md", "c.txt", "sub/a.html"]


def test_missing_kb_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_articles(tmp_path / "nope")
