from __future__ import annotations

from django.apps import AppConfig


class MailUpJobsConfig(AppConfig):
    name = "producers.django"
    label = "mailup_jobs"
    verbose_name = "mailup-jobs"

    def ready(self) -> None:
        from producers.django import checks, conf, transactions
        from worker.engine.submit import set_ambient
        from worker.settings import use_settings

        # Read at the first use: a bad setting is named by `manage.py check` (registered
        # here), and raised by the first job, rather than breaking the project's start.
        use_settings(conf.read)
        set_ambient(transactions.unit_of_work)
        checks.register()
