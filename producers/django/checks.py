"""``manage.py check``: the checks mailup-jobs' worker runs before it starts, each problem
named in the project's words (``MAILUP_JOBS["PASSWORD"]``, ``manage.py mailup_jobs migrate``).
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from producers.django.conf import in_django_terms
from worker.preflight import startup_checks


def register() -> None:
    checks.register(mailup_jobs_settings, "mailup_jobs")


def mailup_jobs_settings(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    for check in startup_checks():
        if check.ok:
            continue
        text = f"mailup-jobs {check.name}: {in_django_terms(check.detail)}"
        if check.name == "ledger":
            # Only a warning, so that Django's own commands still run while the ledger
            # waits for its `manage.py mailup_jobs migrate`.
            found.append(checks.Warning(text, id="mailup_jobs.W001"))
        else:
            found.append(checks.Error(text, id="mailup_jobs.E001"))
    return found
