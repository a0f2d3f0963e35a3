"""Duplicate-safe JSON requests: the ``Idempotency-Key`` header.

Implements the IETF draft "The Idempotency-Key HTTP Header Field"
(draft-ietf-httpapi-idempotency-key-header) for every ``POST``, ``PUT``, ``PATCH`` and
``DELETE`` under ``/api/``. A client that may send a request twice (a retry after a
timeout, a double tap) names it with a key of its choosing (a UUID, say):

* the first request with the key runs, and its answer is kept for
  ``idempotency_ttl_seconds``; 4xx answers too, so a retried failed login counts once;
* the same key with the same body gets that answer again, marked ``Idempotent-Replayed:
  true``, including the cookies it set (a replayed login re-sends the same session);
* the same key with a different body is ``422 request.idempotency_mismatch``;
* a duplicate arriving while the first still runs waits for its answer, or after
  ``IdempotencyLedger.wait_seconds`` gets ``409 request.idempotency_in_progress``.

Keys belong to a caller (the session token presented, else the client IP) and to one method
and path, so two clients that happen to pick the same key never see each other's answers.
Answers that ask for a retry are not kept: 5xx, and any answer with ``Retry-After``
(``login.throttled``, ``request.rate_limited``), as a replay would defeat the retry they ask
for. Requests without the header run as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sekisho.errors import SekishoError
from sekisho.errors.handler import render_error
from sekisho.web.deps import session_token
from sekisho.web.idempotency_store import (
    MAX_KEPT_BODY,
    Claim,
    Cookie,
    IdempotencyLedger,
    Outcome,
)

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
"""Room for any UUID, ULID or client-made composite key; the draft sets no limit."""
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class IdempotencyMiddleware:
    """Pure ASGI; sits inside :class:`~sekisho.web.middleware.EdgeMiddleware`, whose request
    facts it reads and which renders the cookies a replay queues."""

    def __init__(self, app: ASGIApp, *, ledger: IdempotencyLedger) -> None:
        self.app = app
        self.ledger = ledger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keys = [v for k, v in scope.get("headers", ()) if k == HEADER]
        if (scope["type"] != "http" or not keys or scope["method"] not in _UNSAFE
                or not scope["path"].startswith("/api/")):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            key = parse_key(keys)
            body = await _read_body(receive)
            if body is None:
                return  # the client left before sending its body
            fingerprint = self.ledger.digest(body)
            begun = await self.ledger.begin(_caller(request), scope["method"], scope["path"],
                                            key, fingerprint, self.ledger.wait_seconds)
        except SekishoError as error:
            await (await render_error(request, error))(scope, receive, send)
            return
        if isinstance(begun, Outcome):
            request.state.set_cookies.extend(begun.cookies)
            await begun.response()(scope, receive, send)
            return
        await self._run(begun, request, body, receive, send)

    async def _run(self, claim: Claim, request: Request, body: bytes, receive: Receive,
                   send: Send) -> None:
        """Run the request once, passing its answer through while keeping a copy."""
        queued = request.state.set_cookies
        before = len(queued)
        answer = _Answer()
        body_sent = False

        async def receive_body() -> Message:
            nonlocal body_sent
            if body_sent:
                return await receive()
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = list(message.get("headers", []))
                # What the request queued for the edge middleware, which sets it on the
                # way out: part of the answer (the session cookie of a login).
                answer.cookies = list(queued[before:])
            elif message["type"] == "http.response.body":
                answer.chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(request.scope, receive_body, keep)
        except BaseException:  # errors and cancellation: the next request with the key runs
            await self.ledger.release(claim)
            raise
        outcome = answer.worth_keeping()
        if outcome is None:
            await self.ledger.release(claim)
        else:
            await self.ledger.finish(claim, outcome)


@dataclass
class _Answer:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    cookies: list[Cookie] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)

    def worth_keeping(self) -> Outcome | None:
        body = b"".join(self.chunks)
        if not self.status or self.status >= 500 or len(body) > MAX_KEPT_BODY \
                or "retry-after" in Headers(raw=self.headers):
            return None
        return Outcome(self.status, self.headers, body, self.cookies)


def parse_key(values: list[bytes]) -> str:
    """The key of the header, a structured-field String (RFC 8941 §3.3.3) by the draft;
    a bare token is accepted too. ``request.invalid`` unless one printable key of at most
    :data:`MAX_KEY_LENGTH` characters."""
    if len(values) != 1:
        raise _invalid("wrong_type")
    key = values[0].decode("latin-1").strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise _invalid("missing")
    if len(key) > MAX_KEY_LENGTH:
        raise _invalid("too_long")
    if not all(" " <= ch <= "~" for ch in key):
        raise _invalid("wrong_type")
    return key


def _invalid(reason: str) -> SekishoError:
    return SekishoError("request.invalid", field="idempotency_key", params={"reason": reason})


def _caller(request: Request) -> str:
    """Whose key this is: the session presented (bearer or cookie), else the client IP."""
    token, _ = session_token(request)
    if token:
        return "session:" + token
    return "ip:" + (request.state.facts.ip or "")


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
