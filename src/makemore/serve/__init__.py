"""``makemore serve``: one page and a small JSON API over trained runs: a Starlette app served by
uvicorn (``server.py``), every request checked first by ``guard.Guard`` (Host header against DNS
rebinding; a token when bound off loopback; state-changing requests only from the server's own
Origin and only as JSON, or multipart with ``X-Makemore: 1`` on upload paths; body sizes).
``makemore studio`` adds its routes to the same server.

Endpoints (JSON unless noted): ``GET /`` (the page), ``GET /static/app.js`` and ``/static/style.css``,
``GET /api/runs``, ``GET /api/info?run=ID``, ``GET /api/plot/bigram?run=ID`` and ``/api/plot/loss?run=ID``
(PNG), ``POST /api/generate``, ``POST /api/score`` (see README.md, "Web page").

Limits, so that one request cannot pin the server (``params.py``):
- a request body: at most 64 KiB (413 beyond: a larger Content-Length unread, a chunked body cut
  off once over); an idle keep-alive connection is closed after 5 s;
- generate: ``n`` at most 1,000, ``pool`` (similar_to) at most 10,000; prefix, suffix, each of
  contains/not_contains (at most 16 of them), exclude_chars, regex, similar_to and a label: at most
  64 characters; min_len, max_len and a scored text: at most max(64, twice the run's longest
  training item) (and the model's own limit); a regex: at most 3 repetitions, none inside a repeated
  group, no backreferences; at most 100,000 rows drawn and 5 s of generation per request (a budget that
  runs out returns what it found with a warning, or a 400 when it found nothing).

Each run is used by one request at a time (a lock per run); requests for different runs, the page and
the plots run concurrently, in Starlette's threadpool. ``makemore serve`` sets torch to 2 intra-op
threads (``cli.commands.cmd_serve`` says why).
"""

from makemore.serve.app import App, load_app
from makemore.serve.server import Server, is_loopback, json_response, make_server, query_of, read_json, resolve

__all__ = [
    "App",
    "Server",
    "is_loopback",
    "json_response",
    "load_app",
    "make_server",
    "query_of",
    "read_json",
    "resolve",
]
