"""Hostile bounce inputs, for ``test_bounce_hostile.py`` and the "bounce
parsing" figures of ``make bench``:

* :func:`corpus`: the real bounce emails beside the project (Sisimai's maildir
  and the external parsers' fixtures), as bytes;
* :func:`mutate`: a seeded, deterministic chain of :data:`MUTATIONS` (or
  :data:`HEAVY` ones) applied to one message (``random.Random(seed)``: the same
  seed and names give the same bytes on every machine); :func:`case` names how
  to rebuild one, :func:`sweep` is every message plain and mutated;
* :data:`SHAPES`: hostile messages built to about a given size in bytes, for
  the linearity ratios and the seconds per MB, each measured at
  :func:`size_of` bytes and 4 times that;
* :func:`not_in`: what of a parser's claims no reading of the input holds
  (:func:`readings`: each MIME part decoded, leniently).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.policy
import html
import quopri
import random
import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Callable, Iterator

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CORPUS_GLOBS = (("bounces/emails/maildir/bsd", "*.eml"), ("bounces-external/emails", "**/*"))

HEAD = "From: MAILER-DAEMON@mx.example.net\nTo: sender@example.com\nSubject: Undelivered Mail\nMIME-Version: 1.0\n"
SAID = "<bob@example.org>: host mx.example.org[192.0.2.7] said: 550 5.1.1 <bob@example.org>: User unknown\n"
BOUNCE = HEAD + "Content-Type: text/plain\n\nThis is the mail system at host mx.example.net.\n\n" + SAID
TOKENS = (
    "550 5.1.1", "4.4.7", "550-5.7.26", "#550 5.1.1 ##", "(#5.1.1)", "<u{i}@example.org>", "said: 552 5.2.2",
    "Status: 5.0.0", "Diagnostic-Code: smtp; 451 4.3.0", "Final-Recipient: rfc822; r{i}@example.org", "421",
    "<<< 554 5.7.1", "u{i}@example.org:", "10.5.1.1", "5.1.10", "2.0.0", "Action: failed",
)
BAD_UTF8 = (b"\x00", b"\xff", b"\xfe\xff", b"\xc3(", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80\x80\x80", b"\xf4\x90\x80\x80")
# Beyond Latin-1: CJK text and fullwidth punctuation (Japanese bounces), an emoji, Unicode line breaks.
WIDE = ("：", "（", "）", "宛先", "ユーザー不明", "\U0001f600", "\u2028", "\u0085", "\ufffd")
BAD_CHARSETS = ("x-no-such-charset", "utf-9", "", '"', "a" * 300, "utf-8'en'", "../../etc/passwd", "iso-8859-99")
# Spellings of a multipart's boundary parameter that email's parser accepts.
BOUNDARY_STYLES = {
    "boundary=": "boundary={}",
    "boundary = (blanks)": "boundary = {}",
    "boundary*0= (RFC 2231 section)": 'boundary*0="{}"',
    "boundary*='' (RFC 2231 charset)": "boundary*=''{}",
    "boundary folded before =": "boundary\n ={}",
    "boundary, 20 blanks, =": "boundary" + " " * 20 + "={}",
}
_CTE = re.compile(rb"(?im)^content-transfer-encoding:[^\n]*$")
_CHARSET = re.compile(rb"(?i)charset\s*=\s*(\"[^\"\n]*\"|[^;\s]*)")
_BASE64_LINE = re.compile(rb"(?m)^[A-Za-z0-9+/]{16,}={0,2}\r?$")
_ADDRESS = re.compile(rb"[\w.+-]{1,64}@[\w.-]{1,255}")
_MBOX_SPLIT = re.compile(r"\n(?=From )")
_CODE_LIKE = re.compile(rb"[245]\.\d{1,3}\.\d{1,3}|\b[245]\d\d\b")


# -- the corpus ------------------------------------------------------------------


@cache
def corpus() -> tuple[tuple[str, bytes], ...]:
    """(name, bytes) of every corpus message, in a fixed order; () when the data is absent."""
    found = []
    for folder, pattern in CORPUS_GLOBS:
        for path in sorted((DATA / folder).glob(pattern)):
            if path.is_file():
                found.append((str(path.relative_to(DATA)), path.read_bytes()))
    return tuple(found)


# -- mutations: (rng, message bytes) -> bytes --------------------------------------

Mutation = Callable[[random.Random, bytes], bytes]


def _split(data: bytes) -> tuple[bytes, bytes]:
    """(header block, body) at the first blank line."""
    m = re.search(rb"\r?\n\r?\n", data)
    return (data[: m.start()], data[m.end() :]) if m else (data, b"")


def _at_random_points(rng: random.Random, data: bytes, pieces: list[bytes]) -> bytes:
    """``data`` with each of ``pieces`` inserted at a random offset (one pass)."""
    cuts = sorted(rng.randint(0, len(data)) for _ in pieces)
    out, last = [], 0
    for cut, piece in zip(cuts, pieces):
        out += [data[last:cut], piece]
        last = cut
    return b"".join(out) + data[last:]


def _relabel(data: bytes, cte: bytes) -> bytes:
    """Every part declared ``cte``, and the top level too."""
    head, body = _split(_CTE.sub(b"Content-Transfer-Encoding: " + cte, data))
    return head + b"\nContent-Transfer-Encoding: " + cte + b"\n\n" + body


def flip_bytes(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 32) if b else 0):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def truncate(rng, data):
    return data[: rng.randint(0, len(data))]


def duplicate_lines(rng, data):
    lines = data.split(b"\n")
    for _ in range(rng.randint(1, 20)):
        i = rng.randrange(len(lines))
        lines[i:i] = [lines[i]] * rng.choice((1, 2, 50))
    return b"\n".join(lines)


def delete_lines(rng, data):
    lines = data.split(b"\n")
    for _ in range(min(rng.randint(1, 20), len(lines) - 1)):
        del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def nest(data: bytes, levels: int, style: str = 'boundary="{}"', preamble: str = "") -> bytes:
    """``data`` (a message: its headers become the innermost part's) inside
    ``levels`` multipart/mixed parts, each boundary written as ``style`` and
    each multipart opening with ``preamble``."""
    b = [f"nest{i}" for i in range(levels + 1)]
    opening = "".join(
        f"--{b[i]}\nContent-Type: multipart/mixed; {style.format(b[i + 1])}\n\n{preamble}" for i in range(levels)
    )
    closing = "".join(f"\n--{b[i]}--\n" for i in reversed(range(levels + 1)))
    top = HEAD + f"Content-Type: multipart/mixed; {style.format(b[0])}\n\n{preamble}"
    return (top + opening + f"--{b[levels]}\n").encode() + data + closing.encode()


def nest_multipart(rng, data):
    return nest(data, rng.choice((1, 2, 10, 21, 39, 41, 60)), rng.choice(list(BOUNDARY_STYLES.values())))


def forward(data: bytes, levels: int, multipart: bool = True, pad: str = "") -> bytes:
    """``data`` attached as message/rfc822 to a forward, ``levels`` times over
    (without ``multipart``: a chain of bare message/rfc822 messages); ``pad``:
    header lines each level adds."""
    for i in range(levels):
        if multipart:
            data = (
                HEAD + pad + f'Content-Type: multipart/mixed; boundary="fwd{i}"\n\n--fwd{i}\n'
                f"Content-Type: text/plain\n\nForwarded message.\n--fwd{i}\nContent-Type: message/rfc822\n\n"
            ).encode() + data + f"\n--fwd{i}--\n".encode()
        else:
            data = (HEAD + pad + "Content-Type: message/rfc822\n\n").encode() + data
    return data


def nest_rfc822(rng, data):
    return forward(data, rng.choice((1, 3, 4, 10, 50)), multipart=rng.random() < 0.7)


def spoil_base64(rng: random.Random, encoded: bytes) -> bytes:
    """Invalid characters, wrong padding, a quad cut short."""
    spoilt = _at_random_points(rng, encoded, [rng.choice((b"!", b"*", b"-", b"\x00", b"\xc3\xa9", b"=", b" "))
                                              for _ in range(rng.randint(1, 40))])
    spoilt = spoilt.rstrip(b"=\n") + rng.choice((b"", b"=", b"===", b"====\n=="))
    return spoilt[: len(spoilt) - rng.randint(0, 3)]


def corrupt_base64(rng, data):
    """The body re-encoded as base64 and spoilt, and every base64 line already there spoilt."""
    data = _BASE64_LINE.sub(lambda m: spoil_base64(rng, m.group()) if rng.random() < 0.5 else m.group(), data)
    head, body = _split(data)
    return _relabel(head + b"\n\n" + spoil_base64(rng, base64.encodebytes(body)), b"base64")


def declare_base64(rng, data):
    """Declared base64, left plain text."""
    return _relabel(data, b"base64")


def broken_quoted_printable(rng, data):
    """Declared quoted-printable; soft breaks inside codes, '=' before non-hex."""
    data = _CODE_LIKE.sub(lambda m: m.group()[:2] + b"=\n" + m.group()[2:] if rng.random() < 0.5 else m.group(), data)
    junk = [rng.choice((b"=", b"=ZZ", b"=3", b"=\n", b"=\r\n", b"=0", b"==")) for _ in range(rng.randint(1, 40))]
    return _relabel(_at_random_points(rng, data, junk), b"quoted-printable")


def filler(unit: str, size: int) -> str:
    """``unit`` repeated to ``size`` characters."""
    return (unit * (size // max(len(unit), 1) + 1))[:size]


def huge_subject(rng, data):
    unit = rng.choice(("x", "550 5.1.1 ", "a@example.org 4.4.7 ", "=?utf-8?b?NTUwIDUuMS4x?= "))
    return f"Subject: {filler(unit, 1_000_000)}\n".encode() + data


def many_received(rng, data):
    return "".join(
        f"Received: from h{i}.example.net ([192.0.2.{i % 256}]) by mx{rng.randrange(9)}.example.org "
        f"(8.14.4/8.14.4) with ESMTP id 550{i}; 5.1.1\n"
        for i in range(10_000)
    ).encode() + data


def folded_header(rng, data):
    unit = rng.choice((" a\n", "\t550 5.1.1 x@example.org\n", " =?utf-8?q?5=2E1=2E1?=\n", "  \n"))
    return b"X-Folded: start\n" + (unit * 100_000).encode() + data


def code_tokens(rng, data):
    """10,000 code-like tokens (codes, look-alikes, addresses, DSN fields) in the body."""
    tokens = [rng.choice(TOKENS).format(i=i).encode() for i in range(10_000)]
    head, body = _split(data)
    joiner = rng.choice((b" ", b"\n", b"\n\n", b": "))
    return head + b"\n\n" + joiner.join(tokens) + b"\n" + body


def nul_and_bad_utf8(rng, data):
    return _at_random_points(rng, data, [rng.choice(BAD_UTF8) for _ in range(rng.randint(1, 200))])


def wide_text(rng, data):
    """Characters beyond Latin-1 (UTF-8) against addresses and at random points."""
    def wide():
        return rng.choice(WIDE).encode()

    data = _ADDRESS.sub(lambda m: wide() + m.group() + wide() if rng.random() < 0.5 else m.group(), data)
    return _at_random_points(rng, data, [wide() for _ in range(rng.randint(1, 40))])


def line_endings(rng, data):
    lf = data.replace(b"\r\n", b"\n")
    how = rng.choice(("cr", "crlf", "mixed"))
    if how == "mixed":
        return b"".join(line + rng.choice((b"\n", b"\r", b"\r\n")) for line in lf.split(b"\n"))
    return lf.replace(b"\n", b"\r" if how == "cr" else b"\r\n")


def mbox_of(messages: list[bytes]) -> bytes:
    return b"".join(b"From MAILER-DAEMON Mon Jan  1 00:00:%02d 2024\n" % (i % 60) + m + b"\n"
                    for i, m in enumerate(messages))


def mbox(rng, data):
    return mbox_of([data] * rng.choice((2, 3, 6)))


def big_mbox(rng, data):
    return mbox_of([data] * 150)  # more than app.codes.bounce.MAX_MESSAGES


def bad_charset(rng, data):
    data = _CHARSET.sub(lambda m: b"charset=" + rng.choice(BAD_CHARSETS).encode(), data)
    head, body = _split(data)
    return head + b"\nContent-Type: text/plain; charset=" + rng.choice(BAD_CHARSETS).encode() + b"\n\n" + body


MUTATIONS: dict[str, Mutation] = {
    f.__name__: f
    for f in (
        flip_bytes, truncate, duplicate_lines, delete_lines, nest_multipart, nest_rfc822, corrupt_base64,
        declare_base64, broken_quoted_printable, nul_and_bad_utf8, wide_text, line_endings, mbox, bad_charset,
    )
}
# A megabyte or 10,000 lines each: a few cases of these, not hundreds.
HEAVY: dict[str, Mutation] = {
    f.__name__: f for f in (huge_subject, many_received, folded_header, code_tokens, big_mbox)
}
FORMS = ("bytes", "utf-8", "latin-1", "surrogates")  # how the input reaches the parser


def mutate(data: bytes, seed: int, names: list[str] | tuple[str, ...]) -> bytes:
    """``data`` through the named mutations in turn, with ``random.Random(seed)``."""
    rng = random.Random(seed)
    for name in names:
        data = (MUTATIONS.get(name) or HEAVY[name])(rng, data)
    return data


def as_form(data: bytes, form: str) -> str | bytes:
    """``data`` as the parser gets it: bytes, or text decoded one of several ways
    ('surrogates' keeps undecodable bytes as lone surrogates, as JSON can)."""
    if form == "bytes":
        return data
    if form == "surrogates":
        return data.decode("utf-8", "surrogateescape")
    return data.decode(form, "replace")


def case(index: int, seed: int, names, form: str) -> tuple[str, str | bytes]:
    """(how to rebuild it, the input): corpus message ``index`` mutated."""
    name, data = corpus()[index]
    repro = f"corpus[{index}] {name}, mutate(seed={seed}, {list(names)}), as_form({form!r})"
    return repro, as_form(mutate(data, seed, names), form)


def sweep() -> Iterator[tuple[str, str | bytes]]:
    """Each corpus message as it is, then through 1 to 3 mutations its index
    chooses (it is the seed too), in one of the forms a paste arrives in."""
    light = sorted(MUTATIONS)
    for i, (name, data) in enumerate(corpus()):
        yield f"corpus[{i}] {name}", data
        rng = random.Random(i)
        yield case(i, i, rng.sample(light, rng.randint(1, 3)), FORMS[i % len(FORMS)])


def heavy_case(name: str) -> tuple[str, str | bytes]:
    """The heavy mutation ``name``, then a light one, on the last corpus message.
    Not nest_rfc822: a megabyte header in an attached message takes hours (the
    stdlib's header folding is quadratic; SHAPES has it at 4 KB and 16 KB)."""
    last = len(corpus()) - 1
    then = random.Random(name).choice(sorted(set(MUTATIONS) - {"nest_rfc822"}))
    return case(last, last, [name, then], "utf-8")


# -- shapes: size in bytes -> a hostile message of about that size ------------------


def _nested(style: str) -> Callable[[int], str]:
    # 20 lines of preamble a level: a 400 KB message nests ~900 deep, under the recursion limit
    preamble = "filler text line here\n" * 20
    return lambda size: nest(BOUNCE.encode(), size // 480, style, preamble).decode()


def _fixed_depth(size: int) -> str:
    return nest(BOUNCE.encode(), 35).decode().replace("\n\nThis is", "\n\n" + filler("filler line\n", size) + "This is")


def _forwards(multipart: bool) -> Callable[[int], str]:
    """Forwards 30 deep (under the parser's 40-boundary guard), each header
    block growing; or a chain of bare message/rfc822 growing 2 KB a level (a
    400 KB chain nests 200 deep: under the recursion limit)."""
    if multipart:
        return lambda size: forward(BOUNCE.encode(), 30, True, filler("X-Pad: 4.4.7 a@b.org\n", size // 30)).decode()
    return lambda size: forward(BOUNCE.encode(), size // 2000, False, "X-Pad: " + filler("a", 1900) + "\n").decode()


def _attached_subject(unit: str) -> Callable[[int], str]:
    """A forward whose attached bounce has a Subject of ``size`` characters."""
    return lambda size: forward(BOUNCE.replace("Undelivered Mail", filler(unit, size)).encode(), 1).decode()


def _pieces(size: int, piece: Callable[[int], str]) -> list[str]:
    """piece(0), piece(1), ... until they add up to ``size`` characters."""
    out, total = [], 0
    while total < size:
        out.append(piece(len(out)))
        total += len(out[-1])
    return out


def _parts(size: int, part: Callable[[int], str]) -> str:
    body = "".join(_pieces(size, part))
    return HEAD + 'Content-Type: multipart/mixed; boundary="P"\n\n' + body + f"--P\n{BOUNCE}\n--P--\n"


def _bytes_noise(size: int) -> bytes:
    rng = random.Random(size)
    noise = b"".join(rng.choice(BAD_UTF8) + b" 550 5.1.1 a@example.org" for _ in range(size // 28))
    return BOUNCE.encode() + noise


SHAPES: dict[str, Callable[[int], str | bytes]] = {
    **{f"multipart nested, depth grows, {name}": _nested(style) for name, style in BOUNDARY_STYLES.items()},
    "multipart nested 35 deep, body grows": _fixed_depth,
    "message/rfc822 forwards 30 deep, headers grow": _forwards(True),
    "bare message/rfc822 chain, depth grows": _forwards(False),
    "attached message, a long Subject of words": _attached_subject("word 550 "),
    "attached message, a long non-ASCII Subject": _attached_subject("\xe9xxxxxxxxx"),
    "one huge Subject header": lambda size: "Subject: " + filler("550 5.1.1 x ", size) + "\n" + BOUNCE,
    "one huge Subject of encoded words": lambda size: "Subject: " + filler("=?utf-8?b?NTUwIDUuMS4x?= ", size) + "\n"
    + BOUNCE,
    "Received: lines": lambda size: filler("Received: from h.example.net by mx (8.14.4) id 550; 5.1.1\n", size)
    + BOUNCE,
    "one header folded over many lines": lambda size: HEAD + "X-Folded: start\n" + filler(" 5.1.1 a@b.org\n", size)
    + "\n" + SAID,
    "broken base64 body": lambda size: HEAD + "Content-Transfer-Encoding: base64\n\n"
    + filler("NTUw!IDUu*MS4x=\n", size) + SAID,
    "declared base64, plain text": lambda size: HEAD + "Content-Transfer-Encoding: base64\n\n" + filler(SAID, size),
    "broken quoted-printable": lambda size: HEAD + "Content-Transfer-Encoding: quoted-printable\n\n"
    + filler("55=0 5.=ZZ1.1 =\n=3 ", size) + SAID,
    "code-like tokens, one a line": lambda size: BOUNCE + "".join(
        _pieces(size, lambda i: TOKENS[i % len(TOKENS)].format(i=i) + "\n")
    ),
    "NULs and invalid UTF-8 (bytes)": _bytes_noise,
    "CR-only line endings": lambda size: (BOUNCE + filler(SAID, size)).replace("\n", "\r"),
    "mbox of many messages": lambda size: mbox_of([BOUNCE.encode()] * (size // (len(BOUNCE) + 46))).decode(),
    "a part per unknown charset": lambda size: _parts(
        size, lambda i: f'--P\nContent-Type: text/plain; charset="x-no-such-{i}"\n\n550 5.1.1 u{i}@example.org\n'
    ),
    "HTML, unclosed tags and style": lambda size: HEAD + "Content-Type: text/html\n\n"
    + filler("<p>550 5.1.1 <b>x&amp;<style>a{}</style <div class='", size) + SAID,
    "DSN fields without blank lines": lambda size: BOUNCE + filler(
        "Final-Recipient: rfc822; u@example.org\nAction: failed\nStatus: 5.1.1\n", size
    ),
    "DSN blocks without a recipient": lambda size: BOUNCE + filler("Action: failed\nStatus: 5.1.1\n\n", size),
}

SIZE = 100_000  # bytes: the smaller size a shape is measured at, unless SHAPE_SIZES says otherwise
# Shapes measured smaller (where their quadratic part is capped, past the
# report text's first 64 KB, or takes seconds) or larger (to be clear of noise).
SHAPE_SIZES = {
    "attached message, a long Subject of words": 4_000,
    "attached message, a long non-ASCII Subject": 4_000,
    "DSN blocks without a recipient": 10_000,
    "one huge Subject of encoded words": 150_000,
}


def size_of(shape: str) -> int:
    return SHAPE_SIZES.get(shape, SIZE)


# -- what a reader could see --------------------------------------------------------


def _lenient_base64(text: str) -> bytes:
    compact = "".join(text.split()).encode("ascii", "ignore")
    for candidate in (compact, compact + b"=" * (-len(compact) % 4), compact[: len(compact) // 4 * 4]):
        try:
            return base64.b64decode(candidate, validate=False)
        except (binascii.Error, ValueError):
            continue
    return b""


def _part_texts(part) -> list[str]:
    """A part's payload as written, as email decodes it and decoded leniently
    (base64, QP), each as Latin-1, UTF-8 and the part's own charset."""
    try:
        payload = part.get_payload()
    except Exception:  # noqa: BLE001 - email cannot encode a str with both surrogates and text beyond ASCII
        payload = part._payload
    if isinstance(payload, list):  # a delivery-status part's field blocks, or subparts (walked on their own)
        # the fields as parsed (items() would make a Header of a value with surrogates, which str() cannot print)
        raw = "\n\n".join("\n".join(f"{k}: {v}" for k, v in getattr(sub, "_headers", ())) for sub in payload)
    else:
        raw = str(payload)
    blobs = [_lenient_base64(raw), quopri.decodestring(raw.encode("utf-8", "surrogateescape"))]
    if raw.isascii():  # email makes '\\uXXXX' escapes of text beyond ASCII, which no one wrote
        try:
            blobs.append(part.get_payload(decode=True))
        except Exception:  # noqa: BLE001 - the oracle is as tolerant as the parser
            pass
    try:
        blobs.append(raw.encode("latin-1"))  # text within Latin-1 as the bytes it stood for
    except UnicodeEncodeError:
        pass
    charsets = ["latin-1", "utf-8"]
    try:
        charsets.append(codecs.lookup(part.get_content_charset() or "ascii").name)
    except (LookupError, ValueError):
        pass
    out = [raw]
    for blob in blobs:
        out += [blob.decode(c, "replace") for c in charsets] if isinstance(blob, bytes) else []
    return out


def readings(raw: str | bytes) -> Iterator[str]:
    """Every reading of ``raw`` a person could make, the cheap ones first: as
    given; as Latin-1 and UTF-8 (bytes); line endings made LF, NULs dropped;
    each MIME part of each reading (of the whole, and of each message of an
    mbox) as written, as email decodes it, and leniently (base64,
    quoted-printable); HTML entities resolved and markup dropped; fullwidth
    digits as ASCII (NFKC)."""
    if isinstance(raw, (bytes, bytearray)):
        first = [bytes(raw).decode("latin-1"), bytes(raw).decode("utf-8", "replace")]
    else:
        first = [raw]
    texts: list[str] = []
    for text in first:
        plain = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
        texts += [text, plain]
        yield from (text, plain)
    messages = [m for plain in texts[1::2] for m in {plain, *_MBOX_SPLIT.split(plain)}]
    for message in messages:  # the whole text, and each message of an mbox
        try:
            parts = list(email.message_from_string(message, policy=email.policy.compat32).walk())
        except Exception:  # noqa: BLE001 - the oracle is as tolerant as the parser
            continue
        for part in parts:
            for t in _part_texts(part):
                t = t.replace("\x00", "")
                texts.append(t)
                yield t
    for t in list(texts):
        yield html.unescape(t)
        yield html.unescape(re.sub(r"(?is)<(style|script)\b.*?(?:</\1[^>]*>|\Z)|<[^<>]*>", "", t))
    for t in texts:
        if not t.isascii():
            yield unicodedata.normalize("NFKC", t)


def not_in(claims, raw: str | bytes) -> list[str]:
    """The ``claims`` (codes, addresses) that no reading of ``raw`` holds; one
    with white space in it may stand with its white space folded."""
    left = set(claims)
    for text in readings(raw):
        folded = " ".join(text.split()) if any(c.split() != [c] for c in left) else ""
        left = {c for c in left if c not in text and (not folded or " ".join(c.split()) not in folded)}
        if not left:
            break
    return sorted(left)
