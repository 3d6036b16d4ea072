"""Field types shared by job payloads, validated at the door (producers) and in the worker.

Their strings come from an application's users, and none of them may choose who gets the
mail: an address is exactly one address, and text bound for a header holds no character
that could end that header and start another.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

# MailUp's ids are 32-bit signed integers: a larger one fails at MailUp and in the ledger's
# columns. Strict, so that True is not list 1.
MAX_ID = 2**31 - 1
MailUpId = Annotated[int, Field(strict=True, gt=0, le=MAX_ID)]
ListId = MailUpId
Guid = Annotated[str, StringConstraints(strip_whitespace=True, pattern=GUID_PATTERN)]

# Merge fields of one message: more is a recipient list in disguise.
MAX_DYNAMIC_FIELDS = 100
DynamicFields = Annotated[dict[str, str], Field(max_length=MAX_DYNAMIC_FIELDS)]


def has_control(value: str) -> bool:
    """Whether ``value`` holds a control character (NUL, CR, LF, VT, FF, NEL, …) or a Unicode
    line or paragraph separator: something on the way may end a line there."""
    return any(unicodedata.category(c) == "Cc" or c in "\u2028\u2029" for c in value)


def one_line(value: str) -> str:
    # In a header, a line break ends it and starts another (header injection).
    if has_control(value):
        raise ValueError("must not contain a control character or a line break")
    return value


HeaderText = Annotated[str, AfterValidator(one_line)]

# RFC 5322's specials but ".": in a display name a lenient parser finds another address in
# them ("eve@evil.example <ada@example.com>" is eve's to parseaddr), or a list (",", ";",
# ":"). The name reaches MailUp without quotes, so even a quoted comma is refused.
_SPECIALS = frozenset('()<>[]:;@\\,"')


def _display_name(value: str) -> str:
    if found := "".join(sorted(_SPECIALS.intersection(one_line(value)))):
        raise ValueError(f"must not contain {found!r}: a display name is words, no address")
    return value


DisplayName = Annotated[str, AfterValidator(_display_name)]


def _email(value: str) -> str:
    try:
        return validate_email(one_line(value).strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address: {exc}") from None


# One bare address, as MailUp takes it: no display name, no list, no quoted local part.
EmailAddress = Annotated[str, AfterValidator(_email)]

_DIGITS = re.compile(r"[0-9]{7,15}")  # ASCII digits: str.isdigit also takes "²" and "٣"


def _phone(value: str) -> str:
    number = "".join(one_line(value).split())
    if not number.startswith(("+", "00")):
        raise ValueError("must start with the international prefix (+ or 00), e.g. +393350000001")
    digits = number[1:] if number.startswith("+") else number[2:]
    if not _DIGITS.fullmatch(digits) or digits.startswith("0"):
        raise ValueError("must be an international number: + or 00, then 7 to 15 digits 0-9")
    return number


PhoneNumber = Annotated[str, AfterValidator(_phone)]
# MailUp: "max 11 chars, only letters and numbers (a-zA-Z0-9)".
SmsSender = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,11}$")]
