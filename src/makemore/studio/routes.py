"""The studio's HTTP routes (Starlette), all under ``/api/studio/``, over a ``Studio``.

The server's ``Guard`` (``makemore.serve.guard``) has checked the Host header, the token, the origin,
the content type and the body's size before a route runs; each route still answers its own errors as
``{"error": "one line"}`` (so they read the same under any server), and runs the studio's methods in
the threadpool (they read and write files, and take locks).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from importlib import resources
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from makemore.errors import MakemoreError
from makemore.serve import guard, params, server
from makemore.studio.core import UPLOAD_MAX_BYTES, Studio

PREFIX = "/api/studio"
UPLOAD_PATH = f"{PREFIX}/lists/upload"
UPLOAD_PATHS = {UPLOAD_PATH: UPLOAD_MAX_BYTES + 64 * 1024}  # the file, and the form's fields and boundaries
EVENTS_EVERY_S = 0.5  # how often the event stream looks at the jobs
PING_EVERY_S = 15.0  # a comment line keeps a quiet stream open through proxies
STATIC = {"/": ("studio.html", "text/html"), "/static/studio.js": ("studio.js", "text/javascript")}
STATIC["/static/studio.css"] = ("studio.css", "text/css")


VIEWS = ("<!-- serve views: the studio's page carries them (studio/routes.py) -->", "<!-- /serve views -->")
VIEWS_SLOT = "<!-- serve views: index.html's, put here when the page is served -->"


def studio_page(index: str, studio: str) -> str:
    """The studio's page: ``studio.html`` with serve's views (generate, score, explore) taken from
    ``index.html``, so the two pages never drift apart and neither is a copy of the other.

    Raises:
        RuntimeError: a page file without its marker (a packaging mistake, not user input).
    """
    start, end = (index.find(marker) for marker in VIEWS)
    if start < 0 or end < start or studio.count(VIEWS_SLOT) != 1:
        raise RuntimeError("the page files lack the serve views' markers")
    return studio.replace(VIEWS_SLOT, index[start + len(VIEWS[0]) : end].strip("\n"))


def studio_static() -> dict[str, tuple[bytes, str]]:
    """The studio's page and its files (route -> (bytes, content type)), read from the package once."""
    folder = resources.files("makemore.serve").joinpath("static")
    files = {path: folder.joinpath(name).read_text(encoding="utf-8") for path, (name, _) in STATIC.items()}
    files["/"] = studio_page(folder.joinpath("index.html").read_text(encoding="utf-8"), files["/"])
    return {path: (text.encode("utf-8"), f"{STATIC[path][1]}; charset=utf-8") for path, text in files.items()}


def _error(exc: Exception) -> Response:
    if isinstance(exc, params.RequestError):
        return guard.json_response(exc.status, {"error": exc.message})
    return guard.json_response(400, {"error": " ".join(str(exc).split())[:500]})


def _download(body: bytes, name: str, kind: str) -> Response:
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    return Response(body, headers=headers, media_type=kind)


def route(path: str, answer: Callable, *, method: str = "GET", body: bool = False, status: int = 200) -> Route:
    """A route that calls ``answer(*path ids[, JSON body])`` in the threadpool and sends its JSON (or Response)."""

    async def endpoint(request: Request) -> Response:
        try:
            args = list(request.path_params.values())
            if body:
                args.append(await server.read_json(request))
            result = await run_in_threadpool(answer, *args)
        except (params.RequestError, MakemoreError) as exc:
            return _error(exc)
        return result if isinstance(result, Response) else guard.json_response(status, result)

    return Route(PREFIX + path, endpoint, methods=[method])


async def _form(request: Request) -> tuple[dict[str, str], bytes]:
    """The upload's text fields and its file's bytes (at most ``UPLOAD_MAX_BYTES`` + 1 read)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > UPLOAD_PATHS[UPLOAD_PATH]:
        raise params.RequestError(413, f"file: the body is {int(length):,} bytes; at most {UPLOAD_MAX_BYTES:,}")
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=64 * 1024)
    except (MultiPartException, ValueError, KeyError) as exc:  # too many parts, or not multipart at all
        detail = " ".join(str(exc).split())[:200]
        raise params.bad(f"the body is not a multipart/form-data upload of one file ({detail})") from None
    upload, text = form.get("file"), {}
    if not isinstance(upload, UploadFile):
        raise params.bad("file: missing (send the list as the form's file field)")
    for key, value in form.multi_items():
        if key != "file":
            if not isinstance(value, str) or key in text:
                raise params.bad(f"{key[:40]}: must be given once, as text")
            text[key] = value
    raw = await upload.read(UPLOAD_MAX_BYTES + 1)
    await form.close()
    return text, raw


def studio_routes(studio: Studio) -> list[Route]:
    """Every ``/api/studio/`` route over ``studio``."""

    async def upload(request: Request) -> Response:
        try:
            text, raw = await _form(request)
            return guard.json_response(201, await run_in_threadpool(studio.upload_list, text, raw))
        except (params.RequestError, MakemoreError) as exc:
            return _error(exc)

    async def events(request: Request) -> Response:
        return StreamingResponse(
            _events(studio, request), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    def favourites_file(kind: str) -> Callable:
        kinds = {"txt": "text/plain; charset=utf-8", "csv": "text/csv; charset=utf-8"}
        return lambda run_id: _download(*studio.favourites_file(run_id, kind), kinds[kind])

    return [
        route("/state", studio.state),
        route("/lists", studio.add_list, method="POST", body=True, status=201),
        Route(UPLOAD_PATH, upload, methods=["POST"]),
        route("/lists/{id}/delete", studio.delete_list, method="POST"),
        route("/train", studio.train, method="POST", body=True, status=202),
        route("/jobs", studio.jobs.snapshot),
        Route(f"{PREFIX}/events", events, methods=["GET"]),
        route("/jobs/{id}/cancel", studio.cancel, method="POST"),
        route("/runs", studio.runs),
        route("/runs/{id}/resume", studio.resume, method="POST", status=202),
        route("/runs/{id}/rename", studio.rename, method="POST", body=True),
        route("/runs/{id}/delete", studio.delete_run, method="POST", body=True),
        route("/runs/{id}/favourites", studio.ws.favourites),
        route("/runs/{id}/favourites", studio.star, method="POST", body=True),
        route("/runs/{id}/favourites.txt", favourites_file("txt")),
        route("/runs/{id}/favourites.csv", favourites_file("csv")),
    ]


async def _events(studio: Studio, request: Request):
    """``event: jobs`` with every job whenever one changes, ``: ping`` when quiet; until the client goes."""
    last, sent = None, time.monotonic()
    while not studio.closing.is_set() and not await request.is_disconnected():
        text = json.dumps(await run_in_threadpool(studio.jobs.snapshot), ensure_ascii=False, allow_nan=False)
        if text != last:
            last, sent = text, time.monotonic()
            yield f"event: jobs\ndata: {text}\n\n"
        elif time.monotonic() - sent >= PING_EVERY_S:
            sent = time.monotonic()
            yield ": ping\n\n"
        await asyncio.sleep(EVENTS_EVERY_S)
