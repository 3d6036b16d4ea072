"""What a producer raises at the door: nothing has been written when it does."""

from __future__ import annotations


class InvalidJob(ValueError):
    """Bad input. ``field`` names the first offending field; ``errors`` maps each to its reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        self.field = next(iter(errors))
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in errors.items()))


class ContentTruncatedWarning(UserWarning):
    """The SMS text is longer than MailUp sends (670 characters): it will be truncated."""


class MergeTagCaseWarning(UserWarning):
    """A merge tag with capital letters: MailUp replaces only lowercase ones in templates."""
