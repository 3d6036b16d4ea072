"""The sandbox server: one HTTP port serving every emulated API family plus ``/_sandbox``.

URL layout (each family stands for a MailUp host):

- ``/sms/api/v2.0``  ->  ``https://sendsms.mailup.com/api/v2.0`` (``sandbox.apis.sms``)
- ``/_sandbox/...``  ->  control routes (``sandbox.control``)

API requests go through ``dispatch``: pick the route, decide the fault, run the handler
(or not), journal the exchange. Adding a family means importing it into ``FAMILIES``.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Self

from sandbox import control
from sandbox.apis.sms import SMS
from sandbox.faults import Decision, Faults, FaultSettings, ForcedAnswer
from sandbox.http import DROP, ApiFamily, Reply, Request, Route, SandboxHTTPServer
from sandbox.journal import Journal
from sandbox.state import SandboxState

FAMILIES: tuple[ApiFamily, ...] = (SMS,)


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
    def control_url(self) -> str:
        return self.url + control.PREFIX

    # --- Python-side conveniences mirroring /_sandbox ----------------------------------------

    def reset(self) -> None:
        self.state = SandboxState.default()
        self._journal.clear()
        self.faults.reset()

    def set_faults(self, **settings: Any) -> None:
        self.faults.configure(FaultSettings.from_dict(settings))

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
        decision = self.faults.decide(route.operation, allows_301=route.allows_301)
        if decision.latency_ms:
            time.sleep(decision.latency_ms / 1000)  # outside any lock: slow, not serialized
        fault = decision.kind
        if fault in ("forced", "error", "429", "drop_before"):
            reply = self._fault_reply(family, decision)
        else:
            req.state, req.fault = self.state, fault
            reply = route.handler(req)
        code = family.code_of(reply.body)
        if fault == "301" and code != "301":
            fault = None  # the request failed validation before the 301 could happen
        if fault == "drop_after":
            reply = DROP
        self._journal.record(
            method=req.method,
            path=req.path,
            api=family.name,
            operation=route.operation,
            fault=fault or ("latency" if decision.latency_ms else None),
            processed=req.processed,
            http_status=reply.status,
            code=code,
            details=req.details,
        )
        return reply

    @staticmethod
    def _fault_reply(family: ApiFamily, decision: Decision) -> Reply:
        if decision.kind == "drop_before":
            return DROP
        if decision.kind == "429":
            return Reply(429, None, {"Retry-After": str(decision.retry_after)})
        if decision.kind == "error":
            if decision.error_503:
                return Reply(503)
            return Reply(500, family.error_body("300", family.descriptions["300"]))
        forced = decision.forced
        assert forced is not None
        headers = {"Retry-After": str(decision.retry_after)} if forced.http_status == 429 else {}
        if forced.code is None:
            return Reply(forced.http_status, None, headers)
        code = str(forced.code)  # JSON callers may send 205 rather than "205"
        text = forced.description
        if text is None:
            text = family.descriptions.get(code, "")
        return Reply(forced.http_status, family.error_body(code, text), headers)


def serve(host: str, port: int, seed: int = 0, *, verbose: bool = False) -> None:
    """Serve in the foreground until Ctrl-C, after printing the URL and the seeded world."""
    sandbox = Sandbox(host, port, seed=seed, verbose=verbose)
    httpd = sandbox.bind()
    print(f"MailUp sandbox listening on {sandbox.url}", flush=True)
    print(f"  SMS API base URL: {sandbox.sms_url}   control: {sandbox.control_url}/")
    for line in sandbox.state.describe():
        print(f"  {line}")
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
