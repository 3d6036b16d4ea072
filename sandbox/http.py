"""HTTP plumbing shared by every emulated API family: request/reply types, a regex router, and
the stdlib server/handler that turns sockets into ``Request`` objects for ``Sandbox.dispatch``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from sandbox.state import SandboxState


class Reply(NamedTuple):
    status: int | None  # None: drop the connection without answering
    body: Any = None  # JSON-serializable, or None for an empty body
    headers: Mapping[str, str] = {}


DROP = Reply(None)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]  # keys lowercased: MailUp (ASP.NET) binds them case-insensitively
    headers: Message[str, str]  # case-insensitive lookups
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route regex
    state: SandboxState | None = None  # set by the pipeline for API routes
    fault: str | None = None  # a fault the handler itself must honour (e.g. "301")
    processed: bool = False  # set by the handler when the operation was carried out
    details: dict[str, Any] = field(default_factory=dict)  # journal fields; never secrets
    # When its first line arrived (monotonic): what MailUp's per-second limits count.
    arrived: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when empty or malformed."""
        if not self.body.strip():
            raise ValueError("empty body")
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (last value wins)."""
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def basic_credentials(self) -> tuple[str, str] | None:
        """(user, password) from an ``Authorization: Basic`` header; None if absent or garbled."""
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return user, password


Handler = Callable[[Request], Reply]
# (request, state) -> (account id, limits bucket) the call counts against, or None: not counted.
# Called under the state lock before faults and the handler: light parsing only.
LimitKey = Callable[[Request, "SandboxState"], tuple[int, str] | None]


@dataclass(frozen=True)
class Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler
    operation: str = ""
    allows_301: bool = False
    # Names the operation from the request itself, when one URL hosts several (OAuth grants);
    # the pipeline calls it before deciding faults, so forced answers can target it.
    operation_of: Callable[[Request], str] | None = None
    limit_key: LimitKey | None = None  # None: MailUp caps no calls of this route

    def operation_for(self, req: Request) -> str:
        return self.operation if self.operation_of is None else self.operation_of(req)


class Router:
    """(method, regex under ``prefix``) -> handler. Paths match case-insensitively, as IIS does."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix.rstrip("/")
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        pattern: str,
        operation: str = "",
        *,
        allows_301: bool = False,
        operation_of: Callable[[Request], str] | None = None,
        limit_key: LimitKey | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            regex = re.compile(re.escape(self.prefix) + pattern, re.IGNORECASE)
            route = Route(method, regex, handler, operation, allows_301, operation_of, limit_key)
            self.routes.append(route)
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            m = route.regex.fullmatch(path)
            if m and route.method == method:
                return route, m.groupdict()
        return None


class ApiFamily(Router):
    """One emulated MailUp API (SMS, transactional email, ...): its routes and error envelope."""

    def __init__(
        self,
        name: str,
        prefix: str,
        error_body: Callable[[str, str], Any],
        descriptions: Mapping[str, str],
        *,
        code_field: str = "Code",
        server_error_code: str = "300",
    ) -> None:
        super().__init__(prefix)
        self.name = name
        self.error_body = error_body  # (code, description) -> body, for faults and forced answers
        self.descriptions = descriptions  # documented text per application code
        self.code_field = code_field  # where a reply body carries its code, for the journal
        self.server_error_code = server_error_code  # the code of the "error" fault's HTTP 500

    def code_of(self, body: Any) -> str | None:
        """The application code of a reply body, for the journal."""
        if isinstance(body, dict) and body.get(self.code_field) is not None:
            return str(body[self.code_field])
        return None


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 refuses bursts of parallel test clients

    def __init__(self, address: tuple[str, int], app: Handler, verbose: bool = False) -> None:
        self.app = app
        self.verbose = verbose
        self._open: set[socket.socket] = set()  # so stop() can end idle keep-alive connections
        self._open_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            for sock in self._open:
                _shutdown(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.verbose:  # quiet by default: vanished clients are expected here
            super().handle_error(request, client_address)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already gone
        sock.shutdown(socket.SHUT_RDWR)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients' connection pools expect
    # Headers and body leave in separate writes: without this, Nagle plus the client's delayed
    # ACK stall every kept-alive response by ~40 ms.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _handle(self) -> None:
        arrived = time.monotonic()  # before the body is read or the sandbox is free to look
        try:
            body = self._read_body()  # always read it all, even to drop: a fair "sent" request
        except (ValueError, OSError):
            self.close_connection = True
            self._send(Reply(400, {"error": "unreadable request body"}))
            return
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=unquote(url.path),
            query={k.lower(): v for k, v in parse_qsl(url.query, keep_blank_values=True)},
            headers=self.headers,
            body=body,
            arrived=arrived,
        )
        try:
            reply = self.server.app(request)
        except Exception as exc:  # a sandbox bug must not kill the connection thread silently
            self.log_error("sandbox error on %s %s: %r", self.command, self.path, exc)
            reply = Reply(500, {"error": f"sandbox internal error: {exc!r}"})
        if reply.status is None:
            self.close_connection = True
            _shutdown(self.connection)
        else:
            self._send(reply)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) != max(length, 0) or length < 0:
            raise ValueError("short or invalid body")  # the client vanished mid-request
        return body

    def _send(self, reply: Reply) -> None:
        assert reply.status is not None
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            if reply.body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client vanished; nothing left to do
