"""The old home of the decode stage, kept for its importers: everything here
is :mod:`app.codes.decode`'s."""

from __future__ import annotations

from app.codes.decode import Report, dsn_blocks, looks_like_mail, read_report, split_mbox, to_text, unfold

__all__ = ["Report", "to_text", "unfold", "looks_like_mail", "split_mbox", "read_report", "dsn_blocks"]
