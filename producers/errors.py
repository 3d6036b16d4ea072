"""What a producer raises at the door: nothing has been written when it does."""

from __future__ import annotations


class InvalidJob(ValueError):
    """Bad input. ``field`` names the first offending field; ``errors`` maps each to its reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        self.field = next(iter(errors))
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in errors.items()))


class ContentTruncatedWarning(UserWarning):
    """The SMS text, merge tags filled, is longer than MailUp sends (670 characters)."""


class MergeTagCaseWarning(UserWarning):
    """A merge tag with capital letters: MailUp replaces only lowercase ones in templates."""


class NotGsmWarning(UserWarning):
    """The SMS text has characters outside the GSM alphabet and is_unicode is off: those
    characters would be lost or replaced on the way to the phone."""


class TransactionalIsBetterWarning(UserWarning):
    """A campaign send to one recipient: it queues behind MailUp's campaign checks
    (seconds each); one-to-one mail belongs to the transactional API (send_email)."""


class BrokerUnavailableWarning(UserWarning):
    """The job is accepted (it is in the ledger) but its message could not be handed to the
    broker: the sweeper publishes it once the broker answers. Do not submit it again."""
