"""Ledger text made harmless where it is read: the ledger's strings come from an application's
users and from MailUp's error texts, and an operator reads them on a terminal, in a log or in
a spreadsheet. Shared by the worker's logs and the producers' command line."""

from __future__ import annotations

import re
from typing import TypeVar

T = TypeVar("T")

# C0 and C1 controls and DEL (ESC drives a terminal, CR and LF start a forged line), the
# Unicode line and paragraph separators, and the bidi overrides and isolates that show text
# in another order than it is (U+0085, the next line, is a C1 control).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What a spreadsheet takes for the start of a formula (OWASP's CSV injection advice).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def printable(text: str) -> str:
    """``text`` with its control characters escaped as Python writes them: ``\\n``,
    ``\\x1b``, ``\\u2028``."""
    return _CONTROLS.sub(lambda match: match[0].encode("unicode_escape").decode("ascii"), text)


def csv_cell(value: T) -> T | str:
    """A CSV cell no spreadsheet runs: text that would start a formula gets a leading ``'``;
    numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
