"""``GET /api/options``: the page's generate controls, generated from ``SampleConfig``'s declarations,
and each control's name a field that ``POST /api/generate`` takes."""

from __future__ import annotations

import http.client
import json

import pytest

from makemore.config import EvalConfig
from makemore.generate.config import SampleConfig
from makemore.options import page_controls
from makemore.serve import params

PLAIN, LABELLED = 0, 1


def request(server, method: str, path: str, body=None) -> tuple[int, dict]:
    """(status, JSON answer) of one request to the live server."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def expected_controls() -> list[dict]:
    return list(page_controls(SampleConfig, params.MAX_TEXT))


def sent_default(control: dict):
    """What the page sends for a control left at its starting value (None: nothing)."""
    default = control["default"]
    return None if default in ("", None, []) else default


def test_options_are_the_page_controls_of_sample_config(live, app):
    status, answer = request(live, "GET", "/api/options")
    metrics = list(page_controls(EvalConfig, params.MAX_TEXT))  # the Explore view's sample quality
    assert status == 200 and answer == {"generate": expected_controls(), "metrics": metrics}
    assert app.options() == answer
    names = [c["name"] for c in answer["generate"]]
    assert len(names) == len(set(names)) and {"n", "seed", "top_k", "new_only", "label"} <= set(names)


def test_every_control_is_a_generate_field(live):
    controls = expected_controls()
    assert set(c["name"] for c in controls) <= set(params.GENERATE_FIELDS)
    body = {"run": PLAIN, "seed": 1}
    for control in controls:
        value = sent_default(control)
        if value is not None:
            body[control["name"]] = value
    status, answer = request(live, "POST", "/api/generate", body)
    assert status == 200, answer
    assert len(answer["items"]) == body["n"] and answer["seed"] == 1


@pytest.mark.parametrize("control", expected_controls(), ids=lambda c: c["name"])
def test_each_control_alone_is_accepted(live, control):
    """Its default where the page starts with one, else null (the server's default): never an unknown field."""
    body = {"run": PLAIN, "n": 3, "seed": 2, control["name"]: sent_default(control)}
    if control["name"] == "n":
        body["n"] = sent_default(control)
    status, answer = request(live, "POST", "/api/generate", body)
    assert status == 200, answer


def test_a_label_choice_is_sent_as_a_list_of_one(live):
    (control,) = [c for c in expected_controls() if c["choices_from"] == "labels"]
    assert control["kind"] == "list"
    status, answer = request(
        live, "POST", "/api/generate", {"run": LABELLED, "n": 5, "seed": 3, control["name"]: ["hi"]}
    )
    chars = "".join(r["item"] for r in answer["items"])  # smoothed counts: mostly the label's letters
    assert status == 200 and sum(c in "nopqrstu" for c in chars) > 0.8 * len(chars), answer


def test_run_length_controls_are_bounded_by_each_runs_length_limit(live, app):
    status, answer = request(live, "GET", "/api/runs")
    assert status == 200
    for run, served in zip(answer["runs"], app.served):
        assert run["length_limit"] == served.max_length > 0
    bounded = [c["name"] for c in expected_controls() if c["run_length"]]
    assert bounded == ["min_len", "max_len"]
    limit = answer["runs"][PLAIN]["length_limit"]
    status, answer = request(live, "POST", "/api/generate", {"run": PLAIN, "n": 1, "max_len": limit + 1})
    assert status == 400 and answer["error"].startswith("max_len")
