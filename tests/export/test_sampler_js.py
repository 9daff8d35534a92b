"""The JavaScript sampler (``export/web/sampler.js``) in Node, on the fake model of ``js/sampler_fake.mjs``.

The fake keeps runtime.js's contract over a fixed table of log P(next | two tokens before), so every
score is checked against the exact mean NLL computed here from the same float32 table, and every
constraint against every generated item. Skipped without Node (``node`` on the PATH).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")
DRIVER = Path(__file__).parent / "js" / "sampler_fake.mjs"
CHARS = ["a", "b", "c", "d", "e", " ", "é", "𝔞"]
NO_START = {"hi": "ab ", "lo": "de é𝔞"}  # the characters items of a label never start with (the fake's table)
KNOWN = ["a", "b", "c", "ab", "ba", "ca", "ae", "ea", "aa", "bc", "e", "d"]

pytestmark = pytest.mark.skipif(NODE is None, reason="the JavaScript sampler is tested in Node (no node on PATH)")


def run_js(requests: list[dict], **model) -> list:
    """Each request's answer from the driver: its result, or ``Error(message)`` for a thrown error."""
    body = json.dumps({"model": {"known": KNOWN, **model}, "requests": requests})
    done = subprocess.run([NODE, str(DRIVER)], input=body, capture_output=True, text=True, timeout=120, check=True)
    return [r["ok"] if "ok" in r else RuntimeError(r["error"]) for r in json.loads(done.stdout)]


def generate(options: dict, **model) -> dict:
    (result,) = run_js([{"op": "generate", "options": options}], **model)
    if isinstance(result, Exception):
        raise result
    return result


class Table:
    """The fake model's float32 log-probabilities, read back from the driver."""

    def __init__(self, **model):
        (data,) = run_js([{"op": "table"}], **model)
        self.vocab, self.num_chars = data["vocab"], data["numChars"]
        self.V = len(self.vocab)
        self.lp = [-math.inf if x is None else x for x in data["table"]]  # JSON null: -Infinity
        self.ids = {c: i for i, c in enumerate(self.vocab[: self.num_chars]) if i}

    def log_likelihood(self, item: str, start: int = 0) -> float:
        """log P(item, end | start) summed in order, in float64 (as the sampler does)."""
        p2 = p1 = start
        total = 0.0
        for t in [self.ids[c] for c in item] + [0]:
            total += self.lp[(p2 * self.V + p1) * self.V + t]
            p2, p1 = p1, t
        return total

    def label_start(self, label: str) -> int:
        return self.vocab.index(f"<{label}>")

    def mixture_nll(self, item: str, weights: dict[str, float]) -> float:
        total = sum(weights.values())
        joint = [self.log_likelihood(item, self.label_start(k)) + math.log(w / total) for k, w in weights.items()]
        top = max(joint)
        return -(top + math.log(sum(math.exp(j - top) for j in joint))) / (len(item) + 1)


@pytest.fixture(scope="module")
def table():
    return Table()


@pytest.fixture(scope="module")
def labelled_table():
    return Table(labelled=True)


def items_of(result: dict) -> list[str]:
    return [r["item"] for r in result["items"]]


CONSTRAINED = [
    {"prefix": "a", "suffix": "e", "min_len": 3, "max_len": 6},
    {"contains": ["b", "ca"], "not_contains": ["e", "dd"], "exclude_chars": "é𝔞"},
    {"suffix": "a", "exclude_chars": "b ", "min_len": 4, "max_len": 7, "new_only": True, "unique": True},
    {"prefix": "𝔞", "max_len": 2, "unique": True, "n": 8},  # code points, not UTF-16 units
    {"regex": "^[abc]+$", "temperature": 1.5, "top_k": 4, "new_only": True},
    {"not_contains": ["a", "b", "c", "d"], "top_p": 0.8, "min_len": 2},
]


@pytest.fixture(scope="module")
def constrained():
    """The answers to ``CONSTRAINED``, from one Node process."""
    return run_js([{"op": "generate", "options": {"n": 30, "seed": 5, **options}} for options in CONSTRAINED])


@pytest.mark.parametrize("case", range(len(CONSTRAINED)))
def test_every_constraint_holds_for_every_item_and_scores_are_exact(case, constrained, table):
    options, result = CONSTRAINED[case], constrained[case]
    n = options.get("n", 30)
    items = items_of(result)
    assert len(items) == n and result["warning"] is None
    assert result["stats"]["found"] == n and result["stats"]["tried"] >= n
    lo, hi = options.get("min_len", 1), options.get("max_len", 16)  # 16: the least default (2 x longest 6 is less)
    for r in result["items"]:
        item = r["item"]
        assert set(item) <= set(CHARS) and lo <= len(item) <= hi, item
        assert item.startswith(options.get("prefix", "")) and item.endswith(options.get("suffix", ""))
        assert all(s in item for s in options.get("contains", []))
        assert not any(s in item for s in options.get("not_contains", []))
        assert not set(item) & set(options.get("exclude_chars", ""))
        if "regex" in options:
            assert re.search(options["regex"], item)
        assert r["known"] == (item in KNOWN) and r["label"] is None and r["distance"] is None
        assert r["nll"] == pytest.approx(-table.log_likelihood(item) / (len(item) + 1), rel=1e-12, abs=1e-12)
    if options.get("new_only"):
        assert not set(items) & set(KNOWN)
    if options.get("unique"):
        assert len(set(items)) == len(items)


def test_known_items_are_marked_and_new_only_drops_them():
    plain, new = run_js(
        [
            {"op": "generate", "options": {"n": 300, "seed": 2}},
            {"op": "generate", "options": {"n": 300, "seed": 2, "new_only": True}},
        ]
    )
    marked = [r["item"] for r in plain["items"] if r["known"]]
    assert len(marked) > 20 and set(marked) <= set(KNOWN)  # the fake makes short training items often
    assert all(not r["known"] and r["item"] not in KNOWN for r in new["items"]) and len(new["items"]) == 300
    assert all(r["known"] is None for r in generate({"n": 5, "seed": 1}, known=None)["items"])


def test_same_seed_same_items_and_other_seeds_differ():
    big = str(2**64 - 1)  # beyond 2**53: given as digits
    a, b, c, d, e, f, g = run_js(
        [
            {"op": "generate", "options": {"n": 40, "seed": 7, "suffix": "a"}},
            {"op": "generate", "options": {"n": 40, "seed": 7, "suffix": "a"}},
            {"op": "generate", "options": {"n": 40, "seed": 8, "suffix": "a"}},
            {"op": "generate", "options": {"n": 40, "seed": big}},
            {"op": "generate", "options": {"n": 40, "seed": big}},
            {"op": "generate", "options": {"n": 40}},  # no seed: a random one each time
            {"op": "generate", "options": {"n": 40, "seed": None}},
        ]
    )
    assert items_of(a) == items_of(b) and a["seed"] == 7
    assert items_of(a) != items_of(c)
    assert items_of(d) == items_of(e) and d["seed"] == big
    assert f["seed"] != g["seed"] and items_of(f) != items_of(g)


def test_greedy_and_narrow_filters_make_the_most_likely_item(table):
    # temperature 0, top-k 1 and a tiny top-p all take the most likely allowed token each step
    item, p2, p1 = "", 0, 0
    while True:
        row = table.lp[(p2 * table.V + p1) * table.V : (p2 * table.V + p1 + 1) * table.V][: table.num_chars]
        allowed = [(lp, t) for t, lp in enumerate(row) if t or item]  # no end before the first character
        t = max(allowed)[1]
        if t == 0 or len(item) == 16:
            break
        item, p2, p1 = item + table.vocab[t], p1, t
    narrow = ({"temperature": 0}, {"top_k": 1}, {"top_p": 1e-9})
    for options, result in zip(
        narrow, run_js([{"op": "generate", "options": {"n": 5, "seed": 3, **o}} for o in narrow])
    ):
        assert set(items_of(result)) == {item}, options


def test_labels_are_drawn_per_weights_and_scored_under_their_mixture(labelled_table):
    table = labelled_table
    weighted, default, single = run_js(
        [
            {"op": "generate", "options": {"n": 2000, "seed": 1, "label": ["lo=3", "hi=1"]}},
            {"op": "generate", "options": {"n": 2000, "seed": 2}},  # the training prior: lo 3, hi 1
            {"op": "generate", "options": {"n": 50, "seed": 3, "label": "hi"}},
        ],
        labelled=True,
    )
    for result in (weighted, default):
        labels = [r["label"] for r in result["items"]]
        assert abs(labels.count("lo") / len(labels) - 0.75) < 0.04  # 4 standard deviations
        for r in result["items"]:
            assert r["item"][0] not in NO_START[r["label"]]
            expected = table.mixture_nll(r["item"], {"lo": 3, "hi": 1})
            assert r["nll"] == pytest.approx(expected, rel=1e-12), r
    assert {r["label"] for r in single["items"]} == {"hi"}
    for r in single["items"]:
        assert r["nll"] == pytest.approx(
            -table.log_likelihood(r["item"], table.label_start("hi")) / (len(r["item"]) + 1)
        )


def test_score_is_the_exact_mean_nll(table, labelled_table):
    items = ["abc", "é", "𝔞a d", "eeeee"]
    got = run_js([{"op": "score", "item": item} for item in items])
    assert got == [-table.log_likelihood(item) / (len(item) + 1) for item in items]
    assert run_js([{"op": "score", "item": "ABC"}], casefold=True) == got[:1]  # read in lower case
    labelled = labelled_table
    lo, hi, auto_c, auto_a, auto_e = run_js(
        [
            {"op": "score", "item": "cab", "label": "lo"},
            {"op": "score", "item": "cab", "label": "hi"},
            {"op": "score", "item": "cab"},
            {"op": "score", "item": "ab"},
            {"op": "score", "item": "ed"},
        ],
        labelled=True,
    )
    nll = {k: -labelled.log_likelihood("cab", labelled.label_start(k)) / 4 for k in ("lo", "hi")}
    assert (lo, hi) == (nll["lo"], nll["hi"])
    joint = {k: -4 * v + math.log(p) for (k, v), p in zip(nll.items(), (0.75, 0.25))}
    assert auto_c == nll[max(joint, key=joint.get)]  # the most probable label under the prior
    assert auto_a == -labelled.log_likelihood("ab", labelled.label_start("lo")) / 3  # hi never starts with a
    assert auto_e == -labelled.log_likelihood("ed", labelled.label_start("hi")) / 3


def test_casefolded_models_read_typed_text_in_lower_case():
    result = generate({"n": 20, "seed": 4, "prefix": "A", "exclude_chars": "B", "suffix": "E"}, casefold=True)
    assert all(s.startswith("a") and s.endswith("e") and "b" not in s for s in items_of(result))


def test_similar_to_ranks_by_edit_distance():
    result = generate({"n": 10, "seed": 6, "similar_to": "abca"})
    rows = result["items"]
    assert len(rows) == 10 and "abca" not in items_of(result) and len(set(items_of(result))) == 10
    assert [r["distance"] for r in rows] == sorted(r["distance"] for r in rows)
    for r in rows:
        assert r["distance"] == osa("abca", r["item"])


def osa(a: str, b: str) -> int:
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_a_budget_that_runs_dry_warns_with_the_items_found():
    result = generate({"n": 20, "seed": 1, "max_len": 1, "unique": True})  # only 8 items of one character
    assert sorted(items_of(result)) == sorted(CHARS) and result["warning"].startswith("gave up after")
    assert "unique:" in result["warning"]


IMPOSSIBLE = [
    ({"prefix": "X"}, "prefix: character 'X' (U+0058) in 'X' is not in the model's vocabulary"),
    ({"prefix": "ab", "exclude_chars": "b"}, "prefix: 'ab' has 'b', one of exclude_chars"),
    ({"contains": ["dd"], "not_contains": ["d"]}, "contains: 'dd' contains 'd', which not_contains forbids"),
    (
        {"prefix": "abc", "suffix": "cde", "max_len": 4},
        "suffix: an item with prefix 'abc' and suffix 'cde' has at least 5",
    ),
    ({"suffix": "abcde", "max_len": 4}, "suffix: is 5 characters long, more than max_len 4"),
    ({"min_len": 5, "max_len": 4}, "min_len: 5 is more than max_len 4"),
    ({"min_len": 17}, "min_len: 17 is more than the longest item this model makes (16; see max_len)"),
    ({"exclude_chars": "abcde é𝔞"}, "exclude_chars: excludes every character, so no item can be made"),
    ({"not_contains": list("abcde é𝔞")}, "not_contains: excludes every character"),
    ({"label": ["lo"]}, "label: this model was trained without labels"),
    ({"n": -1}, "n: must be an integer at least 0, got -1"),
    ({"n": "3"}, "n: must be an integer at least 0, got '3'"),
    ({"n": 2_000_000}, "n: at most 1,000,000 items at a time"),
    ({"seed": -1}, "seed: must be an integer from 0 to 2**64 - 1, got -1"),
    ({"temperature": -1}, "temperature: must be a finite number >= 0, got -1"),
    ({"top_p": 0}, "top_p: must be a finite number > 0 and <= 1, got 0"),
    ({"top_k": 1.5}, "top_k: must be an integer at least 0 (0 = all), got 1.5"),
    ({"contains": "ab"}, "contains: must be a list of strings, got 'ab'"),
    ({"contains": [""]}, "contains: must be non-empty strings"),
    ({"suffix": "a\nb"}, "suffix: items never contain a line break"),
    ({"new_only": "yes"}, "new_only: must be true or false, got 'yes'"),
    ({"regex": "(ab"}, "regex: not a valid regular expression"),
    ({"pool": 50}, "pool: is the pool similar_to picks from; give similar_to too"),
    ({"nn": 3}, "nn: unknown field (fields: n, seed,"),
    ({"suffix": "ed", "contains": ["aaaa", "bbbb"], "max_len": 9}, "found none of 20 items in"),  # no draw meets them
]


@pytest.fixture(scope="module")
def refusals():
    """The answers to ``IMPOSSIBLE``, from one Node process."""
    return run_js([{"op": "generate", "options": options} for options, _ in IMPOSSIBLE])


@pytest.mark.parametrize("case", range(len(IMPOSSIBLE)), ids=[m.split(":")[0] for _, m in IMPOSSIBLE])
def test_impossible_requests_throw_one_line_naming_the_field(case, refusals):
    message, error = IMPOSSIBLE[case][1], refusals[case]
    assert isinstance(error, Exception), error
    assert str(error).startswith(message) and "\n" not in str(error)


def test_model_specific_refusals():
    limited, no_hashes, bad_score, unknown_label = run_js(
        [
            {"op": "generate", "options": {"max_len": 9}},
            {"op": "generate", "options": {"new_only": True}},
            {"op": "score", "item": "abcdeabcd"},
            {"op": "generate", "options": {"label": ["mid=2"]}},
        ],
        maxLength=8,
        known=None,
    )
    assert str(limited) == "max_len: 9 is more than this model can generate (8)"
    assert str(no_hashes).startswith("new_only: needs the training items' hashes")
    assert str(bad_score) == "text: 'abcdeabcd' is longer than this model can read (8 characters)"
    assert str(unknown_label) == "label: this model was trained without labels"
    unknown, empty, all_known = run_js(
        [
            {"op": "generate", "options": {"label": ["mid=2"]}},
            {"op": "score", "item": ""},
            {"op": "generate", "options": {"new_only": True, "max_len": 1, "exclude_chars": " é𝔞", "label": "lo"}},
        ],
        labelled=True,
    )
    assert str(unknown) == "label: unknown label 'mid' (labels: hi, lo)"
    assert str(empty) == "text: must be a non-empty string, got ''"
    # every item of one character it can make is a training item: nothing new, after 20 batches
    assert str(all_known).startswith("gave up after") and "new_only: the items the model makes" in str(all_known)


def test_the_drivers_hash_is_fnv1a_64_of_utf8():
    def fnv(text: str) -> int:
        h = 0xCBF29CE484222325
        for byte in text.encode("utf-8"):
            h = ((h ^ byte) * 0x100000001B3) % 2**64
        return h

    texts = ["", "a", "é𝔞 b"]
    assert run_js([{"op": "hash", "text": t} for t in texts]) == [str(fnv(t)) for t in texts]
