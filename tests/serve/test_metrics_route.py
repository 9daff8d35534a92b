"""``GET /api/metrics?run=&samples=&seed=``: the quality of generated items on the page (Explore), the
numbers of ``api.sample_metrics``; its controls come from ``EvalConfig``'s declarations."""

from __future__ import annotations

import json

import pytest

from makemore import api, options
from makemore.serve import params
from makemore.serve.params import RequestError
from tests.serve.test_server import error_of, request

PLAIN, LABELLED = 0, 1


def test_metrics_are_those_of_the_api_for_the_same_run_samples_and_seed(live, app):
    status, headers, body = request(live, "GET", f"/api/metrics?run={PLAIN}&samples=200&seed=5")
    assert status == 200 and headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    expected = api.sample_metrics(app.served[PLAIN].run, 200, 5).as_dict()
    assert answer == pytest.approx(expected, rel=1e-12) and set(answer) == set(expected)
    assert answer["num"] == 200 and answer["seed"] == 5


def test_a_labelled_run_and_the_defaults(app):
    answer = app.metrics({"run": str(LABELLED), "samples": "50"})
    assert answer["num"] == 50 and answer["seed"] == 0 and 0 <= answer["new"] <= 1
    assert answer == app.metrics({"run": str(LABELLED), "samples": "50", "seed": "0"})
    default = options.find(api.EvalConfig, "samples").option.page_default
    assert params.metrics_config({"run": str(PLAIN)}) == api.EvalConfig(samples=default, seed=0) and default == 1000


@pytest.mark.parametrize(
    "query, message",
    [
        ("samples=0", "samples: must be an integer from 1 to 1000000, got 0"),
        (f"samples={params.MAX_SAMPLES + 1}", f"samples: at most {params.MAX_SAMPLES:,} on this server"),
        ("samples=ten", "samples: must be a whole number, got 'ten'"),
        ("samples=5&seed=-3", "seed: must be a whole number"),
        ("samples=5&seed=18446744073709551616", "seed: must be an integer from 0 to 18446744073709551615"),
        ("samples=5&temperature=2", "temperature: unknown field"),
        ("samples=5&run=9", "run: must be a run id"),
    ],
)
def test_bad_metrics_requests_are_400s_naming_the_field(live, query, message):
    assert error_of(request(live, "GET", f"/api/metrics?{query}")).startswith(message)


def test_metrics_is_a_get_route(live):
    assert request(live, "POST", "/api/metrics", body={})[0] == 405


def test_the_page_has_the_metrics_controls_from_the_declarations(app, live):
    controls = app.options()["metrics"]
    assert controls == list(options.page_controls(api.EvalConfig, params.MAX_TEXT))
    by_name = {c["name"]: c for c in controls}
    assert by_name["samples"]["most"] == params.MAX_SAMPLES and by_name["samples"]["default"] == 1000
    assert set(by_name) == set(params.METRICS_FIELDS) - {"run"}
    page = request(live, "GET", "/")[2]
    assert b'id="metrics-form"' in page and b'id="metrics-controls"' in page and b'id="metrics"' in page
    script = request(live, "GET", "/static/app.js")[2]
    assert b"/api/metrics?" in script and b"options.metrics" in script


def test_a_run_without_its_training_data_is_refused(app, monkeypatch):
    served = app.served[PLAIN]
    monkeypatch.setattr(served, "data", None)
    monkeypatch.setattr(served, "note", "words.txt: no such file")
    with pytest.raises(RequestError) as info:
        app.metrics({"run": str(PLAIN), "samples": "5"})
    assert info.value.status == 400 and "could not be read (words.txt: no such file)" in info.value.message
