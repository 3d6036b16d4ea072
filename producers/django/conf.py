"""The ``MAILUP_JOBS`` dict of Django's settings, and the names of its keys."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.conf import settings as django_settings

from worker.errors import ConfigurationError
from worker.settings import NAMES, Settings, settings_from


def key(name: str) -> str:
    """The ``MAILUP_JOBS`` key of a setting's environment variable."""
    return name.removeprefix("MAILUP_JOBS_").removeprefix("MAILUP_")


_NAMES_BY_KEY = {key(name): name for name in NAMES}
_NAME = re.compile(r"\bMAILUP_[A-Z0-9_]+\b")


def setting(name: str) -> str:
    """How a Django project names the setting of environment variable ``name``."""
    return f'MAILUP_JOBS["{key(name)}"]'


def read() -> Settings:
    """The settings ``MAILUP_JOBS`` gives (the environment gives the rest), validated: one
    ConfigurationError naming a bad one."""
    given = getattr(django_settings, "MAILUP_JOBS", {})
    if not isinstance(given, Mapping):
        raise ConfigurationError("MAILUP_JOBS must be a dict of settings")
    unknown = sorted(set(given) - set(_NAMES_BY_KEY))
    if unknown:
        raise ConfigurationError(f'unknown setting MAILUP_JOBS["{unknown[0]}"]')
    values = {_NAMES_BY_KEY[k]: value for k, value in given.items()}
    return settings_from(values, named=lambda name: setting(name) if name in values else name)


def in_django_terms(text: str) -> str:
    """A message about settings and commands, in a Django project's words."""
    named = _NAME.sub(lambda m: setting(m[0]) if m[0] in NAMES else m[0], text)
    return named.replace("`mailup-jobs ", "`manage.py mailup_jobs ")
