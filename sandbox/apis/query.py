"""``filterby`` and ``orderby`` of the Console API's paged reads, on the items as answered.

The doc's syntax (doc 004: "Read Lists", "Read Groups"): ``filterby="Name=='Newsletter'"``,
``filterby="Name.Contains('News')"``, ``orderby="idList desc"``; the whole value may be wrapped in
double quotes. Field names are the item's own (the doc: "Parameter names can be retrieved from
the response body"), matched case-insensitively; matching is case-sensitive.

Where the doc is silent (MailUp parses these as Dynamic LINQ, so the sandbox takes a small part
of that grammar and refuses the rest): comparisons ``==`` and ``!=`` against a 'single' or
"double" quoted string, an integer, ``true``, ``false`` or ``null``; the string methods
``Contains``, ``StartsWith`` and ``EndsWith``; clauses joined by ``&&``/``and`` and ``||``/``or``
(``&&`` binds tighter), no parentheses. Comparing a field with a literal of another type, calling
a string method on a field that is not a string, naming an unknown field, or a field that is not a
scalar (a recipient's ``Fields``) are errors, as in LINQ. ``orderby`` takes comma-separated
``Field [asc|desc]`` keys; nulls sort first, strings by ordinal. Every error is a ValueError,
which the Console answers with a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

Item = dict[str, Any]
Predicate = Callable[[Item], bool]

TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+)
      | (?P<symbol>==|!=|&&|\|\||[.(),])
      | (?P<name>[A-Za-z_]\w*)
    )""",
    re.VERBOSE,
)
METHODS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda value, arg: arg in value,
    "startswith": str.startswith,
    "endswith": str.endswith,
}
KEYWORDS = {"true": True, "false": False, "null": None}
SCALARS = (str, int, float, bool, type(None))


def unquote(value: str) -> str:
    """The parameter without surrounding whitespace and the doc's wrapping double quotes."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()
    return value


def resolve(name: str, fields: Sequence[str]) -> str:
    """The item field ``name`` stands for, case-insensitively."""
    found = next((f for f in fields if f.lower() == name.lower()), None)
    if found is None:
        raise ValueError(f"No property or field '{name}' exists in the items.")
    return found


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"Syntax error at position {pos}.")
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _literal(kind: str, text: str) -> Any:
    if kind == "number":
        return int(text)
    if kind == "string":
        body = text[1:-1]
        return body.replace("''", "'") if text[0] == "'" else re.sub(r"\\(.)", r"\1", body)
    if kind == "name" and text.lower() in KEYWORDS:
        return KEYWORDS[text.lower()]
    raise ValueError(f"Expression expected, found {text!r}.")


def _same_type(value: Any, literal: Any) -> bool:
    """Whether LINQ would compare the two: null with anything, else the same type."""
    if value is None or literal is None:
        return True
    return isinstance(value, bool) == isinstance(literal, bool) and (
        isinstance(value, str) == isinstance(literal, str)
    )


class _Parser:
    """Recursive descent over the tokens: or-expr := and-expr (|| and-expr)*, and so on."""

    def __init__(self, text: str, fields: Sequence[str], sample: Item | None) -> None:
        self.tokens, self.pos, self.fields, self.sample = _tokens(text), 0, fields, sample

    def parse(self) -> Predicate:
        predicate = self._any()
        if self.pos != len(self.tokens):
            raise ValueError(f"Syntax error near {self.tokens[self.pos][1]!r}.")
        return predicate

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def _take(self, kind: str, text: str | None = None) -> str:
        got_kind, got = self._peek()
        if got_kind != kind or (text is not None and got.lower() != text):
            raise ValueError(f"'{text or kind}' expected, found {got or 'the end'!r}.")
        self.pos += 1
        return got

    def _joined(self, words: tuple[str, str], part: Callable[[], Predicate]) -> list[Predicate]:
        parts = [part()]
        while self._peek()[1].lower() in words:
            self.pos += 1
            parts.append(part())
        return parts

    def _any(self) -> Predicate:
        parts = self._joined(("||", "or"), self._all)
        return parts[0] if len(parts) == 1 else lambda item: any(p(item) for p in parts)

    def _all(self) -> Predicate:
        parts = self._joined(("&&", "and"), self._clause)
        return parts[0] if len(parts) == 1 else lambda item: all(p(item) for p in parts)

    def _clause(self) -> Predicate:
        field = resolve(self._take("name"), self.fields)
        kind, symbol = self._peek()
        if symbol == ".":
            self.pos += 1
            return self._method(field, self._take("name"))
        if symbol not in ("==", "!="):
            raise ValueError(f"'==', '!=' or '.' expected after {field}.")
        self.pos += 1
        kind, text = self._peek()
        self.pos += 1
        literal = _literal(kind, text)
        self._check(field, lambda value: _same_type(value, literal), f"compared with {text}")
        if symbol == "==":
            return lambda item: bool(item[field] == literal)
        return lambda item: bool(item[field] != literal)

    def _method(self, field: str, name: str) -> Predicate:
        method = METHODS.get(name.lower())
        if method is None:
            raise ValueError(f"No applicable method '{name}' exists in type 'String'.")
        self._take("symbol", "(")
        arg = _literal("string", self._take("string"))
        self._take("symbol", ")")
        self._check(field, lambda value: value is None or isinstance(value, str), f"has no {name}")
        return lambda item: isinstance(item[field], str) and method(item[field], arg)

    def _check(self, field: str, fits: Callable[[Any], bool], problem: str) -> None:
        """Refuse what LINQ would, judging the field's type by a sample item."""
        if self.sample is None:
            return
        value = self.sample[field]
        if not isinstance(value, SCALARS) or not fits(value):
            raise ValueError(f"{field} ({type(value).__name__}) {problem}: incompatible types.")


def compile_filter(text: str, fields: Sequence[str], sample: Item | None = None) -> Predicate:
    """A predicate over items from ``filterby``; ``sample`` (an item) lets types be checked."""
    text = unquote(text)
    if not text:
        raise ValueError("filterby is empty.")
    return _Parser(text, fields, sample).parse()


def order(items: list[Item], text: str, fields: Sequence[str]) -> list[Item]:
    """``items`` sorted by ``orderby``: ``Field [asc|desc]``, comma-separated keys."""
    keys = []
    for part in unquote(text).split(","):
        words = part.split()
        if not 1 <= len(words) <= 2 or (
            len(words) == 2 and words[1].lower() not in ("asc", "desc")
        ):
            raise ValueError(f"Invalid orderby clause: {part.strip()!r}.")
        keys.append((resolve(words[0], fields), len(words) == 2 and words[1].lower() == "desc"))
    for field, _ in keys:
        if any(not isinstance(item[field], SCALARS) for item in items):
            raise ValueError(f"{field} cannot be ordered by.")
    for field, descending in reversed(keys):  # stable sorts, least significant key first
        items = sorted(items, key=lambda i: (i[field] is not None, i[field]), reverse=descending)
    return items
