"""The HTTP side of ``makemore serve``: routing, limits, content types, errors (standard library only).

``ThreadingHTTPServer`` answers each connection in its own thread. Only the routes below exist;
no part of a URL or a body is ever used as a path (the page's files are read from the package
once). A body over ``params.MAX_BODY`` is refused (413) unread; a bad parameter is a 400 with
``{"error": "one line"}``; an unknown path a 404; a known path with the wrong method a 405; an
unexpected error a 500 ``{"error": "internal error"}`` (one line on stderr, never a traceback).
Bound to a loopback address, the server answers only requests whose Host header names it: localhost,
a loopback address (127.0.0.0/8 as a real IPv4 address, [::1]) or the --host it was started with, and
its own port when a port is given; so a web page cannot read it through DNS rebinding. A request with
two Host headers (or none, in HTTP/1.1), a malformed Host or Content-Length, or a request line that is
not ``METHOD /path HTTP/1.x`` is a 400 (505 for another HTTP version) with a status line and a JSON body.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import re
import socket
import socketserver
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, quote

from makemore.errors import ConfigError, MakemoreError
from makemore.serve.app import PLOTS, App
from makemore.serve.params import MAX_BODY, RequestError, bad

_PORT = re.compile(r"[0-9]{1,5}")  # ASCII digits only (str.isdigit also takes '²')
_REG_NAME = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%-]+")  # RFC 3986 reg-name (non-empty)
_LENGTH = re.compile(r"[0-9]+")
STATIC = {"/": ("index.html", "text/html"), "/static/app.js": ("app.js", "text/javascript")}
STATIC["/static/style.css"] = ("style.css", "text/css")
GET_API = ("/api/runs", "/api/options", "/api/info", "/api/export", "/api/metrics")
GET_API += tuple(f"/api/plot/{kind}" for kind in PLOTS)
POST_API = ("/api/generate", "/api/score")
SOCKET_TIMEOUT = 30  # seconds a connection may stay silent (a slow client cannot hold a thread)


def static_files() -> dict[str, tuple[bytes, str]]:
    """Route -> (bytes, content type) of the page's files, read from the package once."""
    folder = resources.files("makemore.serve").joinpath("static")
    return {
        route: (folder.joinpath(name).read_bytes(), f"{kind}; charset=utf-8") for route, (name, kind) in STATIC.items()
    }


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


class Handler(BaseHTTPRequestHandler):
    """One request: route it, read and check its body, answer JSON (or the page, or a PNG)."""

    server: Server
    server_version = "makemore"
    sys_version = ""
    protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length
    timeout = SOCKET_TIMEOUT
    disable_nagle_algorithm = True  # headers and body are two writes: no wait for the client's delayed ACK

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _dispatch(self) -> None:
        self._consumed = False
        try:
            self._route()
        except RequestError as exc:
            self._json(exc.status, {"error": exc.message})
        except MakemoreError as exc:  # a library error not turned into a RequestError: still one line
            message = exc.render(lambda name: name) if isinstance(exc, ConfigError) else str(exc)
            self._json(400, {"error": " ".join(message.split())[:500]})
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug: one line on stderr, no traceback to the client
            detail = " ".join(str(exc).split())[:300]
            print(
                f"makemore: serve: internal error in {self.command} {self.path[:200]}: {type(exc).__name__}: {detail}",
                file=sys.stderr,
            )
            self._json(500, {"error": "internal error"})

    def _check_host(self) -> None:
        """One Host header (none only before HTTP/1.1), ``host[:port]``; on loopback, one that names this server."""
        values = self.headers.get_all("Host") or []
        if len(values) > 1:
            raise bad(f"Host: {len(values)} Host headers (a request has one)")
        if not values:
            if self.request_version != "HTTP/1.0":
                raise bad("Host: missing (an HTTP/1.1 request needs a Host header)")
            return
        value = values[0].strip(" \t")
        try:
            host, port = parse_host(value)
        except ValueError as exc:
            raise bad(f"Host: {value[:100]!r} is not host[:port] ({exc})") from None
        if self.server.loopback_only and not self.server.answers_to(host, port):
            raise RequestError(
                403,
                f"Host: unexpected Host header {value[:100]!r} (this server answers to "
                f"localhost:{self.server.server_port})",
            )

    def _route(self) -> None:
        self._check_host()
        if not self.path.startswith("/"):  # absolute-form or '*': the Host header would not be the authority
            raise bad(f"the request target must be a path starting with '/', got {self.path[:100]!r}")
        path, _, query = self.path.partition("?")
        app = self.server.app
        get = path in STATIC or path in GET_API
        if not get and path not in POST_API:
            raise RequestError(404, f"no such page: {path[:100]!r}")
        if self.command not in (("GET", "HEAD") if get else ("POST",)):
            self._allow = "GET, HEAD" if get else "POST"
            raise RequestError(405, f"{self.command} is not allowed on {path} (use {self._allow})")
        if path in STATIC:
            self._send(200, *self.server.static[path])
        elif path == "/api/runs":
            self._json(200, app.runs())
        elif path == "/api/options":
            self._json(200, app.options())
        elif path == "/api/info":
            self._json(200, app.info(self._query(query)))
        elif path == "/api/metrics":
            self._json(200, app.metrics(self._query(query)))
        elif path == "/api/export":
            body, name = app.export(self._query(query))
            self._download = name
            self._send(200, body, "application/octet-stream")
        elif path.startswith("/api/plot/"):
            self._send(200, app.plot(path.rsplit("/", 1)[1], self._query(query)), "image/png")
        else:
            body = self._body()
            self._json(200, app.generate(body) if path == "/api/generate" else app.score(body))

    def _query(self, query: str) -> dict[str, str]:
        try:
            pairs = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=8)
        except ValueError as exc:
            raise bad(f"bad query string ({exc})") from None
        repeated = next((k for k, v in pairs.items() if len(v) > 1), None)
        if repeated is not None:
            raise bad(f"{repeated}: given more than once")
        return {k: v[0] for k, v in pairs.items()}

    def _body(self) -> dict:
        """The request's JSON object (at most ``MAX_BODY`` bytes, read only after the length is checked)."""
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True
            raise bad("chunked bodies are not read: send a Content-Length")
        raw = self.rfile.read(self._content_length())
        self._consumed = True
        try:
            body = json.loads(raw.decode("utf-8"))
            json.dumps(body, ensure_ascii=False).encode("utf-8")  # a lone surrogate ('\ud800') is no character
        except UnicodeError:
            raise bad("the body is not valid UTF-8 (or holds a lone surrogate escape like \\ud800)") from None
        except (ValueError, RecursionError) as exc:
            raise bad(f"the body is not valid JSON ({' '.join(str(exc).split())[:200]})") from None
        if not isinstance(body, dict):
            raise bad(f"the body must be a JSON object, got {type(body).__name__}")
        return body

    def _content_length(self) -> int:
        """The body's length: one Content-Length of ASCII digits, at most ``MAX_BODY`` (checked before reading)."""
        values = self.headers.get_all("Content-Length") or []
        if len(values) != 1:
            self.close_connection = True
            if values:
                raise bad(f"Content-Length: {len(values)} Content-Length headers (a request has one)")
            raise bad("Content-Length: missing (a POST needs a Content-Length header)")
        value = values[0].strip(" \t")
        if not _LENGTH.fullmatch(value):
            self.close_connection = True
            raise bad(f"Content-Length: must be a number of bytes (digits 0-9), got {value[:40]!r}")
        digits = value.lstrip("0") or "0"
        if len(digits) > len(str(MAX_BODY)) or int(digits) > MAX_BODY:
            self.close_connection = True
            size = f"{int(digits):,}" if len(digits) < 20 else f"a {len(digits)}-digit number of"
            raise RequestError(413, f"Content-Length: the body is {size} bytes; at most {MAX_BODY:,}")
        return int(digits)

    def _json(self, status: int, value: dict) -> None:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        self._send(status, text.encode("utf-8", "backslashreplace"), "application/json")  # '\ud800': still JSON

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if status == 405:
            self.send_header("Allow", getattr(self, "_allow", "GET"))
        if status == 200 and getattr(self, "_download", None):  # the name comes from the run's, quoted safely
            self.send_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(self._download)}")
            self._download = None
        headers = getattr(self, "headers", None) or {}  # none yet when the request line was bad
        unread = "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0"
        if unread and not getattr(self, "_consumed", False):  # what the client sent would be read as a request
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)

    def parse_request(self) -> bool:
        """``http.server``'s parsing, less HTTP/0.9: a request line needs ``HTTP/1.0`` or ``HTTP/1.1``."""
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # 'GET /path': an answer without status line or headers
            self.send_error(400, f"Bad request line ({self.requestline[:100]!r}): use METHOD /path HTTP/1.1")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors of the request line or headers (found by ``http.server``), as JSON too.

        A request line too bad to read a version from leaves ``request_version`` at HTTP/0.9, for which
        ``http.server`` writes neither status line nor headers: the answer is HTTP/1.1 all the same.
        """
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            self.request_version = self.protocol_version
        message = " ".join((message or HTTPStatus(code).phrase).split())[:300]
        try:
            self._json(code, {"error": message})
        except OSError:
            pass

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"makemore: serve: {self.address_string()} {format % args}\n")


class Server(ThreadingHTTPServer):
    """A threading HTTP server holding the ``App`` and the page's files."""

    daemon_threads = True  # Ctrl-C does not wait for open connections

    def __init__(self, address: tuple, family: int, app: App, *, quiet: bool = False, host: str | None = None):
        self.address_family = family
        self.app, self.quiet, self.static = app, quiet, static_files()
        self.loopback_only = is_loopback(address[0])
        self.host_name = None if host is None else host.lower()  # the --host it was started with
        super().__init__(address, Handler)

    def answers_to(self, host: str, port: int | None) -> bool:
        """Whether a Host header's ``host`` and ``port`` name this server (on a loopback address)."""
        return (is_loopback(host) or host.lower() == self.host_name) and port in (None, self.server_port)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # not HTTPServer's: it looks the host's name up (DNS)
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]

    def handle_error(self, request, client_address) -> None:
        """An error outside a request's handling (a client gone mid-request line): one line, no traceback."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            print(f"makemore: serve: {client_address[0]}: {type(exc).__name__}: {exc}", file=sys.stderr)

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.server_address[1]}/"


def resolve(host: str, port: int) -> tuple[int, tuple]:
    """The address family and socket address to listen on (IPv4 first where the host has both).

    Raises:
        ConfigError: (``host``, ``port``) an unknown host or a port out of range.
    """
    if not (isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535):
        raise ConfigError("port", f"must be from 0 to 65535, got {port!r}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError("host", f"{host!r}: unknown host ({getattr(exc, 'strerror', None) or exc})") from None
    family, *_, address = min(infos, key=lambda info: info[0] != socket.AF_INET)
    return family, (address[:2] if family == socket.AF_INET else address)


def make_server(app: App, host: str = "127.0.0.1", port: int = 8000, *, quiet: bool = False) -> Server:
    """A server of ``app`` listening on ``host:port`` (0: a free port; see ``Server.url``).

    Raises:
        ConfigError: (``host``, ``port``) an unknown host, a port out of range or in use.
    """
    family, address = resolve(host, port)
    try:
        return Server(address, family, app, quiet=quiet, host=host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError("port", f"{port} is in use on {host}") from None
        if exc.errno == errno.EACCES:
            raise ConfigError("port", f"{port}: permission denied (ports below 1024 need privileges)") from None
        raise ConfigError("host", f"cannot listen on {host} ({exc.strerror or exc})") from None
