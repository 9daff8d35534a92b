"""The HTTP side of ``makemore serve``: routing, limits, content types, errors (standard library only).

``ThreadingHTTPServer`` answers each connection in its own thread. Only the routes below exist;
no part of a URL or a body is ever used as a path (the page's files are read from the package
once). A body over ``params.MAX_BODY`` is refused (413) unread; a bad parameter is a 400 with
``{"error": "one line"}``; an unknown path a 404; a known path with the wrong method a 405; an
unexpected error a 500 ``{"error": "internal error"}`` (one line on stderr, never a traceback).
Bound to a loopback address, the server answers only requests whose Host header is a loopback
name, so a web page cannot read it through DNS rebinding.
"""

from __future__ import annotations

import errno
import json
import socket
import socketserver
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from makemore.errors import ConfigError, MakemoreError
from makemore.serve.app import PLOTS, App
from makemore.serve.params import MAX_BODY, RequestError, bad

LOOPBACK = ("127.0.0.1", "localhost", "::1")
STATIC = {"/": ("index.html", "text/html"), "/static/app.js": ("app.js", "text/javascript")}
STATIC["/static/style.css"] = ("style.css", "text/css")
GET_API = ("/api/runs", "/api/info", *(f"/api/plot/{kind}" for kind in PLOTS))
POST_API = ("/api/generate", "/api/score")
SOCKET_TIMEOUT = 30  # seconds a connection may stay silent (a slow client cannot hold a thread)


def static_files() -> dict[str, tuple[bytes, str]]:
    """Route -> (bytes, content type) of the page's files, read from the package once."""
    folder = resources.files("makemore.serve").joinpath("static")
    return {
        route: (folder.joinpath(name).read_bytes(), f"{kind}; charset=utf-8") for route, (name, kind) in STATIC.items()
    }


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def _host_name(header: str) -> str:
    """The host of a Host header, without its port (``[::1]:8000`` -> ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


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

    def _route(self) -> None:
        if self.server.loopback_only and not is_loopback(_host_name(self.headers.get("Host", "localhost"))):
            raise RequestError(
                403, f"unexpected Host header {self.headers.get('Host')!r} (this server answers to localhost)"
            )
        url = urlsplit(self.path)
        path, app = url.path, self.server.app
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
        elif path == "/api/info":
            self._json(200, app.info(self._query(url.query)))
        elif path.startswith("/api/plot/"):
            self._send(200, app.plot(path.rsplit("/", 1)[1], self._query(url.query)), "image/png")
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
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise bad(f"a POST needs a Content-Length header, got {length!r}")
        if int(length) > MAX_BODY:
            self.close_connection = True
            raise RequestError(413, f"the body is {int(length):,} bytes; at most {MAX_BODY:,}")
        raw = self.rfile.read(int(length))
        self._consumed = True
        try:
            body = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise bad("the body is not valid UTF-8") from None
        except (ValueError, RecursionError) as exc:
            raise bad(f"the body is not valid JSON ({' '.join(str(exc).split())[:200]})") from None
        if not isinstance(body, dict):
            raise bad(f"the body must be a JSON object, got {type(body).__name__}")
        return body

    def _json(self, status: int, value: dict) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if status == 405:
            self.send_header("Allow", getattr(self, "_allow", "GET"))
        headers = getattr(self, "headers", None) or {}  # none yet when the request line was bad
        unread = "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0"
        if unread and not getattr(self, "_consumed", False):  # what the client sent would be read as a request
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors of the request line or headers (found by ``http.server``), as JSON too."""
        self.close_connection = True
        try:
            self._json(code, {"error": message or HTTPStatus(code).phrase})
        except OSError:
            pass

    def log_message(self, format: str, *args) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"makemore: serve: {self.address_string()} {format % args}\n")


class Server(ThreadingHTTPServer):
    """A threading HTTP server holding the ``App`` and the page's files."""

    daemon_threads = True  # Ctrl-C does not wait for open connections

    def __init__(self, address: tuple, family: int, app: App, *, quiet: bool = False):
        self.address_family = family
        self.app, self.quiet, self.static = app, quiet, static_files()
        self.loopback_only = is_loopback(address[0])
        super().__init__(address, Handler)

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
        return Server(address, family, app, quiet=quiet)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError("port", f"{port} is in use on {host}") from None
        if exc.errno == errno.EACCES:
            raise ConfigError("port", f"{port}: permission denied (ports below 1024 need privileges)") from None
        raise ConfigError("host", f"cannot listen on {host} ({exc.strerror or exc})") from None
