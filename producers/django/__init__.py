"""mailup-jobs in a Django project.

    INSTALLED_APPS = [..., "producers.django"]
    MAILUP_JOBS = {
        "DATABASE_URL": "postgresql+psycopg://app@db/app",
        "BROKER_URL": "redis://redis:6379/0",
        "SECRET_KEY": "…",  # mailup-jobs generate-key: required with a shared ledger
        "CLIENT_ID": "…", "CLIENT_SECRET": "…", "USERNAME": "…", "PASSWORD": "…",
    }

The keys of ``MAILUP_JOBS`` are the settings' environment variables less ``MAILUP_JOBS_`` or
``MAILUP_`` (``MAILUP_JOBS_BROKER_URL`` is ``"BROKER_URL"``, ``MAILUP_CLIENT_ID`` is
``"CLIENT_ID"``); the environment gives what it leaves out. ``DELIVERY`` and ``ACCOUNTS``
take a dict, or the JSON text the environment takes. ``manage.py check`` names a
missing or malformed one; ``manage.py mailup_jobs …`` runs the ``mailup-jobs`` command line
with these settings (``manage.py mailup_jobs worker``, ``… jobs show ID``).

The producer functions (``from producers import send_sms``) need nothing more: inside an
atomic block, jobs are published on ``transaction.on_commit`` (see ``transactions``).
"""
