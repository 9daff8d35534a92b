"""Generate requests at the edges (issue 28): what used to be a 500 is an answer or a 400 naming
its field, and the page's empty fields (left out of the body) are the defaults."""

from __future__ import annotations

import pytest

from makemore import api
from makemore.serve import params
from makemore.serve.params import RequestError


def refused(app, body) -> str:
    with pytest.raises(RequestError) as info:
        app.generate(body)
    assert info.value.status == 400 and "\n" not in info.value.message
    return info.value.message


def items(answer) -> list[str]:
    return [row["item"] for row in answer["items"]]


@pytest.mark.parametrize("body", [{"temperature": 1e-308}, {"temperature": 5e-324}, {"top_p": 1e-320}])
def test_a_temperature_or_top_p_that_underflows_samples_the_most_likely_items(app, body):
    answer = app.generate({"n": 2, "seed": 1, **body})
    greedy = app.generate({"n": 2, "seed": 1, "temperature": 0})
    assert answer["warning"] is None and items(answer) == items(greedy) and all(items(answer))


@pytest.mark.parametrize("regex", ["a{4294967296}", "a{1,99999999999999999999}", "a("])
def test_a_regex_that_does_not_compile_is_a_400_naming_regex(app, regex):
    assert refused(app, {"n": 2, "regex": regex}).startswith("regex: not a valid regular expression")


def test_a_regex_only_the_regex_package_reads_is_a_400_naming_regex(app):
    assert refused(app, {"n": 2, "regex": r"\p{L}+"}).startswith("regex: this server reads the syntax of Python's re")


def test_max_len_zero_is_refused_and_a_left_out_or_null_max_len_is_the_default(app):
    assert refused(app, {"n": 3, "max_len": 0}).startswith("max_len: must be an integer at least 1")
    default = app.generate({"n": 5, "seed": 2})
    assert app.generate({"n": 5, "seed": 2, "max_len": None})["items"] == default["items"]
    assert all(items(default))  # no empty item
    assert {len(s) for s in items(app.generate({"n": 20, "seed": 2, "max_len": 1}))} == {1}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"exclude_chars": " -.abcdeé"}, "exclude_chars: excludes every character"),
        ({"not_contains": list(" -.abcdeé")}, "not_contains: excludes every character"),
        ({"min_len": 5, "max_len": 4}, "min_len: 5 is more than max_len 4"),
        ({"max_len": 65}, "max_len: at most 64 on this server"),
    ],
)
def test_a_request_no_item_can_meet_is_a_400_naming_the_field(app, body, message):
    assert refused(app, {"n": 3, **body}).startswith(message)


def test_an_impossible_regex_is_a_400_long_before_the_budget(app):
    message = refused(app, {"n": 5, "seed": 0, "regex": "^q{5}"})
    assert message.startswith("found none of 5 items") and "stopped early" in message, message
    served = app.served[0]
    config = params.sample_config({"n": 5, "seed": 0, "regex": "^q{5}"}, served.run.vocab, served.max_length)
    stats = api.SampleStats()
    with pytest.raises(api.BudgetExhausted):
        api.sample(served.run, config, stats)
    # stopped early: no draw met the regex, and the draws the budget has left are surely too few
    assert stats.stopped == "hopeless" and 0 < stats.draws_left and stats.tried < params.MAX_TRIES
    assert 3 * stats.draws_left / stats.tried < 5


@pytest.mark.parametrize("run", ["\uff11", "\u0661", "1.0", "-1"])
def test_a_run_id_is_ascii_digits_only(app, run):
    assert refused(app, {"n": 1, "run": run}).startswith("run:")
