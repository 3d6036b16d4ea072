"""mailup-jobs in a Flask application: settings from ``app.config``, the producer API on the
extension, jobs in the request's transaction.

    from flask_sqlalchemy import SQLAlchemy
    from producers.flask import MailUpJobs

    db = SQLAlchemy(app)
    jobs = MailUpJobs(app)   # app.config: MAILUP_JOBS_DATABASE_URL, MAILUP_CLIENT_ID, …

    @app.post("/orders")
    def place_order():
        db.session.add(Order(...))
        jobs.send_sms(list_id=1, recipient="+393350000001", content="Thanks!")
        db.session.commit()   # the job is written with the order, and published after

With Flask-SQLAlchemy, a job asked for in an application context (through the extension,
or the producer functions of ``producers``) belongs to the request's session
(``db.session``): it is published once that session commits, and rolled back, or never
committed, there is no job and nothing is published. When its database (``db.engine``) holds
the ledger, the job is written in that session beside the application's rows; on another
database, the job is written to the ledger after the session's commit (its id is given at
once, and a bad argument or a reused idempotency key is refused at once). Without
Flask-SQLAlchemy, a job is committed to the ledger at once.

Imports and campaign schedules are committed at once in either case: an import queues its
chunks as it reads them, far more than a request's transaction should hold.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context

import producers.enqueue as enqueueing
from producers import campaigns, console, email, imports, lists, messages
from worker.app import check_broker
from worker.engine.submit import UnitOfWork, joining, same_ledger, session_unit, set_ambient
from worker.ledger.crypto import secret_box
from worker.settings import get_settings, settings_from, use_settings

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

P = ParamSpec("P")
R = TypeVar("R")

EXTENSION = "mailup-jobs"


@dataclass
class _AppState:
    # Whether Flask-SQLAlchemy's database holds the ledger: looked up at the first job.
    shares_ledger: bool | None = None


class _InTheRequest(Generic[P, R]):
    """A producer function as a method of the extension, joining the request's transaction."""

    def __init__(self, produce: Callable[P, R]) -> None:
        self.produce = produce

    def __get__(self, jobs: MailUpJobs | None, owner: type[MailUpJobs]) -> Callable[P, R]:
        produce = self.produce
        if jobs is None:
            return produce
        unit_of_work = jobs.unit_of_work

        @functools.wraps(produce)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            with joining(unit_of_work()):
                return produce(*args, **kwargs)

        return call


def _request_unit() -> UnitOfWork | None:
    """Flask-SQLAlchemy's session of the current app, if it has this extension and one."""
    if not has_app_context():
        return None
    state = current_app.extensions.get(EXTENSION)
    db: SQLAlchemy | None = current_app.extensions.get("sqlalchemy")
    if not isinstance(state, _AppState) or db is None:
        return None
    if state.shares_ledger is None:
        state.shares_ledger = same_ledger(db.engine, get_settings().ledger_url)
    return session_unit(db.session(), holds_ledger=state.shares_ledger)


class MailUpJobs:
    """The Flask extension: ``MailUpJobs(app)``, or ``MailUpJobs()`` then ``init_app(app)``.

    Its methods are the producer functions of ``producers`` (same arguments, same answers).
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Make ``app.config``'s settings the process's: its ``MAILUP_JOBS_*`` and
        ``MAILUP_*`` keys, named as the environment variables are (the environment gives
        what they leave out). One ConfigurationError names a missing or malformed one, or
        what a shared ledger lacks (MAILUP_JOBS_SECRET_KEY, MAILUP_JOBS_BROKER_URL)."""
        settings = settings_from({k: v for k, v in app.config.items() if k.startswith("MAILUP_")})
        # Refused here rather than by every request that queues a job (an SQLite ledger's key
        # is made at its first use: nothing to check).
        check_broker(settings)
        if settings.ledger_is_shared:
            secret_box(settings)
        use_settings(lambda: settings)
        app.extensions[EXTENSION] = _AppState()
        # The producer functions join the request's transaction as the methods do.
        set_ambient(_request_unit)

    def unit_of_work(self) -> UnitOfWork | None:
        """The request's transaction (Flask-SQLAlchemy's session), in an app context."""
        if has_app_context() and EXTENSION not in current_app.extensions:
            raise RuntimeError("MailUpJobs: call init_app(app) for this application first")
        return _request_unit()

    enqueue = _InTheRequest(enqueueing.enqueue)
    send_sms = _InTheRequest(enqueueing.send_sms)
    manage_list_secret = _InTheRequest(enqueueing.manage_list_secret)
    send_email = _InTheRequest(email.send_email)
    send_email_template = _InTheRequest(email.send_email_template)

    send_campaign = _InTheRequest(campaigns.send_campaign)
    stop_sending = _InTheRequest(campaigns.stop_sending)
    delete_sending = _InTheRequest(campaigns.delete_sending)
    schedule_campaign = staticmethod(campaigns.schedule_campaign)
    cancel_schedule = staticmethod(campaigns.cancel_schedule)

    trust_sender = _InTheRequest(console.trust_sender)
    disable_trusted_sender = _InTheRequest(console.disable_trusted_sender)
    create_smtp_user = _InTheRequest(console.create_smtp_user)
    reset_smtp_password = _InTheRequest(console.reset_smtp_password)
    smtp_user_info_job = _InTheRequest(console.smtp_user_info_job)

    create_list = _InTheRequest(lists.create_list)
    update_list = _InTheRequest(lists.update_list)
    delete_list = _InTheRequest(lists.delete_list)
    create_group = _InTheRequest(lists.create_group)
    update_group = _InTheRequest(lists.update_group)
    delete_group = _InTheRequest(lists.delete_group)
    clear_group = _InTheRequest(lists.clear_group)
    add_recipient = _InTheRequest(lists.add_recipient)
    subscribe = _InTheRequest(lists.subscribe)
    unsubscribe = _InTheRequest(lists.unsubscribe)
    import_recipients = staticmethod(imports.import_recipients)
    import_csv = staticmethod(imports.import_csv)

    create_message = _InTheRequest(messages.create_message)
    update_message = _InTheRequest(messages.update_message)
    copy_message = _InTheRequest(messages.copy_message)
    publish_message = _InTheRequest(messages.publish_message)
    unpublish_message = _InTheRequest(messages.unpublish_message)
    set_dynamic_fields = _InTheRequest(messages.set_dynamic_fields)
    create_tag = _InTheRequest(messages.create_tag)
    rename_tag = _InTheRequest(messages.rename_tag)
    delete_tag = _InTheRequest(messages.delete_tag)
    add_attachment = _InTheRequest(messages.add_attachment)
    delete_attachment = _InTheRequest(messages.delete_attachment)
