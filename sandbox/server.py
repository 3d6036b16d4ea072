"""The sandbox server: one HTTP port serving every emulated API family plus ``/_sandbox``.

URL layout (each family stands for a MailUp host):

- ``/services/Authorization/OAuth/Token``  ->
  ``https://services.mailup.com/Authorization/OAuth/Token`` (``sandbox.apis.oauth``)
- ``/services/API/v1.1/Rest/ConsoleService.svc``  ->
  ``https://services.mailup.com/API/v1.1/Rest/ConsoleService.svc`` (``sandbox.apis.console``)
- ``/send/API/v2.0``  ->  ``https://send.mailup.com/API/v2.0`` (``sandbox.apis.transactional``)
- ``/sms/api/v2.0``  ->  ``https://sendsms.mailup.com/api/v2.0`` (``sandbox.apis.sms``)
- ``/_sandbox/...``  ->  control routes (``sandbox.control``)

API requests go through ``dispatch``: pick the route, count the call against MailUp's
per-account caps (``sandbox.limits``; over the cap: 429, nothing else happens), decide the fault,
run the handler (or not), replace its answer if the fault says so, journal the exchange. Adding
a family means importing it into ``FAMILIES``; the Console family's routes live in five modules
(``console``, ``lists``, ``recipients``, ``messages``, ``sendings``), all of which must be
imported for it to be whole.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Self

from sandbox import control
from sandbox.apis import lists, messages, recipients, sendings
from sandbox.apis.console import CONSOLE
from sandbox.apis.oauth import OAUTH
from sandbox.apis.sms import SMS
from sandbox.apis.transactional import TRANSACTIONAL
from sandbox.faults import Decision, Faults, FaultSettings, ForcedAnswer
from sandbox.http import DROP, ApiFamily, Reply, Request, Route, SandboxHTTPServer
from sandbox.journal import Journal
from sandbox.limits import Limits, LimitSettings, Refusal
from sandbox.state import (
    ACCOUNT_STATUSES,
    BLOCKED,
    CONFIRMED,
    DEFAULT_ACCOUNT_ID,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_SMTP_SECRET,
    DEFAULT_SMTP_USER,
    DEFAULT_TRIAL_RECIPIENTS,
    DEFAULT_USERNAME,
    DEFERRED,
    FINISHED,
    IMMEDIATE,
    LIST_DEFAULTS,
    SENDING_STATES,
    STOPPED,
    SUBSCRIPTION_STATUSES,
    Account,
    EmailMessage,
    Group,
    Import,
    MailingList,
    Recipient,
    RecipientData,
    SandboxState,
    Sending,
    TrustedSender,
    jsonable,
    recipient_problem,
    trusted,
    utcnow,
)

FAMILIES: tuple[ApiFamily, ...] = (SMS, OAUTH, CONSOLE, TRANSACTIONAL)
# imported for the routes they add to CONSOLE
CONSOLE_MODULES = (lists, recipients, messages, sendings)
SMTP_USER_SETTINGS = ("is_enabled", "admin_block", "block_until", "deleted")
ACCOUNT_SETTINGS = ("status", "credits", "trial", "trial_recipients")
MESSAGE_SETTINGS = ("archived", "published")


class Sandbox:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        state: SandboxState | None = None,
        verbose: bool = False,
    ) -> None:
        self.host, self.port, self.verbose = host, port, verbose
        self.state = state or SandboxState.default()
        self.faults = Faults(seed)
        self.limits = Limits()
        self._journal = Journal()
        self._control = control.build_router(self)
        self._httpd: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def bind(self) -> SandboxHTTPServer:
        if self._httpd is None:
            self._httpd = SandboxHTTPServer((self.host, self.port), self.dispatch, self.verbose)
            self.port = self._httpd.server_address[1]  # the real one when port=0
        return self._httpd

    def start(self) -> Self:
        """Serve in a daemon thread; returns self for ``with Sandbox().start() as sb``."""
        if self._thread is not None:
            return self
        httpd = self.bind()
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="sandbox", daemon=True
        )  # short poll interval: stop() waits for it
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.close_open_connections()  # idle keep-alive clients would linger otherwise
        self._httpd.server_close()
        self._httpd, self._thread = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("sandbox not started")
        return f"http://{self.host}:{self.port}"

    @property
    def sms_url(self) -> str:
        return self.url + SMS.prefix

    @property
    def token_url(self) -> str:
        return self.url + OAUTH.prefix

    @property
    def console_url(self) -> str:
        return self.url + CONSOLE.prefix

    @property
    def send_url(self) -> str:
        return self.url + TRANSACTIONAL.prefix

    @property
    def control_url(self) -> str:
        return self.url + control.PREFIX

    @property
    def client_settings(self) -> dict[str, str]:
        return client_settings(self.url)

    # --- Python-side conveniences mirroring /_sandbox ----------------------------------------

    def reset(self) -> None:
        self.state = SandboxState.default()
        self._journal.clear()
        self.faults.reset()
        self.limits.reset()

    def set_faults(self, **settings: Any) -> None:
        self.faults.configure(FaultSettings.from_dict(settings))

    def set_limits(self, **settings: Any) -> None:
        """MailUp's caps in calls per second per account: ``sms_per_second`` (30),
        ``console_per_second`` (5), and ``stop_delete_interval`` (30 s between two stops, or two
        deletes, of a sending); 0 means no cap, a missing one MailUp's value."""
        self.limits.configure(LimitSettings.from_dict(settings))

    def force(self, http_status: int, code: str | None = None, **extra: Any) -> None:
        self.faults.force(ForcedAnswer(http_status, code, **extra))

    def journal(
        self, operation: str | None = None, processed: bool | None = None
    ) -> list[dict[str, Any]]:
        return self._journal.entries(operation=operation, processed=processed)

    def counts(self) -> dict[str, int]:
        return self._journal.counts()

    def deliveries(self) -> list[dict[str, Any]]:
        return self.journal("send_sms", processed=True)

    def create_list_secret(self, list_id: int = 1) -> str:
        """The list's ListSecret, created if missing (as the API's POST does, minus the HTTP)."""
        with self.state.lock:
            mlist = self.state.lists[list_id]
            mlist.list_secret = mlist.list_secret or str(uuid.uuid4())
            return mlist.list_secret

    def delete_list_secret(self, list_id: int, list_guid: str) -> None:
        """Remove the list's ListSecret, as the API's DELETE does (the GUID must match)."""
        with self.state.lock:
            mlist = self.state.lists[list_id]
            if list_guid.lower() != mlist.guid.lower():
                raise ValueError(f"{list_guid} is not the GUID of list {list_id}")
            mlist.list_secret = None

    def expire_tokens(self) -> int:
        """Expire every issued access token now (refresh tokens stay valid); returns how many."""
        with self.state.lock:
            return self.state.expire_tokens()

    def set_token_lifetime(self, expires_in: int) -> None:
        """The ``expires_in`` of access tokens issued from now on, in seconds."""
        if type(expires_in) is not int or expires_in < 0:
            raise ValueError("expires_in must be an integer >= 0")
        with self.state.lock:
            self.state.token_lifetime = expires_in

    def set_max_page_size(self, max_page_size: int) -> None:
        """The largest PageSize the Console list routes answer with (MailUp's default 20)."""
        if type(max_page_size) is not int or max_page_size < 1:
            raise ValueError("max_page_size must be an integer >= 1")
        with self.state.lock:
            self.state.max_page_size = max_page_size

    def accounts(self) -> list[dict[str, Any]]:
        """Every account, passwords left out."""
        with self.state.lock:
            return [_account_view(a) for a in self.state.accounts.values()]

    def add_account(self, account_id: int) -> dict[str, Any]:
        """Another MailUp account (console user ``m<id>``, the sandbox's password, as many
        credits as the first) with one list whose ListSecret is made: its keys."""
        with self.state.lock:
            if account_id in self.state.accounts:
                raise ValueError(f"account {account_id} exists")
            account = Account(account_id, f"m{account_id}", DEFAULT_PASSWORD, 1_000_000.0)
            self.state.accounts[account_id] = account
            mlist = self.state.add_list(account_id, dict(LIST_DEFAULTS))
            mlist.list_secret = str(uuid.uuid4())
            return {
                **_account_view(account),
                "username": account.username,
                "password": account.password,
                "list_id": mlist.id,
                "list_guid": mlist.guid,
                "list_secret": mlist.list_secret,
            }

    def set_account(self, account_id: int, **settings: Any) -> dict[str, Any]:
        """Change an account: ``status`` (one of ACCOUNT_STATUSES), ``credits`` (SMS credits),
        ``trial`` (a free trial console account: true or false) and ``trial_recipients`` (how
        many recipients a trial account's sending processes, an integer >= 0)."""
        unknown = set(settings) - set(ACCOUNT_SETTINGS)
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}; known: {ACCOUNT_SETTINGS}")
        if settings.get("status", "active") not in ACCOUNT_STATUSES:
            raise ValueError(f"status must be one of {ACCOUNT_STATUSES}")
        if not isinstance(settings.get("trial", False), bool):
            raise ValueError("trial must be true or false")
        trial_recipients = settings.get("trial_recipients", 0)
        if type(trial_recipients) is not int or trial_recipients < 0:
            raise ValueError("trial_recipients must be an integer >= 0")
        if "credits" in settings:
            settings["credits"] = float(settings["credits"])
        with self.state.lock:
            account = self.state.accounts[account_id]
            for name, value in settings.items():
                setattr(account, name, value)
            return _account_view(account)

    def trusted_senders(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [jsonable(s) for s in self.state.trusted_senders.values()]

    def add_trusted_sender(
        self, email: str, status_code: int = 0, account_id: int = DEFAULT_ACCOUNT_ID
    ) -> dict[str, Any]:
        """Trust ``email`` with ``status_code`` (0 not confirmed, 2 blocked, any other code
        trusted: 1, or one of the codes the doc does not list) unless the account already has
        it (any case): then it is answered unchanged. No verification email, no API call."""
        if type(status_code) is not int or status_code < 0:
            raise ValueError("status_code must be an integer >= 0")
        with self.state.lock:
            if account_id not in self.state.accounts:
                raise KeyError(f"unknown account {account_id}")
            sender = self.state.sender_by_email(account_id, email)
            if sender is None:
                sender = self.state.trust_sender(account_id, email)
                sender.status_code = status_code
                sender.authorized = sender.created if trusted(status_code) else None
            return jsonable(sender)

    def confirm_trusted_sender(self, email: str, status_code: int = CONFIRMED) -> dict[str, Any]:
        """As if the owner clicked the verification link: AuthorizationDate now, and the
        StatusCode MailUp's checks then give, 1 or another trusted one (neither 0 nor 2)."""
        if type(status_code) is not int or status_code < 0 or not trusted(status_code):
            raise ValueError("status_code must be a trusted one: an integer >= 0, not 0 or 2")
        with self.state.lock:
            sender = self._sender(email)
            sender.status_code, sender.authorized = status_code, utcnow()
            sender.updated = sender.authorized
            return jsonable(sender)

    def block_trusted_sender(self, email: str) -> dict[str, Any]:
        """As if MailUp blocked the address: StatusCode 2."""
        with self.state.lock:
            sender = self._sender(email)
            sender.status_code, sender.updated = BLOCKED, utcnow()
            return jsonable(sender)

    def smtp_users(self) -> list[dict[str, Any]]:
        """Every SMTP+ user, secrets included (MailUp's own view)."""
        with self.state.lock:
            return [jsonable(u) for u in self.state.smtp_users.values()]

    def set_smtp_user(self, username: str, **settings: Any) -> dict[str, Any]:
        """Change an SMTP+ user's standing: ``is_enabled``, ``admin_block``, ``deleted`` (bools),
        ``block_until`` (a datetime, an ISO 8601 string, naive meaning UTC, or None)."""
        unknown = set(settings) - set(SMTP_USER_SETTINGS)
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}; known: {SMTP_USER_SETTINGS}")
        if "block_until" in settings:
            settings["block_until"] = _utc(settings["block_until"])
        if not all(isinstance(v, bool) for k, v in settings.items() if k != "block_until"):
            raise ValueError("is_enabled, admin_block and deleted must be true or false")
        with self.state.lock:
            user = self.state.smtp_users[username]
            for name, value in settings.items():
                setattr(user, name, value)
            user.updated = utcnow()
            return jsonable(user)

    def emails(self) -> list[dict[str, Any]]:
        """Every message the transactional email API accepted, oldest first."""
        with self.state.lock:
            return [e.to_dict() for e in self.state.emails]

    # --- lists, groups, recipients, imports (MailUp's own view: no API call, no journal) -------

    def lists(self) -> list[dict[str, Any]]:
        """Every list: id, account_id, guid, name, list_secret, default_sender, created and the
        doc's fields (``settings``)."""
        with self.state.lock:
            return [_list_view(m) for m in self.state.lists.values()]

    def groups(self, list_id: int) -> list[dict[str, Any]]:
        """The list's groups, with their members' recipient ids."""
        with self.state.lock:
            self._known_list(list_id)
            return [_group_view(g) for g in self.state.list_groups(list_id)]

    def recipients(self, list_id: int, status: str | None = None) -> list[dict[str, Any]]:
        """The list's recipients with their ``status`` there, oldest first; only those in
        ``status`` (one of SUBSCRIPTION_STATUSES) when given."""
        if status is not None and status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"status must be one of {SUBSCRIPTION_STATUSES}")
        with self.state.lock:
            self.state.complete_due_imports()
            subscriptions = self._known_list(list_id).subscriptions
            return [
                _recipient_view(self.state.recipients[rid]) | {"status": now}
                for rid, now in sorted(subscriptions.items())
                if status in (None, now)
            ]

    def group_members(self, group_id: int) -> list[dict[str, Any]]:
        """The group's members, oldest first, with their status on the group's list."""
        with self.state.lock:
            self.state.complete_due_imports()
            group = self._known_group(group_id)
            subscriptions = self.state.lists[group.list_id].subscriptions
            return [
                _recipient_view(self.state.recipients[rid]) | {"status": subscriptions.get(rid)}
                for rid in sorted(group.members)
            ]

    def add_recipient(
        self,
        list_id: int,
        email: str,
        status: str = "subscribed",
        group_id: int | None = None,
        *,
        name: str | None = None,
        mobile_number: str | None = None,
        mobile_prefix: str | None = None,
        fields: dict[int, str] | None = None,
    ) -> dict[str, Any]:
        """Put ``email`` on the list with ``status`` exactly (and in ``group_id``, a group of the
        list), creating the account's recipient or updating what is given (``fields``: custom
        field id -> value). No confirmation email, no API call."""
        if status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"status must be one of {SUBSCRIPTION_STATUSES}")
        pairs = tuple((int(k), str(v)) for k, v in (fields or {}).items())
        data = RecipientData(email, name, mobile_number, mobile_prefix, pairs)
        problem = recipient_problem(data)
        if problem:
            raise ValueError(problem)
        with self.state.lock:
            mlist = self._known_list(list_id)
            group = None if group_id is None else self._known_group(group_id)
            if group is not None and group.list_id != list_id:
                raise ValueError(f"group {group_id} is not a group of list {list_id}")
            recipient, _ = self.state.upsert_recipient(mlist.account_id, data)
            mlist.subscriptions[recipient.id] = status
            if group is not None:
                group.members.add(recipient.id)
            return _recipient_view(recipient) | {"status": status}

    def imports(self) -> list[dict[str, Any]]:
        """Every import, oldest first (any whose time has come is completed first)."""
        with self.state.lock:
            self.state.complete_due_imports()
            return [_import_view(i) for i in self.state.imports.values()]

    def complete_import(self, import_id: int) -> dict[str, Any]:
        """Complete the import now, whatever its delay (a completed one stays as it is)."""
        with self.state.lock:
            imp = self.state.imports.get(import_id)
            if imp is None:
                raise KeyError(f"unknown import {import_id}")
            self.state.complete_import(imp)
            return _import_view(imp)

    def set_import_delay(self, seconds: float) -> None:
        """Seconds from an import request to its completion, for imports asked for from now."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError("delay must be a number of seconds >= 0")
        with self.state.lock:
            self.state.import_delay = float(seconds)

    # --- Console email messages and sendings (MailUp's own view) --------------------------------

    def messages(self, list_id: int | None = None) -> list[dict[str, Any]]:
        """Every Console email message (of ``list_id`` when given), oldest first, with its tag
        ids, attachments (name, slot, size), published and archived flags."""
        with self.state.lock:
            return [
                _message_view(m)
                for m in self.state.messages.values()
                if list_id in (None, m.list_id)
            ]

    def set_message(self, message_id: int, **settings: Any) -> dict[str, Any]:
        """Change a message as MailUp's own console would: ``archived``, ``published`` (bools;
        the Console API can publish but has no call to archive)."""
        unknown = set(settings) - set(MESSAGE_SETTINGS)
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}; known: {MESSAGE_SETTINGS}")
        if not all(isinstance(v, bool) for v in settings.values()):
            raise ValueError("archived and published must be true or false")
        with self.state.lock:
            message = self.state.messages.get(message_id)
            if message is None:
                raise KeyError(f"unknown message {message_id}")
            for name, value in settings.items():
                setattr(message, name, value)
            return _message_view(message)

    def sendings(self) -> list[dict[str, Any]]:
        """Every Console sending, oldest first, with its recipients' emails, after moving those
        whose time has come."""
        with self.state.lock:
            self.state.advance_sendings()
            return [_sending_view(s) for s in self.state.sendings.values()]

    def set_sending(
        self, sending_id: int, state: str, at: datetime | str | None = None
    ) -> dict[str, Any]:
        """Move a sending to ``state`` (one of SENDING_STATES) now: Immediate enters the queue
        now (it finishes ``sending_duration`` s later), Deferred waits until ``at`` (a datetime
        or ISO 8601 string, naive meaning UTC; required unless it already had a date),
        Undefined waits for a start, Finished and Stopped end it now."""
        if state not in SENDING_STATES:
            raise ValueError(f"state must be one of {SENDING_STATES}")
        when = _utc(at)
        with self.state.lock:
            self.state.advance_sendings()
            sending = self.state.sendings.get(sending_id)
            if sending is None:
                raise KeyError(f"unknown sending {sending_id}")
            now = datetime.now(UTC)
            if state == DEFERRED:
                when = when or sending.deferred_until
                if when is None:
                    raise ValueError("a Deferred sending needs a date: at")
                sending.state, sending.deferred_until = DEFERRED, when
                sending.started = sending.finishes = sending.ended = None
            elif state == IMMEDIATE:
                self.state.start_sending(sending, now)
            elif state in (FINISHED, STOPPED):
                sending.started = sending.started or now
                sending.state, sending.ended = state, now
            else:
                sending.state = state
                sending.started = sending.finishes = sending.ended = None
            self.state.advance_sendings(now)
            return _sending_view(sending)

    def set_sending_duration(self, seconds: float) -> None:
        """Seconds a sending takes from entering Immediate to finishing, from now on."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError("duration must be a number of seconds >= 0")
        with self.state.lock:
            self.state.sending_duration = float(seconds)

    def set_listing_delay(self, seconds: float) -> None:
        """Seconds a new sending is listed nowhere, queues or history (MailUp verifying it),
        for sendings made from now on."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError("delay must be a number of seconds >= 0")
        with self.state.lock:
            self.state.listing_delay = float(seconds)

    def send_elsewhere(self, message_id: int) -> dict[str, Any]:
        """Send the message to its list now, as another application of the account would."""
        with self.state.lock:
            if message_id not in self.state.messages:
                raise KeyError(f"unknown message {message_id}")
            return _sending_view(sendings.send_elsewhere(self.state, message_id))

    def _known_list(self, list_id: int) -> MailingList:
        mlist = self.state.lists.get(list_id)
        if mlist is None:
            raise KeyError(f"unknown list {list_id}")
        return mlist

    def _known_group(self, group_id: int) -> Group:
        group = self.state.groups.get(group_id)
        if group is None:
            raise KeyError(f"unknown group {group_id}")
        return group

    def _sender(self, email: str) -> TrustedSender:
        wanted = email.strip().lower()
        for sender in self.state.trusted_senders.values():
            if sender.email.lower() == wanted:
                return sender
        raise KeyError(f"unknown trusted sender {email!r}")

    # --- request pipeline --------------------------------------------------------------------

    def dispatch(self, req: Request) -> Reply:
        if req.path == control.PREFIX or req.path.startswith(control.PREFIX + "/"):
            return control.handle(self._control, req)
        for family in FAMILIES:
            hit = family.match(req.method, req.path)
            if hit is not None:
                route, req.params = hit
                return self._api(family, route, req)
        return Reply(404, {"error": f"no emulated route {req.method} {req.path}"})

    def _api(self, family: ApiFamily, route: Route, req: Request) -> Reply:
        operation = route.operation_for(req)
        refusal = self._over_cap(route, req)
        if refusal is not None:
            return self._limited(family, req, operation, refusal)
        decision = self.faults.decide(operation, allows_301=route.allows_301)
        if decision.latency_ms:
            time.sleep(decision.latency_ms / 1000)  # outside any lock: slow, not serialized
        fault = decision.kind
        if decision.before_processing:
            reply = self._fault_reply(family, decision)
        else:
            req.state, req.fault = self.state, fault
            reply = route.handler(req)
            if decision.after_processing:
                reply = self._fault_reply(family, decision)
        code = family.code_of(reply.body)
        if fault == "301" and code != "301":
            fault = None  # the request failed validation before the 301 could happen
        if fault == "drop_after":
            reply = DROP
        fault = fault or ("latency" if decision.latency_ms else None)
        self._record(family, req, operation, fault, reply, code)
        return reply

    def _over_cap(self, route: Route, req: Request) -> Refusal | None:
        """Count the call against its account's cap, if MailUp caps this route."""
        if route.limit_key is None:
            return None
        with self.state.lock:
            key = route.limit_key(req, self.state)
        if key is None:
            return None  # no account to count against: the handler will refuse the call
        refusal = self.limits.arrive(*key, at=req.arrived)
        if refusal is not None:
            req.details.update(account_id=key[0], calls_in_window=refusal.calls)
        return refusal

    def _limited(self, family: ApiFamily, req: Request, operation: str, refusal: Refusal) -> Reply:
        """MailUp's 429 for a call over the cap; nothing was processed."""
        latency = self.faults.settings.latency_ms  # a 429 crosses the same network
        if latency:
            time.sleep(latency / 1000)
        body = family.error_body("429", refusal.description)
        reply = Reply(429, body, {"Retry-After": str(refusal.retry_after)})
        self._record(family, req, operation, "limit", reply, family.code_of(body))
        return reply

    def _record(
        self,
        family: ApiFamily,
        req: Request,
        operation: str,
        fault: str | None,
        reply: Reply,
        code: str | None,
    ) -> None:
        self._journal.record(
            method=req.method,
            path=req.path,
            api=family.name,
            operation=operation,
            fault=fault,
            processed=req.processed,
            http_status=reply.status,
            code=code,
            details=req.details,
        )

    @staticmethod
    def _fault_reply(family: ApiFamily, decision: Decision) -> Reply:
        if decision.kind == "drop_before":
            return DROP
        if decision.kind == "429":
            return Reply(429, None, {"Retry-After": str(decision.retry_after)})
        if decision.kind in ("error", "error_after"):
            if decision.status == 503:  # a load balancer shedding load
                return Reply(503, None, {"Retry-After": str(decision.retry_after)})
            if decision.status == 500:
                code = family.server_error_code
                return Reply(500, family.error_body(code, family.descriptions[code]))
            assert decision.status is not None
            return Reply(decision.status)  # a gateway's 502 or 504: no MailUp body
        forced = decision.forced
        assert forced is not None
        # A 429 always says when to come back; another forced status only when asked to.
        wants_header = forced.http_status == 429 or forced.retry_after is not None
        headers = {"Retry-After": str(decision.retry_after)} if wants_header else {}
        if forced.code is None:
            return Reply(forced.http_status, None, headers)
        code = str(forced.code)  # JSON callers may send 205 rather than "205"
        text = forced.description
        if text is None:
            text = family.descriptions.get(code, "")
        return Reply(forced.http_status, family.error_body(code, text), headers)


def client_settings(url: str) -> dict[str, str]:
    """The MAILUP_* settings that point mailup-jobs at a sandbox serving at ``url``."""
    return {
        "MAILUP_TOKEN_URL": url + OAUTH.prefix,
        "MAILUP_CONSOLE_URL": url + CONSOLE.prefix,
        "MAILUP_SEND_URL": url + TRANSACTIONAL.prefix,
        "MAILUP_SMS_URL": url + SMS.prefix,
        "MAILUP_USERNAME": DEFAULT_USERNAME,
        "MAILUP_PASSWORD": DEFAULT_PASSWORD,
        "MAILUP_ACCOUNT_ID": str(DEFAULT_ACCOUNT_ID),
        "MAILUP_CLIENT_ID": DEFAULT_CLIENT_ID,
        "MAILUP_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "MAILUP_SMTP_USER": DEFAULT_SMTP_USER,
        "MAILUP_SMTP_SECRET": DEFAULT_SMTP_SECRET,
    }


def serve(host: str, port: int, seed: int = 0, *, verbose: bool = False) -> None:
    """Serve in the foreground until Ctrl-C, after printing the URL and the seeded world."""
    sandbox = Sandbox(host, port, seed=seed, verbose=verbose)
    httpd = sandbox.bind()
    print(f"MailUp sandbox listening on {sandbox.url} (control: {sandbox.control_url}/)")
    print("  Base URLs and seeded credentials, as environment variables:")
    for name, value in sandbox.client_settings.items():
        print(f"    {name}={value}")
    print("  Seeded world:")
    for line in sandbox.state.describe():
        print(f"    {line}")
    caps = sandbox.limits.settings
    print(
        f"  MailUp's caps per account: {caps.sms_per_second} SMS sends/s, "
        f"{caps.console_per_second} other calls/s (0: none; {sandbox.control_url}/limits)"
    )
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


def _list_view(mlist: MailingList) -> dict[str, Any]:
    return {
        "id": mlist.id,
        "account_id": mlist.account_id,
        "guid": mlist.guid,
        "name": mlist.name,
        "list_secret": mlist.list_secret,
        "default_sender": mlist.default_sender,
        "created": mlist.created.isoformat(),
        "settings": dict(mlist.settings),
    }


def _group_view(group: Group) -> dict[str, Any]:
    return jsonable(group) | {"members": sorted(group.members)}


def _recipient_view(recipient: Recipient) -> dict[str, Any]:
    fields = {str(k): v for k, v in sorted(recipient.fields.items())}  # as JSON would key them
    return jsonable(recipient) | {"fields": fields}


def _import_view(imp: Import) -> dict[str, Any]:
    return {
        "id": imp.id,
        "account_id": imp.account_id,
        "list_id": imp.list_id,
        "group_id": imp.group_id,
        "mode": imp.mode,
        "items": len(imp.items),
        "created": imp.created.isoformat(),
        "completed": None if imp.completed is None else imp.completed.isoformat(),
        "counts": jsonable(imp.counts),
    }


def _message_view(message: EmailMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "account_id": message.account_id,
        "list_id": message.list_id,
        "subject": message.subject,
        "notes": message.notes,
        "content": message.content,
        "use_dynamic_field": message.use_dynamic_field,
        "tag_ids": list(message.tag_ids),
        "attachments": [
            {"slot": a.slot, "name": a.name, "size": len(a.data)}
            for _, a in sorted(message.attachments.items())
        ],
        "published": message.published,
        "archived": message.archived,
        "created": message.created.isoformat(),
        "last_sent": None if message.last_sent is None else message.last_sent.isoformat(),
    }


def _sending_view(sending: Sending) -> dict[str, Any]:
    return jsonable(sending) | {"sent": sending.sent}


def _account_view(account: Account) -> dict[str, Any]:
    """The account without its password; the trial settings only when they are not the
    defaults (older readers of the view know four keys)."""
    view = {k: v for k, v in jsonable(account).items() if k != "password"}
    if not account.trial and account.trial_recipients == DEFAULT_TRIAL_RECIPIENTS:
        del view["trial"], view["trial_recipients"]
    return view


def _utc(value: Any) -> datetime | None:
    """A block_until (or sending date) value as an aware UTC datetime; naive input means UTC."""
    if value is None or isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        when = datetime.fromisoformat(value)
    else:
        raise ValueError("block_until must be an ISO 8601 datetime or null")
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return None if when is None else when.astimezone(UTC)
