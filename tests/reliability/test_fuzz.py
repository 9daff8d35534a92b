"""Fuzzing: readers and parsers on random input raise one-line makemore errors, never anything else."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import make_tiny_words, write_words
from makemore import api
from makemore.cli import main
from makemore.data.corpus import EncodedCorpus, Vocab, parse_words
from makemore.errors import MakemoreError
from makemore.store.checkpoint import load_checkpoint, read_meta, save_checkpoint
from makemore.store.description import config_from_meta

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(st.binary(max_size=2048))
def test_the_checkpoint_reader_on_random_bytes(tmp_path, data):
    path = tmp_path / "c.safetensors"
    path.write_bytes(data)
    for reader in (read_meta, load_checkpoint):
        with pytest.raises(MakemoreError) as info:
            reader(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


@FAST
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=20))
def test_vocabulary_and_encoding_of_any_strings(words):
    """Any strings (lone surrogates, NUL, combining marks): the corpus round-trips or a line break is refused."""
    words = [w for w in words if "\n" not in w]
    if not words:
        return
    vocab = Vocab.from_words(words)
    corpus = EncodedCorpus.from_words(words, vocab)
    decoded = [
        vocab.decode(corpus.tokens[s + 1 : s + 1 + n]) for s, n in zip(corpus.starts.tolist(), corpus.lengths.tolist())
    ]
    assert decoded == words
    unseen = next(c for c in "\u2603\u2604\u2605" if c not in vocab.chars)
    with pytest.raises(MakemoreError, match="not in the model's vocabulary"):
        EncodedCorpus.from_words([*words, words[0] + unseen], vocab)


@FAST
@given(st.binary(max_size=512))
def test_the_words_parser_on_random_bytes(raw):
    try:
        words = parse_words(raw, source="f.txt")
    except MakemoreError as exc:
        assert str(exc).startswith("f.txt") and "\n" not in str(exc)
    else:
        assert words and all(w and w == w.rstrip() and "\n" not in w for w in words)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def good_meta(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    words = write_words(base / "words.txt", make_tiny_words())
    config = api.RunConfig(
        model="mlp",
        model_config=api.make_config("mlp", {"n_embd": 4, "n_hidden": 8}),
        data=api.DataConfig(input=str(words)),
        train=api.TrainConfig(steps=2, eval_interval=2),
    )
    api.train(config, base / "run", progress=False)
    return read_meta(base / "run" / "best.safetensors")


@FAST
@given(st.data())
def test_the_header_checks_on_random_json(good_meta, data):
    """One field of a real header replaced by random JSON: a config or a one-line makemore error."""
    meta = json.loads(json.dumps(good_meta))
    section = data.draw(st.sampled_from(["model", "vocab", "data", "train", "state", "metrics"]))
    keys = list(meta[section]) or ["x"]
    key = data.draw(st.sampled_from(keys))
    meta[section][key] = data.draw(JSON)
    try:
        config = config_from_meta(meta)
    except MakemoreError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(config, api.RunConfig)


@FAST
@given(st.data())
def test_whole_random_headers_never_crash_load_run(tmp_path_factory, data):
    run = tmp_path_factory.mktemp("header")
    meta = data.draw(
        st.dictionaries(st.sampled_from(["model", "vocab", "data", "train", "state", "metrics", "x"]), JSON)
    )
    save_checkpoint(run / "best.safetensors", model_state={"w": __import__("torch").zeros(2)}, meta=meta)
    with pytest.raises(MakemoreError):
        api.load_run(run)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz_cli")
    words = write_words(base / "words.txt", make_tiny_words())
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "-i", str(words), "-o", str(base / "run"), "--model", "ngram", "-q"]) == 0
    return base / "run"


@FAST
@given(
    flag=st.sampled_from(
        ["-n", "--seed", "--temperature", "--top-k", "--top-p", "--min-len", "--max-len", "--batch-size"]
    ),
    value=st.text(max_size=12),
)
def test_numeric_sample_flags_on_random_strings(run_dir, flag, value):
    with contextlib.suppress(ValueError):  # keep the work small: not a million items
        assume(not (flag in ("-n", "--batch-size") and int(value) > 1000))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["sample", str(run_dir), "-n", "2", "--max-len", "8", flag, value])
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
    assert code in (0, 2), (flag, value, err.getvalue())
    if code == 2:
        assert len(err.getvalue().splitlines()) == 1 and "Traceback" not in err.getvalue()
