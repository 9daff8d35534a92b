"""What every request to ``makemore serve`` and ``makemore studio`` passes before its route: ``Guard``.

- the Host header: one, ``host[:port]``; bound to a loopback address, the server answers only Host
  headers naming it (localhost, a loopback address, the --host it was started with, its own port), so
  a web page cannot read it through DNS rebinding (400 malformed, 403 foreign);
- the token, when the server has one: ``?token=``, ``Authorization: Bearer`` or the cookie the server
  sets (HttpOnly, SameSite=Strict) on a GET that carried a valid ``?token=`` (401 otherwise);
- a state-changing request (any method but GET, HEAD, OPTIONS): an ``Origin`` header, when sent, must
  be this server's own, ``http://`` + the Host header (403), and the body JSON (415), or
  ``multipart/form-data`` with ``X-Makemore: 1`` on an upload path (a custom header forces a CORS
  preflight, which this server never grants; 403 without it); so a page the user visits can neither
  post a form to it nor script a request it could send;
- the body: at most ``params.MAX_BODY`` bytes (an upload path: its own limit); a larger Content-Length
  is refused (413) unread, and a chunked body is counted as it arrives (413 once over).
Errors are ``{"error": "one line"}``; an unexpected error is a 500 ``internal error`` with one line on
stderr, never a traceback.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import sys
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

from starlette.requests import cookie_parser
from starlette.responses import Response

from makemore.serve.params import MAX_BODY, RequestError, bad

_PORT = re.compile(r"[0-9]{1,5}")  # ASCII digits only (str.isdigit also takes '²')
_REG_NAME = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%-]+")  # RFC 3986 reg-name (non-empty)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
TOKEN_COOKIE = "makemore_token"
HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ``::1``; no brackets).

    Addresses are parsed by ``ipaddress`` (``127.0.0.1.evil.com`` and ``127.1`` are names, not addresses).
    """
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback and not getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1: not ::1


def parse_host(value: str) -> tuple[str, int | None]:
    """The host and port of a Host header: ``name``, ``1.2.3.4`` or ``[v6]``, then ``:port`` or nothing.

    Returns:
        (host without brackets, port or None when the header has no port).
    Raises:
        ValueError: the header is not ``host[:port]``.
    """
    if value.startswith("["):
        end = value.find("]")
        host, rest = (value[1:end], value[end + 1 :]) if end > 0 else ("", "")
        try:
            ipaddress.IPv6Address(host if "%" not in host else "")  # no zone id
        except ValueError:
            raise ValueError("not an IPv6 address in brackets") from None
        if rest and not rest.startswith(":"):
            raise ValueError("text after the ']' of an IPv6 address")
    else:
        host, colon, port = value.partition(":")
        rest = colon + port
        if not _REG_NAME.fullmatch(host) or ":" in port:
            raise ValueError("not a host name or address")
    if not rest:
        return host, None
    if not _PORT.fullmatch(rest[1:]):
        raise ValueError("the port is not a number")
    return host, int(rest[1:])


def json_response(status: int, value, headers: Mapping[str, str] | None = None) -> Response:
    """``value`` as a JSON answer (a lone surrogate in a string is escaped: still JSON)."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return Response(text.encode("utf-8", "backslashreplace"), status, headers, media_type="application/json")


class Policy:
    """What ``Guard`` checks of each request: the Host header, the token, origins, content types, sizes."""

    def __init__(self, *, loopback_only: bool, host: str | None, port: int, token: str | None, uploads, quiet: bool):
        self.loopback_only, self.port, self.token, self.quiet = loopback_only, port, token, quiet
        self.host_name = None if host is None else host.lower()  # the --host it was started with
        self.uploads: dict[str, int] = dict(uploads or {})

    def answers_to(self, host: str, port: int | None) -> bool:
        """Whether a Host header's ``host`` and ``port`` name this server (on a loopback address)."""
        return (is_loopback(host) or host.lower() == self.host_name) and port in (None, self.port)

    def check_host(self, scope, headers: list[tuple[bytes, bytes]]) -> str:
        """The Host header's value: one header, ``host[:port]``, naming this server when on loopback."""
        values = [v.decode("latin-1").strip(" \t") for k, v in headers if k == b"host"]
        if len(values) > 1:
            raise bad(f"Host: {len(values)} Host headers (a request has one)")
        if not values:
            if scope["http_version"] != "1.0":
                raise bad("Host: missing (an HTTP/1.1 request needs a Host header)")
            return ""
        try:
            host, port = parse_host(values[0])
        except ValueError as exc:
            raise bad(f"Host: {values[0][:100]!r} is not host[:port] ({exc})") from None
        if self.loopback_only and not self.answers_to(host, port):
            raise RequestError(
                403, f"Host: unexpected Host header {values[0][:100]!r} (this server answers to localhost:{self.port})"
            )
        return values[0]

    def check_token(self, scope, headers: dict[bytes, bytes]) -> bool:
        """Whether the request carries the token; strips ``token`` from the query (the routes do not know it).

        Returns:
            True when the token came in the query (the answer then sets the cookie).
        """
        pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in pairs if k == "token"]
        if given:
            scope["query_string"] = urlencode([(k, v) for k, v in pairs if k != "token"]).encode("latin-1")
        if self.token is None:
            return False
        bearer = headers.get(b"authorization", b"").decode("latin-1")
        cookie = cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(TOKEN_COOKIE, "")
        candidates = [*given, bearer[7:] if bearer.startswith("Bearer ") else "", cookie]
        if not any(hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates if c):
            raise RequestError(401, "token: missing or wrong (open the URL the server printed at start, with ?token=)")
        return bool(given) and hmac.compare_digest(given[0].encode(), self.token.encode())

    def check_body(self, scope, headers: dict[bytes, bytes], host: str) -> int:
        """Origin and content type of a state-changing request; the body's size limit (checked on every request).

        Returns:
            The most bytes the body may have.
        """
        path, limit = scope["path"], self.uploads.get(scope["path"], MAX_BODY)
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get(b"origin")
            if origin is not None and origin.decode("latin-1").lower() != f"http://{host}".lower():
                raise RequestError(403, f"Origin: {origin.decode('latin-1')[:100]!r} is not this server's own")
            kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            if path in self.uploads:
                if kind != "multipart/form-data":
                    raise RequestError(415, f"Content-Type: {path} takes multipart/form-data, got {kind!r}")
                if headers.get(b"x-makemore") != b"1":
                    raise RequestError(403, "X-Makemore: an upload needs the header X-Makemore: 1")
            elif kind != "application/json":
                raise RequestError(415, f"Content-Type: the body must be application/json, got {kind or 'none'!r}")
        length = headers.get(b"content-length", b"0").decode("latin-1")  # h11 allows only digits
        if len(length.lstrip("0")) > len(str(limit)) or int(length) > limit:
            size = f"{int(length):,}" if len(length) < 20 else f"a {len(length)}-digit number of"
            raise RequestError(413, f"Content-Length: the body is {size} bytes; at most {limit:,}")
        return limit


class Guard:
    """ASGI middleware: ``Policy``'s checks before the routes, JSON errors, common headers, the access log."""

    def __init__(self, app, policy: Policy):
        self.app, self.policy = app, policy

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        raw = scope["headers"]
        headers = dict(raw)
        unread = b"transfer-encoding" in headers or headers.get(b"content-length", b"0").strip(b"0") != b""
        state = {"status": 0, "cookie": False, "done": not unread}

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                extra = list(HEADERS)
                if state["cookie"]:
                    cookie = f"{TOKEN_COOKIE}={self.policy.token}; HttpOnly; SameSite=Strict; Path=/"
                    extra.append((b"set-cookie", cookie.encode()))
                if not state["done"]:  # what the client sent would be read as the next request
                    extra.append((b"connection", b"close"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            if not scope["raw_path"].startswith(b"/"):  # absolute-form or '*': the Host would not be the authority
                raise bad(f"the request target must be a path starting with '/', got {scope['raw_path'][:100]!r}")
            if scope["http_version"] not in ("1.0", "1.1"):  # h11 reads any N.N after HTTP/
                raise RequestError(505, f"HTTP/{scope['http_version']}: this server reads HTTP/1.0 and HTTP/1.1")
            host = self.policy.check_host(scope, raw)
            state["cookie"] = self.policy.check_token(scope, headers) and scope["method"] == "GET"
            limit = self.policy.check_body(scope, headers, host)
            await self.app(scope, _limited(receive, limit, state), sending)
        except RequestError as exc:
            await _answer(state, sending, exc.status, exc.message)
        except Exception as exc:  # a bug: one line on stderr, no traceback to the client
            detail = " ".join(str(exc).split())[:300]
            where = f"{scope['method']} {scope['path'][:200]}"
            print(f"makemore: serve: internal error in {where}: {type(exc).__name__}: {detail}", file=sys.stderr)
            await _answer(state, sending, 500, "internal error")
        if not self.policy.quiet:
            client = (scope.get("client") or ("-",))[0]
            line = f"{scope['method']} {scope['path'][:200]} HTTP/{scope['http_version']}"
            print(f'makemore: serve: {client} "{line}" {state["status"]}', file=sys.stderr)


def _limited(receive, limit: int, state: dict):
    """``receive`` that counts the body's bytes: a 413 once it passes ``limit`` (the rest is not read)."""
    seen = 0

    async def counted():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            state["done"] = not message.get("more_body", False)
            if seen > limit:
                raise RequestError(413, f"the body is over {limit:,} bytes; at most {limit:,}")
        return message

    return counted


async def _answer(state: dict, send, status: int, message: str) -> None:
    """An error as JSON, unless the answer had started (then the connection just ends)."""
    if state["status"]:
        return
    response = json_response(status, {"error": " ".join(message.split())[:500]})
    await response({"type": "http"}, None, send)
