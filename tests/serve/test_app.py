"""The API of makemore serve without HTTP: answers equal the library's, every bad parameter is a
400 naming its field, the limits hold."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from makemore import api
from makemore.serve import load_app, params
from makemore.serve.params import RequestError

PNG = b"\x89PNG\r\n\x1a\n"


def refused(call, body) -> RequestError:
    with pytest.raises(RequestError) as info:
        call(body)
    assert info.value.status == 400 and "\n" not in info.value.message
    return info.value


def test_runs_lists_each_run_of_the_command_line(app, trained_run):
    runs = app.runs()["runs"]
    assert [(r["id"], r["name"], r["model"], r["labels"]) for r in runs] == [
        (0, "run", "mlp", []),
        (1, "labelled", "ngram", ["hi", "lo"]),
    ]
    assert runs[0]["parameters"] == app.served[0].run.meta["model"]["parameters"] > 0
    assert runs[0]["dev_loss"] == pytest.approx(trained_run.metrics["dev_loss"])


def test_generate_with_a_suffix_gives_n_items_ending_with_it_as_sample_does(app):
    answer = app.generate({"n": 12, "seed": 5, "suffix": "a"})
    items = [r["item"] for r in answer["items"]]
    assert len(items) == 12 and all(item.endswith("a") for item in items)
    assert answer["seed"] == 5 and answer["warning"] is None
    assert answer["stats"]["asked"] == answer["stats"]["found"] == 12 and answer["stats"]["tried"] >= 12
    run = app.served[0].run
    expected = list(api.Sampler.of(run, api.SampleConfig(num=12, seed=5, suffix="a")).scored())
    assert items == [s.item for s in expected]
    assert [r["nll"] for r in answer["items"]] == pytest.approx([s.nll for s in expected])
    assert app.generate({"n": 12, "seed": 5, "suffix": "a"})["items"] == answer["items"]  # the seed reproduces it


def test_known_marks_are_membership_in_the_training_items(app):
    known = api.training_items(app.served[0].run)
    answer = app.generate({"n": 200, "seed": 1, "max_len": 3})
    marks = {r["item"]: r["known"] for r in answer["items"]}
    assert marks == {item: item in known for item in marks}
    assert True in marks.values() and False in marks.values()  # the check saw both kinds
    fresh = app.generate({"n": 50, "seed": 1, "new_only": True, "unique": True})["items"]
    assert len(fresh) == 50 and not any(r["known"] or r["item"] in known for r in fresh)


def test_without_a_seed_the_server_draws_one_and_says_which(app):
    answer = app.generate({"n": 3})
    again = app.generate({"n": 3, "seed": answer["seed"]})
    assert isinstance(answer["seed"], int) and again["items"] == answer["items"]


def test_similar_to_ranks_by_edit_distance(app):
    items = app.generate({"n": 5, "seed": 2, "similar_to": "abca"})["items"]
    distances = [r["distance"] for r in items]
    assert len(items) == 5 and distances == sorted(distances)
    assert distances == api.edit_distances([r["item"] for r in items], "abca").tolist()


def test_score_equals_api_score(app):
    answer = app.score({"text": "abca"})
    (expected,) = api.score(app.served[0].run, ["abca"])
    assert answer["word"] == "abca" and answer["nll"] == pytest.approx(expected.nll)
    assert [c["char"] for c in answer["chars"]] == ["a", "b", "c", "a", app.served[0].run.vocab.boundary_symbol]
    assert [c["prob"] for c in answer["chars"]] == pytest.approx([c.prob for c in expected.chars])
    assert [c["context"] for c in answer["chars"]] == ["".join(c.context) for c in expected.chars]
    assert answer["classes"] is None and answer["label"] is None


def test_a_space_is_shown_as_score_detail_shows_it(app):
    chars = app.score({"text": "a b"})["chars"]
    assert [c["char"] for c in chars][:3] == ["a", "␣", "b"] and chars[2]["context"].endswith("a␣")


def test_classes_of_a_labelled_run_equal_api_classify(app):
    run = app.served[1].run
    answer = app.score({"run": 1, "text": "abcd"})
    (expected,) = api.classify(run, ["abcd"])
    assert [(c["label"], c["p"]) for c in answer["classes"]] == [(k, pytest.approx(p)) for k, p in expected.posteriors]
    assert answer["classes"][0]["label"] == "lo" == answer["label"]
    assert answer["nll"] == pytest.approx(api.score(run, ["abcd"])[0].nll)
    as_hi = app.score({"run": 1, "text": "abcd", "label": "hi"})
    assert as_hi["label"] == "hi" and as_hi["nll"] == pytest.approx(api.score(run, ["abcd"], label="hi")[0].nll)
    assert as_hi["classes"] == answer["classes"]  # P(label | text) does not depend on the label scored


def share(items: list[dict], letters: str) -> float:
    """Fraction of the characters of ``items`` that are in ``letters``."""
    return sum(c in letters for r in items for c in r["item"]) / sum(len(r["item"]) for r in items)


def test_a_labelled_run_generates_each_label(app):
    lo = app.generate({"run": 1, "n": 30, "seed": 0, "label": ["lo"], "min_len": 2})["items"]
    hi = app.generate({"run": 1, "n": 30, "seed": 0, "label": "hi", "min_len": 2})["items"]
    assert share(lo, "abcdefgh") > 0.8 and share(hi, "nopqrstu") > 0.8  # chance: 0.5 (k=0.1 smoothing)
    assert len(app.generate({"run": 1, "n": 10, "label": ["lo=3", "hi=1"]})["items"]) == 10


BAD_GENERATE = [
    ("n", {"n": -1}),
    ("n", {"n": "3"}),
    ("n", {"n": 2.0}),
    ("n", {"n": params.MAX_N + 1}),
    ("seed", {"seed": -1}),
    ("seed", {"seed": 2**64}),
    ("temperature", {"temperature": -1}),
    ("temperature", {"temperature": "hot"}),
    ("top_k", {"top_k": -1}),
    ("top_p", {"top_p": 0}),
    ("top_p", {"top_p": 1.5}),
    ("prefix", {"prefix": 5}),
    ("prefix", {"prefix": "a" * (params.MAX_TEXT + 1)}),
    ("prefix", {"prefix": "z"}),
    ("suffix", {"suffix": "zz"}),
    ("suffix", {"suffix": "a", "exclude_chars": "a"}),
    ("contains", {"contains": "ab"}),
    ("contains", {"contains": [""]}),
    ("contains", {"contains": ["a"] * (params.MAX_LIST + 1)}),
    ("contains", {"contains": ["a" * (params.MAX_TEXT + 1)]}),
    ("not_contains", {"not_contains": [1]}),
    ("exclude_chars", {"exclude_chars": 3}),
    ("regex", {"regex": "("}),
    ("regex", {"regex": "(a+)+$"}),
    ("regex", {"regex": "(ab|ba)*c"}),
    ("regex", {"regex": r"(a)\1"}),
    ("regex", {"regex": "a*b*c*d*"}),
    ("min_len", {"min_len": 5, "max_len": 3}),
    ("min_len", {"min_len": -2}),
    ("max_len", {"max_len": 10_000}),
    ("label", {"label": ["lo"]}),
    ("label", {"label": [3]}),
    ("new_only", {"new_only": "yes"}),
    ("unique", {"unique": 1}),
    ("similar_to", {"similar_to": "a" * (params.MAX_TEXT + 1)}),
    ("pool", {"pool": 20}),
    ("pool", {"similar_to": "ab", "pool": params.MAX_POOL + 1}),
    ("run", {"run": 2}),
    ("run", {"run": -1}),
    ("run", {"run": True}),
    ("colour", {"colour": "blue"}),
    ("max_tries", {"max_tries": 10}),  # the server's budget is not the client's to set
]


@pytest.mark.parametrize(("field", "body"), BAD_GENERATE, ids=[f"{f}={b}"[:60] for f, b in BAD_GENERATE])
def test_a_bad_generate_parameter_is_a_400_naming_its_field(app, field, body):
    assert refused(app.generate, body).message.startswith(f"{field}: ")


BAD_SCORE = [
    ("text", {}),
    ("text", {"text": ""}),
    ("text", {"text": 5}),
    ("text", {"text": "xyz"}),
    ("text", {"text": "a\nb"}),
    ("text", {"text": "a" * 65}),
    ("label", {"text": "ab", "label": "lo"}),
    ("label", {"run": 1, "text": "ab", "label": "mid"}),
    ("label", {"run": 1, "text": "ab", "label": 1}),
    ("run", {"run": "one", "text": "ab"}),
    ("word", {"word": "ab"}),
]


@pytest.mark.parametrize(("field", "body"), BAD_SCORE, ids=[str(b)[:60] for _, b in BAD_SCORE])
def test_a_bad_score_parameter_is_a_400_naming_its_field(app, field, body):
    assert refused(app.score, body).message.startswith(f"{field}: ")


def test_a_budget_that_runs_out_returns_what_it_found_with_a_warning(app, monkeypatch):
    monkeypatch.setattr(params, "MAX_TRIES", 300)
    answer = app.generate({"n": 1000, "seed": 0, "suffix": "a"})
    found = len(answer["items"])
    assert 0 < found < 1000 and answer["stats"]["found"] == found and answer["stats"]["tried"] == 300
    assert answer["warning"].startswith(f"found {found} of 1000 items in 300 draws")
    assert all(r["item"].endswith("a") for r in answer["items"])
    nothing = refused(app.generate, {"n": 5, "seed": 0, "suffix": "e.-e.-"})
    assert nothing.message.startswith("found 0 of 5 items in 300 draws")


def test_info_describes_the_run_with_its_dev_and_test_nll(app):
    info = app.info({"run": "0"})
    run = app.served[0].run
    expected = api.evaluate(run, splits=("dev", "test"))
    assert info["nll"] == pytest.approx(expected)
    assert info["vocab"] == "".join(run.vocab.chars) and info["model"] == "mlp" and info["note"] is None
    assert info["data"]["split_sizes"] == run.meta["data"]["split_sizes"] and info["step"] == run.meta["state"]["step"]
    assert app.info({})["run"] == 0  # run 0 when none is named
    for query in ({"run": "9"}, {"run": "../x"}, {"run": "0", "path": "/etc/passwd"}):
        with pytest.raises(RequestError, match=r"^(run|path): ") as bad:
            app.info(query)
        assert bad.value.status == 400


def test_plots_are_pngs_drawn_once_and_a_missing_one_is_a_400(app):
    bigram = app.plot("bigram", {"run": "0"})
    assert bigram.startswith(PNG) and app.plot("bigram", {"run": "0"}) is bigram  # drawn once
    assert app.plot("loss", {"run": "0"}).startswith(PNG)
    assert app.plot("bigram", {"run": "1"}).startswith(PNG)
    with pytest.raises(RequestError, match="^loss: no loss curve: .*metrics.jsonl"):
        app.plot("loss", {"run": "1"})  # a count model records no metrics


def test_plots_are_rendered_in_memory_without_a_temporary_directory(trained_run, monkeypatch):
    def no_temp(*args, **kwargs):
        raise AssertionError("the server touched a temporary file or directory")

    for name in ("mkdtemp", "mkstemp", "TemporaryDirectory", "NamedTemporaryFile"):
        monkeypatch.setattr(tempfile, name, no_temp)
    app = load_app([trained_run.out_dir])  # a fresh app: nothing drawn yet
    try:
        for kind in ("bigram", "loss"):
            image = app.plot(kind, {"run": "0"})
            assert image.startswith(PNG) and len(image) > 5_000
    finally:
        app.close()


def test_a_run_whose_training_file_is_gone_is_served_without_marks(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("abc\nbca\ncab\nabca\nbcab\ncabc\naab\nbba\nccb\nacb\n")
    api.train(api.RunConfig(model="ngram", data=api.DataConfig(input=str(words))), tmp_path / "run", progress=False)
    shutil.copy(words, tmp_path / "kept.txt")
    words.unlink()
    app = load_app([tmp_path / "run"])
    try:
        items = app.generate({"n": 5, "seed": 0})["items"]
        assert len(items) == 5 and all(r["known"] is None for r in items)
        assert refused(app.generate, {"new_only": True}).message.startswith("new_only: ")
        info = app.info({})
        assert info["nll"] is None and "no such file" in info["note"]
        with pytest.raises(RequestError, match="^bigram: "):
            app.plot("bigram", {})
    finally:
        app.close()


def test_two_runs_with_one_directory_name_are_told_apart(tmp_path, trained_run):
    for parent in ("a", "b"):
        shutil.copytree(trained_run.out_dir, tmp_path / parent / "run")
    app = load_app([tmp_path / "a" / "run", tmp_path / "b" / "run"])
    try:
        assert [r["name"] for r in app.runs()["runs"]] == [str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run")]
    finally:
        app.close()


def test_info_of_a_count_model_says_what_it_counted_not_how_it_trained(app):
    mlp, ngram = app.info({"run": "0"}), app.info({"run": "1"})
    assert mlp["trains_by_gradient"] is True and mlp["counted"] is None
    assert mlp["train"]["batch_size"] > 0 and mlp["step"] > 0
    assert ngram["trains_by_gradient"] is False and ngram["train"] is None  # no steps, batch or lr to show
    assert ngram["model_config"]["order"] == 2 and ngram["model_config"]["k"] == 0.1
    model = app.served[1].run.model  # order 2: the context is the token before (the label at an item's start)
    train = app.served[1].train
    examples = sum(len(train.item_tokens(i)) for i in range(len(train)))  # each character and each item's end
    assert ngram["counted"] == {"examples": examples, "contexts": model.order2_context_ids.numel()}
    assert 0 < ngram["counted"]["contexts"] <= app.served[1].run.vocab.size


def test_counted_contexts_of_a_unigram_and_a_trigram(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("ab\nba\nab\naab\nbab\nabba\nbb\naaa\n")  # counted: the train split's windows
    for order in (1, 3):
        config = api.RunConfig(model="ngram", model_config=api.make_config("ngram", {"order": order}))
        config.data = api.DataConfig(input=str(words))
        api.train(config, tmp_path / f"run{order}", progress=False)
    app = load_app([tmp_path / "run1", tmp_path / "run3"])
    try:
        train = app.served[0].train
        windows = {tuple(w) for w in train.windows(2)[0].tolist()}
        assert app.info({"run": "0"})["counted"] == {"examples": train.tokens.numel() - 1, "contexts": 1}
        assert app.info({"run": "1"})["counted"] == {"examples": train.tokens.numel() - 1, "contexts": len(windows)}
        assert app.served[1].run.model.order3_context_ids.numel() == len(windows)
    finally:
        app.close()
