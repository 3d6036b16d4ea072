"""Control routes under ``/_sandbox``: the test tool's side (MailUp's own view), so no faults,
no limits, no journal, and secrets are shown. Answers are plain JSON; errors are
``{"error": "..."}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sandbox.faults import FaultSettings, ForcedAnswer
from sandbox.http import Reply, Request, Router
from sandbox.limits import LimitSettings

if TYPE_CHECKING:
    from sandbox.server import Sandbox

PREFIX = "/_sandbox"


def _body(req: Request) -> dict[str, Any]:
    data = req.json() if req.body.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _flag(value: str | None) -> bool | None:
    return None if value is None else value.strip().lower() in ("1", "true", "yes")


def build_router(sb: Sandbox) -> Router:
    router = Router(PREFIX)

    @router.route("GET", r"/journal")
    def journal(req: Request) -> Reply:
        entries = sb.journal(req.query.get("operation"), _flag(req.query.get("processed")))
        return Reply(200, {"entries": entries})

    @router.route("GET", r"/deliveries")
    def deliveries(req: Request) -> Reply:
        return Reply(200, {"deliveries": sb.deliveries()})

    @router.route("GET", r"/stats")
    def stats(req: Request) -> Reply:
        return Reply(200, sb.counts())

    @router.route("GET", r"/faults")
    def get_faults(req: Request) -> Reply:
        pending = [asdict(f) for f in sb.faults.pending_forced()]
        return Reply(200, {"faults": asdict(sb.faults.settings), "forced": pending})

    @router.route("POST", r"/faults")
    def set_faults(req: Request) -> Reply:
        sb.faults.configure(FaultSettings.from_dict(_body(req)))
        return Reply(200, {"faults": asdict(sb.faults.settings)})

    @router.route("POST", r"/force")
    def force(req: Request) -> Reply:
        return Reply(200, {"forced_pending": sb.faults.force(ForcedAnswer.from_dict(_body(req)))})

    @router.route("GET", r"/limits")
    def get_limits(req: Request) -> Reply:
        return Reply(200, sb.limits.settings.view())

    @router.route("POST", r"/limits")
    def set_limits(req: Request) -> Reply:
        sb.limits.configure(LimitSettings.from_dict(_body(req)))
        return get_limits(req)

    @router.route("GET", r"/paging")
    def get_paging(req: Request) -> Reply:
        with sb.state.lock:
            return Reply(200, {"max_page_size": sb.state.max_page_size})

    @router.route("POST", r"/paging")
    def set_paging(req: Request) -> Reply:
        sb.set_max_page_size(_body(req)["max_page_size"])
        return get_paging(req)

    @router.route("POST", r"/reset")
    def reset(req: Request) -> Reply:
        sb.reset()
        return Reply(200, {"ok": True})

    @router.route("GET", r"/state/lists")
    def lists(req: Request) -> Reply:
        return Reply(200, {"lists": sb.lists()})

    @router.route("GET", r"/state/accounts")
    def accounts(req: Request) -> Reply:
        return Reply(200, {"accounts": sb.accounts()})

    @router.route("POST", r"/accounts")
    def add_account(req: Request) -> Reply:
        return _found(sb.add_account, int(_body(req)["account_id"]))

    @router.route("POST", r"/accounts/(?P<account_id>\d+)")
    def set_account(req: Request) -> Reply:
        return _found(sb.set_account, int(req.params["account_id"]), **_body(req))

    @router.route("POST", r"/accounts/(?P<account_id>\d+)/credits")
    def credits(req: Request) -> Reply:
        credits = _body(req)["credits"]
        reply = _found(sb.set_account, int(req.params["account_id"]), credits=credits)
        if reply.status != 200:
            return reply
        return Reply(200, {"id": reply.body["id"], "credits": reply.body["credits"]})

    # --- OAuth2 --------------------------------------------------------------------------------

    @router.route("GET", r"/oauth")
    def get_oauth(req: Request) -> Reply:
        with sb.state.lock:
            return Reply(200, {"expires_in": sb.state.token_lifetime})

    @router.route("POST", r"/oauth")
    def set_oauth(req: Request) -> Reply:
        sb.set_token_lifetime(_body(req)["expires_in"])
        return get_oauth(req)

    @router.route("POST", r"/oauth/expire")
    def expire(req: Request) -> Reply:
        return Reply(200, {"expired": sb.expire_tokens()})

    # --- groups, recipients, imports ------------------------------------------------------------

    @router.route("GET", r"/state/lists/(?P<list_id>\d+)/groups")
    def groups(req: Request) -> Reply:
        return _found(lambda: {"groups": sb.groups(int(req.params["list_id"]))})

    @router.route("GET", r"/state/lists/(?P<list_id>\d+)/recipients")
    def recipients(req: Request) -> Reply:
        list_id, status = int(req.params["list_id"]), req.query.get("status")
        return _found(lambda: {"recipients": sb.recipients(list_id, status)})

    @router.route("POST", r"/lists/(?P<list_id>\d+)/recipients")
    def add_recipient(req: Request) -> Reply:
        body = _body(req)
        email = str(body.pop("email"))
        if "fields" in body:
            body["fields"] = {int(k): v for k, v in dict(body["fields"]).items()}
        return _found(sb.add_recipient, int(req.params["list_id"]), email, **body)

    @router.route("GET", r"/state/groups/(?P<group_id>\d+)/members")
    def group_members(req: Request) -> Reply:
        return _found(lambda: {"members": sb.group_members(int(req.params["group_id"]))})

    @router.route("GET", r"/state/imports")
    def imports(req: Request) -> Reply:
        return Reply(200, {"imports": sb.imports()})

    @router.route("GET", r"/imports")
    def get_import_delay(req: Request) -> Reply:
        with sb.state.lock:
            return Reply(200, {"delay": sb.state.import_delay})

    @router.route("POST", r"/imports")
    def set_import_delay(req: Request) -> Reply:
        sb.set_import_delay(_body(req)["delay"])
        return get_import_delay(req)

    @router.route("POST", r"/imports/(?P<import_id>\d+)/complete")
    def complete_import(req: Request) -> Reply:
        return _found(sb.complete_import, int(req.params["import_id"]))

    # --- trusted senders, SMTP+ users, accepted emails -----------------------------------------

    @router.route("GET", r"/trusted-senders")
    def trusted_senders(req: Request) -> Reply:
        return Reply(200, {"trusted_senders": sb.trusted_senders()})

    @router.route("POST", r"/trusted-senders")
    def add_sender(req: Request) -> Reply:
        body = _body(req)
        return _found(sb.add_trusted_sender, str(body.pop("email")), **body)

    @router.route("POST", r"/trusted-senders/confirm")
    def confirm_sender(req: Request) -> Reply:
        body = _body(req)
        return _found(sb.confirm_trusted_sender, str(body.pop("email")), **body)

    @router.route("POST", r"/trusted-senders/block")
    def block_sender(req: Request) -> Reply:
        return _found(sb.block_trusted_sender, str(_body(req)["email"]))

    @router.route("GET", r"/smtp-users")
    def smtp_users(req: Request) -> Reply:
        return Reply(200, {"smtp_users": sb.smtp_users()})

    @router.route("POST", r"/smtp-users/(?P<username>[^/]+)")
    def set_smtp_user(req: Request) -> Reply:
        return _found(sb.set_smtp_user, req.params["username"], **_body(req))

    # --- Console email messages and sendings ---------------------------------------------------

    @router.route("GET", r"/state/messages")
    def messages(req: Request) -> Reply:
        list_id = req.query.get("list_id")
        return Reply(200, {"messages": sb.messages(None if list_id is None else int(list_id))})

    @router.route("POST", r"/messages/(?P<message_id>\d+)")
    def set_message(req: Request) -> Reply:
        return _found(sb.set_message, int(req.params["message_id"]), **_body(req))

    @router.route("GET", r"/sendings")
    def sendings(req: Request) -> Reply:
        return Reply(200, {"sendings": sb.sendings()})

    @router.route("POST", r"/sendings/(?P<sending_id>\d+)")
    def set_sending(req: Request) -> Reply:
        body = _body(req)
        return _found(
            sb.set_sending, int(req.params["sending_id"]), str(body["state"]), body.get("at")
        )

    @router.route("GET", r"/sendings/duration")
    def get_sending_duration(req: Request) -> Reply:
        with sb.state.lock:
            return Reply(200, {"duration": sb.state.sending_duration})

    @router.route("POST", r"/sendings/duration")
    def set_sending_duration(req: Request) -> Reply:
        sb.set_sending_duration(_body(req)["duration"])
        return get_sending_duration(req)

    @router.route("GET", r"/sendings/listing-delay")
    def get_listing_delay(req: Request) -> Reply:
        with sb.state.lock:
            return Reply(200, {"delay": sb.state.listing_delay})

    @router.route("POST", r"/sendings/listing-delay")
    def set_listing_delay(req: Request) -> Reply:
        sb.set_listing_delay(_body(req)["delay"])
        return get_listing_delay(req)

    @router.route("POST", r"/messages/(?P<message_id>\d+)/send-elsewhere")
    def send_elsewhere(req: Request) -> Reply:
        return _found(sb.send_elsewhere, int(req.params["message_id"]))

    @router.route("GET", r"/emails")
    def emails(req: Request) -> Reply:
        return Reply(200, {"emails": sb.emails()})

    return router


def _found(change: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> Reply:
    """200 with what ``change`` answers; 404 when it names an unknown account, sender, user,
    list, group, import, message or sending."""
    try:
        return Reply(200, change(*args, **kwargs))
    except LookupError as exc:
        return Reply(404, {"error": f"not found: {exc.args[0] if exc.args else ''}"})


def handle(router: Router, req: Request) -> Reply:
    hit = router.match(req.method, req.path)
    if hit is None:
        return Reply(404, {"error": f"no control route {req.method} {req.path}"})
    route, req.params = hit
    try:
        return route.handler(req)
    except (ValueError, TypeError, KeyError) as exc:  # bad input from the test, not a crash
        return Reply(400, {"error": f"{type(exc).__name__}: {exc}"})
