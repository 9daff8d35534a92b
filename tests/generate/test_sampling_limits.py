"""Requests at the edges (issue 28): no empty item, similar_to never returns its word, an
impossible constraint stops early, temperatures and top-p that underflow, regular expressions
that overflow or backtrack, and max_len (None: the model's limit; 0: refused)."""

from __future__ import annotations

import re
import time

import pytest
import torch
from test_sampling import CHAIN, ENDS, NEVER_ENDS, UNIFORM, VOCAB, TableModel, gen
from test_sampling_constraints import TINY_VOCAB, models  # noqa: F401 - the fixture of every family

from makemore import api
from makemore.data.corpus import BOUNDARY
from makemore.errors import ConfigError
from makemore.generate.constraints import compile_regex
from makemore.generate.ranking import edit_distances
from makemore.generate.sampling import SampleConfig, Sampler, decode_rows, generate_tokens
from makemore.models import model_names


def sample_items(model, vocab, config, **kwargs) -> list[str]:
    """The items of one ``Sampler`` (its keyword arguments), as a list."""
    return Sampler(model, vocab, config, **kwargs).all()


def items_of(model, vocab=VOCAB, default_max_len=8, stats=None, **fields):
    return sample_items(model, vocab, SampleConfig(**fields), default_max_len=default_max_len, stats=stats)


# -- no empty item --------------------------------------------------------------------------------


def test_the_end_is_never_the_first_token_of_an_item():
    # the end is the most likely token everywhere: greedy makes one character, then ends
    assert gen(TableModel(ENDS), num=3, temperature=0.0, max_len=10).tolist() == [[0, 1, 0]] * 3
    # after a prefix the item has its characters: the end may come at once
    assert gen(TableModel(ENDS), num=2, prefix=[3], temperature=0.0, max_len=10).tolist() == [[0, 3, 0]] * 2
    only_end = [[9.0, -9.0, -9.0, -9.0]] * 4  # P(end) ~ 1 everywhere
    rows = decode_rows(gen(TableModel(only_end), num=500, max_len=6, seed=1), VOCAB)
    assert min(map(len, rows)) == 1 and rows.count("") == 0


def test_generation_refuses_room_for_no_character():
    with pytest.raises(ConfigError, match="max_len: must be an integer at least 1"):
        gen(TableModel(ENDS), num=1, max_len=0)


@pytest.mark.parametrize("family", model_names())
def test_no_family_makes_an_empty_item(models, family):  # noqa: F811
    """The end is made by far the most likely first token of every family's model: the batched
    sampler still never ends an item before its first character."""
    model = models[family]
    real = model.next_token_logits

    def likes_to_end(idx, cache=None):
        logits, cache = real(idx, cache)
        return logits.index_add(1, torch.tensor([BOUNDARY]), torch.full((logits.size(0), 1), 30.0)), cache

    model.next_token_logits = likes_to_end
    try:
        tokens = generate_tokens(
            model, 300, prefix_ids=torch.zeros(0, dtype=torch.int64), generator=torch.Generator().manual_seed(0),
            max_len=8,
        )  # fmt: skip
    finally:
        del model.next_token_logits
    rows = decode_rows(tokens, TINY_VOCAB)
    assert len(rows) == 300 and all(len(row) == 1 for row in rows)  # one character, then the likely end
    assert (tokens[:, 1] != BOUNDARY).all() and (tokens[:, 2] == BOUNDARY).all()


def test_new_unique_samples_of_a_run_are_never_empty(trained_run):
    run = api.load_run(trained_run.out_dir)
    config = api.SampleConfig(num=1000, seed=3, new_only=True, unique=True)
    scores = list(api.Sampler.of(run, config, known_items=api.training_items(run)).scored())
    assert len(scores) == 1000 and all(s.item for s in scores)
    # the scores are the model's own, the numbers ``score`` gives the same items
    head = scores[:50]
    assert [s.nll for s in head] == pytest.approx([w.nll for w in api.score(run, [s.item for s in head])])


# -- similar_to never returns its word ------------------------------------------------------------


def test_similar_to_never_returns_the_word_itself():
    likes_ab = [[0, 2.0, 0, 0], [0, 0, 2.0, 0], [2.0, 0, 0, 0], [2.0, 0, 0, 0]]  # "ab" is the most likely item
    pool = items_of(TableModel(likes_ab), num=40, seed=0, unique=True)
    assert "ab" in pool  # the model makes it
    ranked = items_of(TableModel(likes_ab), num=5, seed=0, similar_to="ab", pool=40)
    assert "ab" not in ranked and len(ranked) == len(set(ranked)) == 5
    assert edit_distances(ranked, "ab").tolist() == [1] * 5  # the closest, but for the word itself


# -- an impossible constraint stops early ---------------------------------------------------------


def test_nothing_accepted_stops_once_the_draws_left_are_surely_too_few():
    stats = api.SampleStats()
    with pytest.raises(api.BudgetExhausted) as caught:  # no item has a 'q'
        items_of(TableModel(UNIFORM), stats=stats, num=5, regex="^q{5}", max_tries=100_000, time_limit=0)
    m = stats.tried
    # batches of 64 then 1,000 rows; it stops after the first m where 3 (100,000 - m) / m < 5
    assert (m, stats.found, stats.stopped, stats.draws_left) == (38_064, 0, "hopeless", 61_936)
    assert 3 * (100_000 - m) / m < 5 <= 3 * (100_000 - (m - 1000)) / (m - 1000)
    assert re.fullmatch(
        r"found none of 5 items in 38,064 draws \(.* s\); stopped early: with none of 38,064 draws meeting the "
        r"constraints, fewer than 3 in 38,064 do \(95% confidence\), too few for 5 items in the 61,936 draws that "
        r"max_tries and time_limit leave; loosen the constraints",
        str(caught.value),
    )


def test_with_a_time_limit_it_stops_long_before_it():
    stats = api.SampleStats()
    started = time.monotonic()
    with pytest.raises(api.BudgetExhausted):  # 1,000 items: the time left is too short after ~3/1003 of it
        items_of(TableModel(UNIFORM), stats=stats, num=1000, regex="q", max_tries=0, time_limit=20)
    assert stats.stopped == "hopeless" and stats.found == 0
    assert time.monotonic() - started < 10  # (about 0.1 s; generous on a busy machine)


def test_a_rare_but_possible_constraint_is_not_stopped():
    items = items_of(TableModel(UNIFORM), num=3, contains=("ccc",), max_tries=100_000, time_limit=0)
    assert len(items) == 3 and all("ccc" in s for s in items)


# -- temperatures and top-p that underflow ---------------------------------------------------------


@pytest.mark.parametrize("fields", [dict(temperature=1e-308), dict(temperature=5e-324), dict(top_p=1e-320)])
def test_tiny_temperature_or_top_p_samples_the_most_likely_items(fields):
    assert items_of(TableModel(CHAIN), num=4, **fields) == ["ab"] * 4


# -- regular expressions ----------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["a{4294967296}", "a{1,99999999999999999999}", "a(", "[b-a]", "a**", r"(a)\2"])
def test_a_regex_that_does_not_compile_is_a_config_error_naming_regex(pattern):
    with pytest.raises(ConfigError) as caught:
        SampleConfig(regex=pattern)
    assert caught.value.field == "regex" and str(caught.value).startswith("SampleConfig.regex: not a valid")
    assert "\n" not in str(caught.value)


def test_the_regex_reads_pythons_syntax():
    config = SampleConfig(regex=r"^(?P<first>[ab])(?!c)\w*(?P=first)$")
    assert compile_regex(config).search("abba") and not compile_regex(config).search("acba")
    assert compile_regex(SampleConfig()) is None


def test_the_time_limit_holds_when_one_match_backtracks():
    """Each item is 40 a's; ``^(a|aa)+b`` tries every split of them (about a minute each for
    Python's re): the match is cut at the time limit."""
    config = dict(num=1, regex=r"^(a|aa)+b", temperature=0.0, min_len=40, max_len=40, time_limit=0.5)
    stats = api.SampleStats()
    started = time.monotonic()
    with pytest.raises(api.BudgetExhausted) as caught:
        items_of(TableModel(NEVER_ENDS), stats=stats, **config)
    elapsed = time.monotonic() - started
    # how many rows were drawn before the limit depends on the machine's load, and so does whether the
    # draws left were found surely too few before the limit ("hopeless"): either way it stopped in time
    assert stats.stopped in ("time_limit", "hopeless") and caught.value.items == [] and stats.found == 0
    assert elapsed < 0.5 + 5  # the limit, and a generous margin for a busy machine


# -- max_len ----------------------------------------------------------------------------------------


def test_max_len_none_is_the_model_limit_and_zero_is_refused():
    assert SampleConfig().max_len is None
    assert max(map(len, items_of(TableModel(NEVER_ENDS), num=5, default_max_len=6))) == 6
    assert set(items_of(TableModel(NEVER_ENDS), num=5, max_len=1)) == {"a"}  # one character
    for bad in (0, -1, 1.5, "3", True):
        with pytest.raises(ConfigError, match="max_len: must be an integer at least 1"):
            SampleConfig(max_len=bad)


@pytest.mark.parametrize(
    "fields, match",
    [
        (dict(exclude_chars="abc"), "exclude_chars: excludes every character, so no item can be made"),
        (dict(exclude_chars="ab", not_contains=("c",)), "exclude_chars: excludes every character"),
        (dict(not_contains=("a", "b", "c")), "not_contains: excludes every character"),
        (dict(min_len=5, max_len=4), "min_len: 5 is more than max_len 4"),
        (dict(max_len=7, model_limit=6), "max_len: 7 is more than this model can generate"),
        (dict(min_len=7, model_limit=6), "min_len: 7 is more than the longest item"),
    ],
)
def test_a_request_no_item_can_meet_is_refused_before_any_work(fields, match):
    model = TableModel(UNIFORM)
    limit = fields.pop("model_limit", None)
    with pytest.raises(ConfigError, match=match):
        sample_items(model, VOCAB, SampleConfig(num=3, **fields), default_max_len=8, model_limit=limit)
    assert model.calls == 0
