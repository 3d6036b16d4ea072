"""Field types shared by job payloads, validated at the door (producers) and in the worker."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

ListId = Annotated[int, Field(gt=0, strict=False)]
Guid = Annotated[str, StringConstraints(strip_whitespace=True, pattern=GUID_PATTERN)]


def _phone(value: str) -> str:
    number = "".join(value.split())
    if not number.startswith(("+", "00")):
        raise ValueError("must start with the international prefix (+ or 00), e.g. +393350000001")
    digits = number[1:] if number.startswith("+") else number[2:]
    if not digits.isdigit() or not 7 <= len(digits) <= 15 or digits.startswith("0"):
        raise ValueError("must be an international number: + or 00, then 7 to 15 digits")
    return number


PhoneNumber = Annotated[str, AfterValidator(_phone)]
# MailUp: "max 11 chars, only letters and numbers (a-zA-Z0-9)".
SmsSender = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,11}$")]
