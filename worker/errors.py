"""Errors that stand outside the MailUp error tree, so nothing that retries can swallow them."""


class ConfigurationError(Exception):
    """A setting is missing or malformed; the message names the variable to fix."""
