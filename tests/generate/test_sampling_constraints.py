"""Constrained sampling: every constraint holds on every family, the budget, impossible
requests, ranking by closeness, scores, and the ``sample`` command's flags."""

from __future__ import annotations

import json
import random
import re
import shutil
import time

import pytest
import torch
from test_sampling import VOCAB, TableModel

from conftest import make_tiny_words
from conftest import run_cli as cli
from makemore import api
from makemore.data.corpus import EncodedCorpus, Vocab
from makemore.errors import ConfigError, MakemoreError
from makemore.evaluate.scoring import item_nlls
from makemore.generate import sampling
from makemore.generate.constraints import shortest_with
from makemore.generate.ranking import edit_distances, rank_similar
from makemore.generate.sampling import SampleConfig, Sampler, decode_rows, generate_tokens, mask_logits
from makemore.models import build_model, make_config, model_names


def sample_items(model, vocab, config, **kwargs) -> list[str]:
    """The items of one ``Sampler`` (its keyword arguments), as a list."""
    return Sampler(model, vocab, config, **kwargs).all()


def iter_items(model, vocab, config, **kwargs):
    """The items of one ``Sampler``, as they come."""
    return Sampler(model, vocab, config, **kwargs).items()


WORDS = make_tiny_words()
TINY_VOCAB = Vocab.from_words(WORDS)  # " -.abcdeé"
SMALL = {
    "ngram": dict(order=3),
    "mlp": dict(n_embd=4, n_hidden=16),
    "bn-mlp": dict(n_embd=4, n_hidden=16),
    "wavenet": dict(n_embd=4, n_hidden=16),
    "rnn": dict(n_embd=8, n_hidden=16),
    "gru": dict(n_embd=8, n_hidden=16),
    "lstm": dict(n_embd=8, n_hidden=16),
    "transformer": dict(block_size=16, n_layer=1, n_head=2, n_embd=16),
}
MAX_LEN = 12


@pytest.fixture(scope="module")
def models():
    """One small model of every family: count models fitted to the tiny words, the others
    as initialised (sampling reads them the same way)."""
    corpus = EncodedCorpus.from_words(WORDS, TINY_VOCAB)
    out = {}
    for family in model_names():
        torch.manual_seed(0)
        model = build_model(family, make_config(family, SMALL.get(family, {})), TINY_VOCAB.size)
        if not model.trains_by_gradient:
            model.fit_batcher(model.batcher(corpus))
        out[family] = model.eval()
    return out


def draw(model, **fields):
    return sample_items(
        model, TINY_VOCAB, SampleConfig(**fields), default_max_len=MAX_LEN, model_limit=model.position_limit
    )


def holds(item: str, config: SampleConfig) -> bool:
    """Every constraint of ``config``, checked directly."""
    return (
        item.startswith(config.prefix)
        and item.endswith(config.suffix)
        and all(part in item for part in config.contains)
        and not any(part in item for part in config.not_contains)
        and not set(item) & set(config.exclude_chars)
        and (not config.regex or re.search(config.regex, item) is not None)
        and config.min_len <= len(item) <= (config.max_len or MAX_LEN)
    )


CONSTRAINTS = {
    "suffix": dict(suffix="a"),
    "contains": dict(contains=("a", "b")),
    "not_contains": dict(not_contains=("ab", "c", "ba")),
    "exclude_chars": dict(exclude_chars="abcé", min_len=3),
    "regex": dict(regex=r"^[^abc]+$"),
    "all": dict(
        prefix="b", suffix="a", contains=("d",), not_contains=("bb",), exclude_chars="é", regex="^b.*a$", min_len=4
    ),
}


@pytest.mark.parametrize("name", list(CONSTRAINTS))
@pytest.mark.parametrize("family", model_names())
def test_every_constraint_holds_for_every_item(models, family, name):
    config = SampleConfig(num=40, seed=1, max_tries=200_000, time_limit=0, **CONSTRAINTS[name])
    items = draw(models[family], **vars(config))
    assert len(items) == 40
    assert all(holds(item, config) for item in items), [i for i in items if not holds(i, config)]


@pytest.mark.parametrize("family", model_names())
def test_without_constraints_the_items_are_those_of_plain_generation(models, family):
    """Same seed, same items as ``generate_tokens`` called batch after batch (the code path
    from before constraints); a budget that is not reached changes nothing either."""
    model = models[family]
    fields = dict(num=50, seed=4, batch_size=16, prefix="a", min_len=2, top_k=5, temperature=0.9)
    generator = torch.Generator().manual_seed(4)
    expected = []
    for rows in (16, 16, 16, 2):
        tokens = generate_tokens(
            model,
            rows,
            prefix_ids=TINY_VOCAB.encode("a"),
            generator=generator,
            temperature=0.9,
            top_k=5,
            min_len=2,
            max_len=MAX_LEN,
        )
        expected += decode_rows(tokens, TINY_VOCAB)
    assert draw(model, **fields) == expected
    assert draw(model, **fields, max_tries=10**6, time_limit=1000.0) == expected


def test_excluded_characters_are_masked_not_rejected():
    """Masking never draws a banned token: a constraint that rejection would rarely meet
    costs one row per item."""
    model = TableModel([[0.0, 5.0, 0.0, 0.0]] * 4)  # 'a' is by far the most likely
    stats = api.SampleStats()
    items = sample_items(model, VOCAB, SampleConfig(num=200, exclude_chars="a"), default_max_len=6, stats=stats)
    assert len(items) == 200 and not any("a" in s for s in items)
    assert stats.tried == 200 and stats.acceptance == 1.0
    assert model.batch_sizes[0] == 200  # one batch: nothing was dropped


def test_a_row_with_only_banned_tokens_left_still_draws_and_ends():
    logits = torch.tensor([[float("-inf"), 3.0, float("-inf"), float("-inf")], [1.0, 2.0, 0.5, 0.0]])
    banned = torch.tensor([False, True, False, False])
    out = mask_logits(logits, banned, end_allowed=False)
    assert out[0].tolist() == [float("-inf"), float("-inf"), 0.0, 0.0]  # uniform over what is allowed
    assert out[1].tolist() == [float("-inf"), float("-inf"), 0.5, 0.0]
    assert mask_logits(logits, banned, end_allowed=True)[0].tolist() == [0.0, float("-inf"), 0.0, 0.0]
    # the model only ever wants 'a': with 'a' banned and min_len 3, rows still grow and end
    only_a = [[float("-inf"), 0.0, float("-inf"), float("-inf")]] * 4
    items = sample_items(
        TableModel(only_a), VOCAB, SampleConfig(num=50, exclude_chars="a", min_len=3), default_max_len=5
    )
    assert len(items) == 50 and all(3 <= len(s) <= 5 and "a" not in s for s in items)


def test_the_budget_stops_a_near_impossible_constraint_at_max_tries(models):
    stats = api.SampleStats()
    with pytest.raises(api.BudgetExhausted) as caught:
        sample_items(  # one item: the draws left are never surely too few (see test_sampling_limits)
            models["mlp"], TINY_VOCAB, SampleConfig(num=1, contains=("abcdeabcde",), max_tries=3000),
            default_max_len=MAX_LEN, stats=stats,
        )  # fmt: skip
    exc = caught.value
    assert exc.stats is stats and stats.tried == 3000 and stats.found == 0 and stats.stopped == "max_tries"
    assert exc.items == []
    assert re.fullmatch(
        r"found none of 1 items in 3,000 draws \(.* acceptance 0%\), all that max_tries allows; .*", str(exc)
    )


def test_the_budget_stops_at_the_time_limit_with_what_was_found(models):
    model = models["gru"]
    config = SampleConfig(num=10**6, contains=("aa",), max_tries=0, time_limit=0.5, batch_size=200)
    started = time.monotonic()
    with pytest.raises(api.BudgetExhausted) as caught:
        sample_items(model, TINY_VOCAB, config, default_max_len=MAX_LEN)
    elapsed = time.monotonic() - started
    exc = caught.value
    assert exc.stats.stopped == "time_limit" and 0.5 <= exc.stats.seconds < elapsed
    assert elapsed < 0.5 + 5  # one batch past the limit at most (a generous bound on a busy machine)
    assert 0 < len(exc.items) == exc.stats.found < 10**6
    assert all("aa" in s for s in exc.items)
    assert str(exc).startswith(f"found {exc.stats.found:,} of 1,000,000 items in ")


def test_the_iterators_yield_what_was_found_before_the_shortfall(models):
    stats = api.SampleStats()
    config = SampleConfig(num=1000, suffix="e", max_tries=500, batch_size=100)
    got = []
    with pytest.raises(api.BudgetExhausted):
        for item in iter_items(models["lstm"], TINY_VOCAB, config, default_max_len=MAX_LEN, stats=stats):
            got.append(item)
    assert len(got) == stats.found > 0 and stats.tried == 500 and all(s.endswith("e") for s in got)


def test_rare_constraints_draw_bigger_batches(monkeypatch):
    rows = []
    real = sampling.generate_tokens

    def spy(model, num, **kwargs):
        rows.append(num)
        return real(model, num, **kwargs)

    monkeypatch.setattr(sampling, "generate_tokens", spy)
    model = TableModel([[0.0] * 4] * 4)
    stats = api.SampleStats()
    config = SampleConfig(num=20, contains=("cab",), batch_size=1000, seed=0)
    assert all("cab" in s for s in sample_items(model, VOCAB, config, default_max_len=8, stats=stats))
    assert rows[0] == 64  # 1.2 x 20 items at an acceptance of 1 in 2 before any draw; at least 64
    assert rows[1] > 3 * rows[0] and stats.acceptance < 0.25  # then sized to the acceptance seen
    rows.clear()
    rare_c = TableModel([[0.0, 0.0, 0.0, -10.0]] * 4)
    with pytest.raises(api.BudgetExhausted) as caught:  # (2,752 draws: never surely too few for one item)
        sample_items(rare_c, VOCAB, SampleConfig(num=1, contains=("cc",), max_tries=2752), default_max_len=8)
    assert rows == [64, 1000, 1000, 688] and caught.value.stats.stopped == "max_tries"  # the whole batch_size


@pytest.mark.parametrize(
    "fields, match",
    [
        (dict(suffix="z"), "suffix: character 'z'"),
        (dict(contains=("az",)), "contains: character 'z'"),
        (dict(prefix="a", exclude_chars="a"), "prefix: 'a' has 'a', one of exclude_chars"),
        (dict(suffix="ba", exclude_chars="ab"), "suffix: 'ba' has 'b'"),
        (dict(contains=("c",), exclude_chars="c"), "contains: 'c' has 'c'"),
        (dict(contains=("abc",), not_contains=("b",)), "contains: 'abc' contains 'b', which not_contains"),
        (dict(prefix="ab", not_contains=("ab",)), "prefix: 'ab' contains 'ab'"),
        (dict(prefix="abc", suffix="cab", max_len=4), r"suffix: .* at least 5 characters, more than max_len 4"),
        (dict(suffix="abcabcabc"), "suffix: is 9 characters long, more than max_len 8"),
        (dict(contains=("aaaaaaaaa",), max_len=8), "contains: is 9 characters long"),
        (dict(exclude_chars="abc", min_len=1), "exclude_chars: excludes every character"),
        (dict(min_len=5, max_len=3), "min_len"),
    ],
)
def test_impossible_requests_are_refused_before_any_generation(fields, match):
    model = TableModel([[0.0] * 4] * 4)
    with pytest.raises(ConfigError, match=match) as caught:
        sample_items(model, VOCAB, SampleConfig(num=3, **fields), default_max_len=8)
    assert model.calls == 0
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "fields, match",
    [
        (dict(regex="a("), "regex: not a valid regular expression"),
        (dict(contains="ab"), "contains: must be a list of strings"),
        (dict(not_contains=("",)), "not_contains: must be non-empty strings"),
        (dict(suffix=3), "suffix: must be a string"),
        (dict(suffix="a\nb"), "suffix: items never contain a line break"),
        (dict(max_tries=-1), "max_tries"),
        (dict(time_limit=float("nan")), "time_limit"),
        (dict(time_limit=-1), "time_limit"),
        (dict(suffix="a", max_tries=0, time_limit=0), "max_tries: 0 .*needs a time_limit"),
        (dict(pool=50), "pool: is the pool similar_to picks from"),
        (dict(num=10, similar_to="ab", pool=5), "pool: must be from num"),
        (dict(similar_to="ab", pool=2_000_000), "pool"),
    ],
)
def test_bad_constraint_fields(fields, match):
    with pytest.raises(ConfigError, match=match):
        SampleConfig(**fields)


def test_lists_become_tuples_and_a_limitless_budget_is_fine_without_rejection():
    config = SampleConfig(contains=["a", "b"], not_contains=["c"])
    assert config.contains == ("a", "b") and config.not_contains == ("c",)
    SampleConfig(exclude_chars="a", max_tries=0, time_limit=0)  # masking alone always ends


@pytest.mark.parametrize(
    "prefix, suffix, length",
    [
        ("abc", "cde", 5),
        ("abc", "bc", 3),
        ("a", "abc", 3),
        ("ab", "ba", 3),
        ("", "x", 1),
        ("aa", "aaa", 3),
        ("ab", "", 2),
    ],
)
def test_shortest_item_with_prefix_and_suffix(prefix, suffix, length):
    assert shortest_with(prefix, suffix) == length


# -- closeness and scores ---------------------------------------------------------------------


def osa(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook way."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_edit_distances_match_the_textbook_dynamic_programme():
    rng = random.Random(0)
    items = [
        "",
        "a",
        "ab",
        "ba",
        "emma",
        "emam",
        "ca",
        "abc",
        *("".join(rng.choices("abcé", k=rng.randint(0, 9))) for _ in range(300)),
    ]
    for word in ("", "a", "emma", "abc", "acbé", "ca"):
        assert edit_distances(items, word).tolist() == [osa(item, word) for item in items], word
    assert edit_distances(["ac", "abc"], "ca").tolist() == [1, 3]  # one swap; a swapped pair is not edited again
    assert edit_distances([], "x").tolist() == []


def test_rank_similar_orders_by_distance_then_plausibility(models):
    model = models["ngram"]
    pool = ["abe", "dab", "abe", "cade", "ab", "ba", "e.e", "abd", "ade"]
    ranked = rank_similar(model, TINY_VOCAB, pool, "abe", 5)
    assert ranked[0] == "abe" and len(ranked) == len(set(ranked)) == 5
    distance = dict(zip(ranked, edit_distances(ranked, "abe").tolist()))
    nll = dict(zip(ranked, item_nlls(model, TINY_VOCAB, ranked).tolist()))
    keys = [(distance[s], nll[s]) for s in ranked]
    assert keys == sorted(keys)
    # the five closest of all distinct items
    everything = sorted(set(pool), key=lambda s: osa(s, "abe"))
    assert sorted(distance.values()) == sorted(osa(s, "abe") for s in everything)[:5]


def test_similar_to_returns_the_closest_of_a_pool(models):
    config = dict(num=5, seed=2, similar_to="abe", pool=300)
    ranked = draw(models["transformer"], **config)
    pool = draw(models["transformer"], num=300, seed=2, unique=True)
    assert ranked == rank_similar(models["transformer"], TINY_VOCAB, pool, "abe", 5)
    assert edit_distances(ranked, "abe").max() <= edit_distances(pool, "abe").sort().values[4]


def test_item_nlls_are_the_scores_of_score(trained_run):
    run = api.load_run(trained_run.out_dir)
    words = ["abe", "e.é", "a", "dd-c"]
    expected = [s.nll for s in api.score(run, words)]
    assert item_nlls(run.model, run.vocab, words).tolist() == pytest.approx(expected, abs=1e-9)
    assert item_nlls(run.model, run.vocab, [""]).shape == (1,)  # an empty item scores its end


def test_scores_of_sampled_items(trained_run):
    run = api.load_run(trained_run.out_dir)
    known = set(trained_run.words)
    config = api.SampleConfig(num=30, seed=5)
    scores = list(api.Sampler.of(run, config, known_items=known).scored())
    assert [s.item for s in scores] == api.sample(run, config)
    assert [s.known for s in scores] == [s.item in known for s in scores]
    assert all(s.item for s in scores)  # no item is empty: each has the score ``score`` gives it
    assert [s.nll for s in scores] == pytest.approx([w.nll for w in api.score(run, [s.item for s in scores])])
    assert all(s.distance is None for s in scores)
    assert all(s.known is None for s in api.Sampler.of(run, config).scored())


# -- the command line -------------------------------------------------------------------------


def test_cli_constraints_and_scores(trained_run, capsys):
    run_dir = trained_run.out_dir
    code, out, err = cli(
        capsys, "sample", run_dir, "-n", "15", "--seed", "0", "--suffix", "e", "--not-contains", "ab", "--scores"
    )
    assert code == 0 and err == ""
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == 15 and all(len(row) == 3 for row in rows)
    assert all(item.endswith("e") and "ab" not in item for item, _, _ in rows)
    assert [known for _, _, known in rows] == ["known" if item in trained_run.words else "new" for item, _, _ in rows]
    run = api.load_run(run_dir)
    scored = [item for item, _, _ in rows]
    assert all(scored) and [float(nll) for _, nll, _ in rows] == pytest.approx(
        [s.nll for s in api.score(run, scored)], abs=6e-5
    )


def test_cli_similar_to_prints_the_closest_first(trained_run, capsys):
    code, out, err = cli(capsys, "sample", trained_run.out_dir, "-n", "8", "--similar-to", "abe", "--scores")
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == 8 == len({row[0] for row in rows})
    keys = [(int(row[3]), float(row[1])) for row in rows]
    assert keys == sorted(keys)
    assert [int(row[3]) for row in rows] == edit_distances([row[0] for row in rows], "abe").tolist()


def test_cli_budget_partial_is_a_warning_and_none_is_an_error(trained_run, tmp_path, capsys):
    run_dir = trained_run.out_dir
    code, out, err = cli(capsys, "sample", run_dir, "-n", "1000", "--seed", "0", "--suffix", "a", "--max-tries", "300")
    items = out.splitlines()
    assert code == 0 and 0 < len(items) < 1000 and all(s.endswith("a") for s in items)
    assert re.fullmatch(  # (the line after it, if any, tells how many are training items)
        rf"makemore: warning: found {len(items)} of 1,000 items in 300 draws \(.*acceptance [\d.]+%\), all that "
        r"--max-tries allows; a larger --max-tries or --time-limit may find more",
        err.splitlines()[0],
    )
    out_file = tmp_path / "items.txt"
    code, out, err = cli(
        capsys, "sample", run_dir, "-n", "1000", "--seed", "0", "--suffix", "a", "--max-tries", "300", "-o", out_file
    )
    assert code == 0 and out == "" and out_file.read_text().splitlines() == items and "warning" in err

    code, out, err = cli(
        capsys, "sample", run_dir, "-n", "3", "--contains", "ééééé", "--max-tries", "200", "-o", tmp_path / "none.txt"
    )
    assert code == 2 and out == "" and not (tmp_path / "none.txt").exists()
    assert re.fullmatch(r"makemore: error: found none of 3 items in 200 draws .*--max-tries.*\n", err)


def test_cli_scores_without_the_training_file(trained_run, tmp_path, capsys):
    from reliability.bad_inputs import _edit_meta

    shutil.copytree(trained_run.out_dir, tmp_path / "run")
    _edit_meta(lambda meta: meta["data"].update(input=str(tmp_path / "gone.txt")))(tmp_path)
    code, out, err = cli(capsys, "sample", tmp_path / "run", "-n", "4", "--seed", "0", "--scores")
    assert code == 0
    assert [line.split("\t")[2] for line in out.splitlines()] == ["?"] * 4
    assert len(err.splitlines()) == 1 and err.startswith("makemore: warning: --scores: cannot tell")


def test_cli_help_says_what_happens_when_the_budget_runs_out(capsys):
    code, out, _ = cli(capsys, "sample", "--help")
    assert code == 0
    assert "exit code is 0 if at least one item was found, else 2" in " ".join(out.split())
    for flag in ("--suffix", "--contains", "--not-contains", "--exclude-chars", "--regex", "--max-tries",
                 "--time-limit", "--similar-to", "--pool", "--scores"):  # fmt: skip
        assert flag in out


def test_sample_api_attaches_the_items_found(trained_run):
    run = api.load_run(trained_run.out_dir)
    with pytest.raises(api.BudgetExhausted) as caught:
        api.sample(run, api.SampleConfig(num=500, suffix="d", max_tries=200))
    exc = caught.value
    assert 0 < len(exc.items) == exc.stats.found and all(s.endswith("d") for s in exc.items)
    assert json.dumps(exc.items)  # plain strings
    assert isinstance(exc, MakemoreError)
