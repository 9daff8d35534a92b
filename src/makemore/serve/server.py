"""The HTTP side of ``makemore serve`` and ``makemore studio``: a Starlette app served by uvicorn.

Only the routes below (and those a caller adds) exist; no part of a URL or a body is ever used as a
path (the page's files are read from the package once). Every request passes ``guard.Guard`` first
(Host header, token, Origin and content type of state-changing requests, body size). Errors are
``{"error": "one line"}``: 400 a bad parameter, 401 no token, 403 a foreign Host or Origin, 404 an
unknown path, 405 a known path with the wrong method (``Allow`` says which), 413 a body too large, 415
not JSON, 500 ``internal error`` (one line on stderr, never a traceback). What h11 cannot parse as
HTTP/1.x is a 400 JSON answer too (``Protocol``). The App's methods run in Starlette's threadpool
(they use torch and per-run locks); the event loop only routes and streams.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from importlib import resources
from urllib.parse import parse_qs, quote

import h11
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from uvicorn.protocols.http.h11_impl import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE, H11Protocol

from makemore.errors import ConfigError, MakemoreError
from makemore.serve.app import PLOTS, App
from makemore.serve.guard import Guard, Policy, is_loopback, json_response, parse_host
from makemore.serve.params import RequestError, bad

__all__ = ["Server", "is_loopback", "json_response", "make_server", "parse_host", "query_of", "read_json", "resolve"]

STATIC = {"/": ("index.html", "text/html"), "/static/app.js": ("app.js", "text/javascript")}
STATIC["/static/style.css"] = ("style.css", "text/css")
GRACE_SECONDS = 3  # at shutdown, open requests (a progress stream) get this long before they are cancelled


def static_files() -> dict[str, tuple[bytes, str]]:
    """Route -> (bytes, content type) of the page's files, read from the package once."""
    folder = resources.files("makemore.serve").joinpath("static")
    return {
        route: (folder.joinpath(name).read_bytes(), f"{kind}; charset=utf-8") for route, (name, kind) in STATIC.items()
    }


def query_of(request: Request) -> dict[str, str]:
    """A request's query string as one value per field (at most 8; a repeated field is a 400)."""
    query = request.scope["query_string"].decode("latin-1")
    try:
        pairs = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=8)
    except ValueError as exc:
        raise bad(f"bad query string ({exc})") from None
    repeated = next((k for k, v in pairs.items() if len(v) > 1), None)
    if repeated is not None:
        raise bad(f"{repeated}: given more than once")
    return {k: v[0] for k, v in pairs.items()}


async def read_json(request: Request) -> dict:
    """The request's JSON object (``Guard`` has limited its size and checked its content type).

    Raises:
        RequestError: not UTF-8, not JSON, or not an object (400); too large (413).
    """
    raw = await request.body()
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


def serve_routes(app: App, static: Mapping[str, tuple[bytes, str]]) -> list[BaseRoute]:
    """The page's files and serve's JSON API over ``app`` (its methods run in the threadpool: torch, locks)."""

    def get(path: str, answer) -> Route:
        async def endpoint(request: Request) -> Response:
            query = query_of(request)
            return await run_in_threadpool(answer, query)

        return Route(path, endpoint, methods=["GET"])

    def post(path: str, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            body = await read_json(request)
            return json_response(200, await run_in_threadpool(lambda: getattr(app, method)(body)))

        return Route(path, endpoint, methods=["POST"])

    def file(path: str, body: bytes, kind: str) -> Route:
        async def endpoint(request: Request) -> Response:
            return Response(body, media_type=kind)

        return Route(path, endpoint, methods=["GET"])

    def export(query: dict[str, str]) -> Response:
        body, name = app.export(query)  # the name comes from the run's, quoted safely
        disposition = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
        return Response(body, headers=disposition, media_type="application/octet-stream")

    routes = [file(path, body, kind) for path, (body, kind) in static.items()]
    routes += [
        get("/api/runs", lambda query: json_response(200, app.runs())),
        get("/api/options", lambda query: json_response(200, app.options())),
        get("/api/info", lambda query: json_response(200, app.info(query))),
        get("/api/metrics", lambda query: json_response(200, app.metrics(query))),
        get("/api/export", export),
        post("/api/generate", "generate"),
        post("/api/score", "score"),
    ]
    for kind in PLOTS:  # one route each: no path part of a URL is a parameter
        routes.append(
            get(f"/api/plot/{kind}", lambda query, k=kind: Response(app.plot(k, query), media_type="image/png"))
        )
    return routes


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's 404 and 405 (and any other ``HTTPException``) as one JSON line."""
    path = request.url.path[:100]
    if exc.status_code == 404:
        return json_response(404, {"error": f"no such page: {path!r}"})
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # a set's order is not fixed: sort it
        allow = ", ".join(sorted(m.strip() for m in headers.get("Allow", "").split(",")))
        headers["Allow"] = allow
        return json_response(405, {"error": f"{request.method} is not allowed on {path} (use {allow})"}, headers)
    return json_response(exc.status_code, {"error": " ".join(str(exc.detail).split())[:500]}, headers)


async def _request_error(request: Request, exc: RequestError) -> Response:
    return json_response(exc.status, {"error": exc.message})


async def _library_error(request: Request, exc: MakemoreError) -> Response:
    """A library error not turned into a ``RequestError``: still one line."""
    message = exc.render(lambda name: name) if isinstance(exc, ConfigError) else str(exc)
    return json_response(400, {"error": " ".join(message.split())[:500]})


class _Connection(h11.Connection):
    """h11's connection, keeping the reason of the last request it could not parse."""

    error = ""

    def next_event(self):
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = " ".join(str(exc).split())[:200]
            raise


class Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, answering what h11 cannot parse as JSON naming h11's reason (not plain text)."""

    def __init__(self, config: uvicorn.Config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.conn = _Connection(h11.SERVER, config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE)

    def send_400_response(self, msg: str) -> None:
        reason = getattr(self.conn, "error", "") or "not HTTP/1.x"
        body = json.dumps({"error": f"bad request: {reason} (this server reads HTTP/1.0 and HTTP/1.1)"})
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n"
            + b"cache-control: no-store\r\nx-content-type-options: nosniff\r\n"
            + f"content-length: {len(body)}\r\n\r\n{body}".encode()
        )
        self.transport.close()


class _OneLine(logging.Handler):
    """uvicorn's own messages (a connection it could not read, tasks cancelled at shutdown): one line each."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"makemore: serve: {' '.join(record.getMessage().split())[:300]}", file=sys.stderr)


class Server:
    """A listening socket, the Starlette app (``asgi``) and the uvicorn server that runs it."""

    def __init__(self, sock: socket.socket, app: App, asgi: Starlette, *, quiet: bool, token: str | None):
        self.socket, self.app, self.asgi, self.token = sock, app, asgi, token
        self.server_address = sock.getsockname()
        config = uvicorn.Config(
            asgi, http=Protocol, ws="none", lifespan="off", loop="asyncio", log_config=None, access_log=False,
            server_header=False, timeout_graceful_shutdown=GRACE_SECONDS,
        )  # fmt: skip
        logger = logging.getLogger("uvicorn.error")
        if not any(isinstance(h, _OneLine) for h in logger.handlers):
            logger.addHandler(_OneLine())
        logger.setLevel(logging.ERROR if quiet else logging.WARNING)
        logger.propagate = False
        self._uvicorn, self._stopped, self._running = uvicorn.Server(config), threading.Event(), False

    @property
    def url(self) -> str:
        """``http://host:port/`` (and ``?token=...`` when the server has a token)."""
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/" + (f"?token={self.token}" if self.token else "")

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Answer requests until ``shutdown()`` (or SIGINT/SIGTERM in the main thread: then KeyboardInterrupt).

        Args:
            poll_interval: kept for callers of the standard library's server; uvicorn checks every 0.1 s.
        """
        self._running = True
        try:
            self._uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (running in another thread) and wait for it."""
        self._uvicorn.should_exit = True
        if self._running:
            self._stopped.wait()

    def server_close(self) -> None:
        self.socket.close()


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


def _listen(family: int, address: tuple, host: str, port: int) -> socket.socket:
    """A listening socket on ``address`` (errors as the ``port`` or ``host`` they come from)."""
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (headers and body are two
    # writes; with Nagle's algorithm each answer would wait ~40 ms for the client's delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart can reuse the port at once
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError("port", f"{port} is in use on {host}") from None
        if exc.errno == errno.EACCES:
            raise ConfigError("port", f"{port}: permission denied (ports below 1024 need privileges)") from None
        raise ConfigError("host", f"cannot listen on {host} ({exc.strerror or exc})") from None
    return sock


def make_server(
    app: App,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    quiet: bool = False,
    routes: Sequence[BaseRoute] = (),
    token: str | None = None,
    static: Mapping[str, tuple[bytes, str]] | None = None,
    upload_paths: Mapping[str, int] | None = None,
) -> Server:
    """A server of ``app`` listening on ``host:port`` (0: a free port; see ``Server.url``).

    Args:
        routes: more Starlette routes (the studio's), after serve's own.
        token: when given, every request must carry it (see ``Policy.check_token``); the caller decides.
        static: route -> (bytes, content type), added to or replacing the page's files.
        upload_paths: path -> most bytes of the routes that take ``multipart/form-data`` uploads.
    Raises:
        ConfigError: (``host``, ``port``) an unknown host, a port out of range or in use.
    """
    family, address = resolve(host, port)
    sock = _listen(family, address, host, port)
    policy = Policy(
        loopback_only=is_loopback(address[0]), host=host, port=sock.getsockname()[1], token=token,
        uploads=upload_paths, quiet=quiet,
    )  # fmt: skip
    files = {**static_files(), **(static or {})}
    asgi = Starlette(
        routes=[*serve_routes(app, files), *routes],
        middleware=[Middleware(Guard, policy=policy)],
        exception_handlers={HTTPException: _http_error, RequestError: _request_error, MakemoreError: _library_error},
    )
    asgi.router.redirect_slashes = False  # /api/runs/ is not /api/runs: a 404, not a redirect
    return Server(sock, app, asgi, quiet=quiet, token=token)
