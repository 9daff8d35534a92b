"""Fixtures of the studio tests: a studio over a temporary workspace (its queue not started: trainings
stay queued unless a test starts it) and Starlette's test client of the studio's server (serve's routes,
the studio's and the guard of every request; the socket is bound, never served)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from conftest import make_tiny_words
from makemore.serve import make_server
from makemore.studio import Studio, studio_routes, studio_static
from makemore.studio.routes import UPLOAD_PATHS

# a training child of a few seconds instead of --time 30s or more: bigram, about 700 steps/s on 1 thread
TRAIN_ARGS = ("--steps", "1000", "--eval-interval", "500", "--log-interval", "100")


def words_text(n: int = 300) -> str:
    return "".join(w + "\n" for w in make_tiny_words(n))


@pytest.fixture
def studio(tmp_path):
    studio = Studio(tmp_path / "ws", train_args=TRAIN_ARGS)
    yield studio
    studio.close()


@pytest.fixture
def client(studio):
    server = make_server(
        studio.app, "127.0.0.1", 0, quiet=True, routes=studio_routes(studio), static=studio_static(),
        upload_paths=UPLOAD_PATHS,
    )  # fmt: skip
    yield TestClient(server.asgi, base_url=f"http://127.0.0.1:{server.server_address[1]}", headers=UPLOAD_HEADERS)
    server.server_close()


UPLOAD_HEADERS = {"X-Makemore": "1"}  # what the page sends with an upload (the guard wants it there)


def add_list(client, text: str | None = None, **fields) -> dict:
    """POST a pasted list (the tiny words by default); its record."""
    r = client.post(
        "/api/studio/lists", json={"name": "tiny", "text": words_text() if text is None else text, **fields}
    )
    assert r.status_code == 201, r.text
    return r.json()["list"]


def queue_run(client, list_id: str, **fields) -> tuple[dict, dict]:
    """POST a training of a list (bigram, 30 s); (job, run)."""
    r = client.post("/api/studio/train", json={"list": list_id, "time": 30, "model": "bigram", **fields})
    assert r.status_code == 202, r.text
    return r.json()["job"], r.json()["run"]
