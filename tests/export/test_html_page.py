"""The one-file HTML export (``makemore.export.html``) in real headless Chromium, opened from ``file://``
with every network request failing: all traffic goes to a proxy that is not there (loopback included),
and Chromium's own log of requests must show none but the page's file.

The page's test hook (``window.makemore``: nextLogProbs, generate, score) is checked against PyTorch for
a tiny run of every family of the registry (slow), the form against the shared small MLP (default suite).
Skipped when Chromium, chromedriver or Selenium is missing, unless ``MAKEMORE_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import math
import os
import random
import re
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import labelled_pairs, load_browser_script, make_tiny_words, write_words
from makemore import api
from makemore.config import PRESETS
from makemore.export.html import html_bytes
from makemore.models import REGISTRY

SHRINK = {"n_embd": 8, "n_hidden": 16, "n_layers": 2, "n_layer": 2, "n_head": 2}  # for the fields a family has
TOLERANCE = 1e-4
URL_LIKE = re.compile(
    rb"https?://|(?:src|href)\s*=\s*[\"']?//|@import|fetch\(|(?<![\w.])url\(\s*[\"']?(?!data:)", re.IGNORECASE
)
LOW, HIGH = "abcdefgh", "nopqrstu"

shot = load_browser_script()
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", autouse=True)
def browser_installed():
    missing = shot.missing_browser()
    if missing:
        reason = f"browser tests need {', '.join(missing)} (make browser installs chromium and chromium-driver)"
        if os.environ.get("MAKEMORE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}; MAKEMORE_REQUIRE_BROWSER=1 does not allow skipping them", pytrace=False)
        pytest.skip(reason)


@contextmanager
def offline_chromium(work_dir: Path):
    """Headless Chromium whose every request goes to a proxy that refuses it (port 9, loopback too), and
    which logs the requests it makes (``requests_made``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={work_dir / 'profile'}",
        "--proxy-server=127.0.0.1:9",  # nothing listens there: every request fails
        "--proxy-bypass-list=<-loopback>",  # loopback too (Chromium bypasses it by default)
        "--allow-file-access-from-files",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    env = {**os.environ, "HOME": str(work_dir), "TMPDIR": str(work_dir), "XDG_CONFIG_HOME": str(work_dir / "config")}
    service = Service(executable_path=shutil.which("chromedriver"), log_output=str(work_dir / "driver.log"), env=env)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    with offline_chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


def requests_made(driver) -> list[str]:
    """The requests since the last call (Chromium's performance log) that left the machine or came from a
    page on disk: any http(s), ws(s) or ftp URL, and what a ``file://`` page asked for that is not a file,
    ``data:`` or ``blob:`` URL (the browser's own new-tab page loads ``chrome://`` resources: not ours)."""
    made = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url, document = message["params"]["request"]["url"], message["params"].get("documentURL", "")
            local = url.startswith(("file:", "data:", "blob:"))
            if url.split(":")[0] in ("http", "https", "ws", "wss", "ftp") or (
                document.startswith("file:") and not local
            ):
                made.append(url)
    return made


def open_page(driver, path: Path) -> None:
    """Load the exported page from disk and wait for the list it makes on opening."""
    requests_made(driver)  # (drop what came before)
    driver.get(path.as_uri())
    shot.wait_until(driver, lambda d: shot.select_all(d, "#results li.result") or shot.error_text(d), "the first list")
    assert shot.error_text(driver) == ""
    assert requests_made(driver) == []


def export(run, tmp_path: Path, weights: str = "float32") -> Path:
    data = html_bytes(run, weights)
    assert URL_LIKE.search(data) is None, URL_LIKE.search(data)
    path = tmp_path / f"{run.path.parent.name}-{weights}.html"
    path.write_bytes(data)
    return path


# whether the page may compile WebAssembly (the runtime's fast matrix products): the smallest valid module
WASM_ALLOWED = """
try { new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])); return true; }
catch (err) { return String(err); }
"""


def hook(driver, expression: str, *args):
    """``window.makemore.<expression>`` evaluated in the page (its arguments: ``args[0]``, ...)."""
    return driver.execute_script(f"const a = arguments; return window.makemore.{expression};", *args)


# --- the default suite: the form, the score box, the offline browser ----------------------------------------


def test_generating_20_items_ending_in_a_from_file_with_the_network_off(driver, trained_run, tmp_path):
    run = api.load_run(trained_run.out_dir)
    page = export(run, tmp_path)
    open_page(driver, page)
    assert len(shot.select_all(driver, "#results li.result")) == 20  # the page opens with 20 items
    assert driver.execute_script(WASM_ALLOWED) is True  # the page's Content-Security-Policy lets the runtime use it
    shot.fill(driver, "n", 20)
    shot.fill(driver, "suffix", "a")
    rows = shot.generate(driver, 20)
    items = [row.find_element("css selector", "span.item").get_attribute("textContent") for row in rows]
    assert len(items) == 20 and all(item.endswith("a") for item in items), items
    assert not set(items) & set(trained_run.words)  # "new only" is on by default
    seed = shot.by_id(driver, "shown-seed").text
    shot.by_id(driver, "reuse-seed").click()
    assert [
        r.find_element("css selector", "span.item").get_attribute("textContent") for r in shot.generate(driver, 20)
    ] == items
    assert shot.by_id(driver, "seed").get_attribute("value") == seed
    shot.fill(driver, "score-input", "abba")
    shot.by_id(driver, "score-button").click()
    (expected,) = api.score(run, ["abba"])
    shot.wait_until(driver, lambda d: shot.by_id(d, "score-nll").text, "a score")
    assert float(shot.by_id(driver, "score-nll").text) == pytest.approx(expected.nll, abs=1e-4)
    assert hook(driver, "score('abba')") == pytest.approx(expected.nll, abs=1e-5)
    shot.fill(driver, "n", 5000)  # the server's limit holds on the page too
    by_hand = shot.generate(driver, 1)
    assert by_hand == [] and shot.error_text(driver) == "n: at most 1000 on this page, got 5000"
    assert requests_made(driver) == []


def test_the_browser_really_is_offline(driver):
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"reachable")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        from selenium.common.exceptions import WebDriverException

        with pytest.raises(WebDriverException, match="ERR_PROXY_CONNECTION_FAILED"):
            driver.get(f"http://127.0.0.1:{server.server_port}/")  # even loopback is cut off
        assert seen == []
    finally:
        server.shutdown()
        server.server_close()


# --- every family (slow): PyTorch's log-probabilities, the constraints, labels --------------------------------


class Runs:
    """Tiny runs trained once per module (20 steps on 2,000 items), exported to HTML once each."""

    def __init__(self, base: Path):
        self.base, self.cache = base, {}
        self.words_list = make_tiny_words(2000)
        self.words = write_words(base / "words.txt", self.words_list)
        self.labelled = base / "labelled.tsv"
        self.labelled.write_text("".join(f"{label}\t{item}\n" for label, item in labelled_pairs(600, 0, LOW, HIGH)))

    def run(self, family: str, labelled: bool = False, overrides: dict | None = None):
        key = (family, labelled, json.dumps(overrides))
        if key not in self.cache:
            fields = {f.name for f in dataclasses.fields(REGISTRY[family].config)}
            options = {k: v for k, v in SHRINK.items() if k in fields} | (overrides or {})
            out = self.base / f"{family}-{'labelled' if labelled else 'plain'}-{len(self.cache)}"
            data = api.DataConfig(input=str(self.labelled if labelled else self.words), labelled=labelled)
            train = api.default_train_config(family, dict(steps=20, batch_size=32, eval_interval=20, log_interval=10))
            config = api.RunConfig(model=family, model_config=api.make_config(family, options), data=data, train=train)
            api.train(config, out, progress=False)
            self.cache[key] = api.load_run(out)
        return self.cache[key]

    def page(self, run) -> Path:
        key = ("page", str(run.path))
        if key not in self.cache:
            self.cache[key] = export(run, self.base)
        return self.cache[key]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("html_runs"))


def dev_prefixes(run, n: int, seed: int = 0) -> list[str]:
    """``n`` prefixes of dev items (each item cut at a random place, the empty prefix included)."""
    corpus = api.training_data(run).corpus("dev")
    rng = random.Random(seed)
    words = corpus.decode(run.vocab)[:n]
    words = (words * (n // len(words) + 1))[:n]
    return [w[: rng.randint(0, len(w))] for w in words]


@torch.no_grad()
def torch_next_log_probs(run, prefixes: list[str], label: str | None = None) -> list[list[float]]:
    """PyTorch's log-probabilities of the token after each prefix (read after the label's token)."""
    model, vocab = run.model, run.vocab
    model.eval()
    start = 0 if label is None else vocab.label_id(label)
    out = {}
    for length in sorted({len(p) for p in prefixes}):
        group = [p for p in prefixes if len(p) == length]
        ids = torch.stack([torch.cat([torch.tensor([start]), vocab.encode(p).long()]) for p in group])  # (B, 1 + t)
        logp = F.log_softmax(model.next_token_logits(ids, None)[0].float(), dim=-1)  # (B, V)
        out.update(zip(group, logp.tolist()))
    return [out[p] for p in prefixes]


def assert_parity(driver, run, prefixes: list[str], label: str | None = None) -> None:
    got = hook(driver, "nextLogProbs(a[0], a[1]).map((row) => Array.from(row))", prefixes, label)
    expected = torch_next_log_probs(run, prefixes, label)
    assert len(got) == len(prefixes)
    worst = 0.0
    for row, want in zip(got, expected):
        assert len(row) == len(want) == run.vocab.size
        for x, y in zip(row, want):
            x = -math.inf if x is None else x  # JSON has no -Infinity: it comes back as null
            if math.isinf(y) or math.isinf(x):
                assert x == y
            else:
                worst = max(worst, abs(x - y))
    assert worst <= TOLERANCE, worst


CONSTRAINTS = dict(suffix="e", contains=["a"], not_contains=["bb"], exclude_chars="d", min_len=3, max_len=8)


@pytest.mark.slow
@pytest.mark.parametrize("family", list(REGISTRY))
def test_every_family_matches_pytorch_and_keeps_every_constraint(family, runs, driver):
    run = runs.run(family)
    open_page(driver, runs.page(run))
    assert_parity(driver, run, dev_prefixes(run, 200))
    result = hook(driver, "generate(a[0])", {"n": 50, "seed": 3, "new_only": True, "unique": True, **CONSTRAINTS})
    items = [r["item"] for r in result["items"]]
    assert len(items) == 50 and len(set(items)) == 50 and result["warning"] is None
    for item in items:
        assert item.endswith("e") and "a" in item and "bb" not in item and "d" not in item and 3 <= len(item) <= 8
    assert not set(items) & set(runs.words_list)
    scores = [s.nll for s in api.score(run, items)]
    assert [r["nll"] for r in result["items"]] == pytest.approx(scores, abs=TOLERANCE)
    assert hook(driver, "generate(a[0]).items.map((r) => r.item)", {"n": 30, "seed": 9}) == hook(
        driver, "generate(a[0]).items.map((r) => r.item)", {"n": 30, "seed": 9}
    )


@pytest.mark.slow
@pytest.mark.parametrize("family", ["lstm", "transformer", "mlp"])
def test_labelled_models_read_the_label_token_as_pytorch(family, runs, driver):
    run = runs.run(family, labelled=True)
    open_page(driver, runs.page(run))
    prefixes = dev_prefixes(run, 100)
    for label in run.vocab.label_names:
        assert_parity(driver, run, prefixes, label)


@pytest.mark.slow
def test_a_labelled_model_generates_per_label(runs, driver):
    # an unsmoothed bigram count model: "lo" items are made of a-h only, "hi" items of n-u only
    run = runs.run("ngram", labelled=True, overrides={"order": 2, "k": 0.0})
    open_page(driver, runs.page(run))
    for spec, letters in (("lo", LOW), ("hi", HIGH)):
        result = hook(driver, "generate(a[0])", {"n": 50, "seed": 1, "label": [spec]})
        assert {r["label"] for r in result["items"]} == {spec}
        assert all(set(r["item"]) <= set(letters) for r in result["items"])
    mixed = hook(driver, "generate(a[0])", {"n": 400, "seed": 2, "label": ["lo=3", "hi=1"]})["items"]
    share = sum(r["label"] == "lo" for r in mixed) / len(mixed)
    assert abs(share - 0.75) < 0.09  # 4 standard deviations
    assert all(set(r["item"]) <= set(LOW if r["label"] == "lo" else HIGH) for r in mixed)
    shot.fill(driver, "n", 30)
    from selenium.webdriver.support.ui import Select

    Select(shot.by_id(driver, "label")).select_by_value("hi")
    rows = shot.generate(driver, 30)
    assert all(set(r.find_element("css selector", "span.item").get_attribute("textContent")) <= set(HIGH) for r in rows)


# --- the default preset's size (slow): file size, time to the first list, names per second -------------------


@pytest.mark.slow
def test_the_default_preset_page_size_and_speed(driver, tmp_path_factory, capsys):
    """An LSTM of the default preset's size (2 x 256, embedding 64) trained 150 steps on the built-in names
    (enough for names of about 7 characters, so the speed is that of names), exported with float16 weights:
    the file is at most 3 MB; the times are printed, not asserted (budgets: the first 20 names within 250 ms
    of loading, 200 names/s sustained; benchmarks measure them)."""
    base = tmp_path_factory.mktemp("preset")
    config = PRESETS["default"].run_config()
    config.train = dataclasses.replace(config.train, steps=150, eval_interval=150, log_interval=50, warmup_steps=20)
    api.train(config, base / "default", progress=False)
    run = api.load_run(base / "default")
    page = base / "names.html"
    page.write_bytes(html_bytes(run, "float16"))
    size = page.stat().st_size
    assert size <= 3_000_000, size
    open_page(driver, page)
    timings = hook(driver, "timings")
    parsed = driver.execute_script("return performance.getEntriesByType('navigation')[0].domInteractive")
    rates, lengths = [], []
    for seed in (1, 2, 3):
        result = hook(driver, "generate({n: 500, seed: a[0]})", seed)
        assert len(result["items"]) == 500 and result["warning"] is None
        rates.append(500 / result["stats"]["seconds"])
        lengths.append(sum(len(r["item"]) for r in result["items"]) / 500)
    with capsys.disabled():
        engine = hook(driver, "model.engine")
        print(
            f"\ndefault-preset LSTM, float16 ({engine}): {size / 1e6:.2f} MB; HTML parsed {parsed:.0f} ms after navigation; "
            f"bundle read + model built {timings['load_ms']:.0f} ms; first 20 names {timings['first_ms']:.0f} ms, "
            f"shown {timings['shown_at_ms']:.0f} ms after navigation; names/s {', '.join(f'{r:.0f}' for r in rates)} "
            f"(mean length {sum(lengths) / 3:.1f})"
        )
