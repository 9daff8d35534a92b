"""Fixtures of the serve tests: the app over the shared trained run and a tiny labelled run, and a
live server of it on a free port."""

from __future__ import annotations

import threading

import pytest

from conftest import labelled_pairs as shared_labelled_pairs
from makemore import api
from makemore.serve import load_app, make_server

LOW, HIGH = "abcdefgh", "nopqrstu"


def labelled_pairs(n: int = 300, seed: int = 0) -> list[tuple[str, str]]:
    """(label, item) pairs: 'lo' items use a-h only, 'hi' items n-u only."""
    return shared_labelled_pairs(n, seed, LOW, HIGH)


@pytest.fixture(scope="session")
def labelled_run_dir(tmp_path_factory):
    """A labelled bigram count model (fitted in one pass: no metrics, so no loss curve)."""
    root = tmp_path_factory.mktemp("serve_labelled")
    path = root / "halves.tsv"
    path.write_text("".join(f"{label}\t{item}\n" for label, item in labelled_pairs()))
    config = api.RunConfig(model="ngram", model_config=api.make_config("ngram", {"order": 2, "k": 0.1}))
    config.data = api.DataConfig(input=str(path), labelled=True)
    api.train(config, root / "labelled", progress=False)
    return root / "labelled"


@pytest.fixture(scope="session")
def app(trained_run, labelled_run_dir):
    """Run 0: the shared small MLP; run 1: the labelled count model."""
    app = load_app([trained_run.out_dir, labelled_run_dir])
    yield app
    app.close()


@pytest.fixture(scope="session")
def live(app):
    """A server of ``app`` on a free port of 127.0.0.1, in a thread."""
    server = make_server(app, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
