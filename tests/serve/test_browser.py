"""``makemore serve`` in a real browser: headless Chromium (Debian's ``chromium``) driven by Selenium.

One ``makemore serve`` subprocess (run 0: the shared small MLP, run 1: the labelled count model) and one
browser serve the module; each test loads the page afresh. The helpers are those of
``scripts/screenshot_serve.py``, which makes the README's screenshot. Skipped when Chromium,
chromedriver or Selenium is missing, unless ``MAKEMORE_REQUIRE_BROWSER=1`` (``.ci/run`` sets it): then a
missing browser fails every test.
"""

from __future__ import annotations

import json
import os
import re
import struct
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import load_browser_script

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLAIN, LABELLED = 0, 1

shot = load_browser_script()


@pytest.fixture(scope="module", autouse=True)
def browser_installed():
    missing = shot.missing_browser()
    if missing:
        reason = f"browser tests need {', '.join(missing)} (make browser installs chromium and chromium-driver)"
        if os.environ.get("MAKEMORE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}; MAKEMORE_REQUIRE_BROWSER=1 does not allow skipping them", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server(trained_run, labelled_run_dir, tmp_path_factory):
    with shot.serve([trained_run.out_dir, labelled_run_dir], cwd=tmp_path_factory.mktemp("serve_cwd")) as server:
        yield server


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    with shot.chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


@pytest.fixture
def page(driver, server):
    """The page, freshly loaded, with both runs listed."""
    shot.open_page(driver, server.url, runs=2)
    return driver


def generate_requests(server) -> int:
    """How many generate requests the server has answered (its log, one line per request)."""
    return sum('"POST /api/generate ' in line for line in server.stderr)


RECORD_REQUESTS = """
window.sentBodies = [];
const fetched = window.fetch;
window.fetch = (url, options) => {
  if (options && options.body) window.sentBodies.push(options.body);
  return fetched(url, options);
};
"""


def record_requests(driver) -> None:
    """From now on, keep the JSON text of each request body the page sends (``sent_bodies``)."""
    driver.execute_script(RECORD_REQUESTS)


def sent_bodies(driver) -> list[str]:
    return driver.execute_script("return window.sentBodies")


def shown_seed(driver) -> str:
    return shot.by_id(driver, "shown-seed").text


def api_post(server, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        server.url.rstrip("/") + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def texts(driver, css: str) -> list[str]:
    """The text of each element matching ``css``, shown or not."""
    return [element.get_attribute("textContent").strip() for element in shot.select_all(driver, css)]


def items_shown(driver) -> list[str]:
    """The generated items, as they are (an item may begin or end with a space)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#results li.result span.item')].map((e) => e.textContent)"
    )


def description(driver) -> dict[str, str]:
    """The explore view's description, term -> text (read at once: the page may be replacing it)."""
    pairs = driver.execute_script(
        "return [...document.querySelectorAll('#description dt')].map((dt) => [dt.textContent, "
        "dt.nextElementSibling.textContent])"
    )
    return dict(pairs)


def visible_view(driver) -> str:
    views = ("generate", "score", "explore")
    shown = [v for v in views if shot.by_id(driver, f"view-{v}").get_dom_attribute("hidden") is None]
    assert len(shown) == 1, f"views without the hidden attribute: {shown}"
    assert shot.by_id(driver, f"view-{shown[0]}").is_displayed()
    return shown[0]


def show(driver, view: str) -> None:
    shot.by_id(driver, f"tab-{view}").click()
    assert visible_view(driver) == view


def score(driver, text: str) -> None:
    """Score ``text`` in the score view (after emptying the strip) and wait for its cells or an error."""
    show(driver, "score")
    driver.execute_script("document.getElementById('strip').replaceChildren()")
    shot.fill(driver, "score-input", text)
    shot.by_id(driver, "score-button").click()
    shot.wait_until(
        driver, lambda d: shot.select_all(d, "#strip .cell") or shot.error_text(d), f"the strip of {text!r}"
    )
    assert shot.error_text(driver) == ""


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 600 and len(data) > 5_000, (width, height, len(data))


def test_the_page_loads_with_three_tabs_and_every_run(page, trained_run, labelled_run_dir):
    assert page.title == "makemore"
    assert [page.find_element("id", f"tab-{v}").tag_name for v in ("generate", "score", "explore")] == ["button"] * 3
    assert visible_view(page) == "generate"
    options = shot.select_all(page, "#run-select option")
    assert [o.get_attribute("value") for o in options] == ["0", "1"]
    names = [trained_run.out_dir.name, labelled_run_dir.name]
    assert all(name in option.text for name, option in zip(names, options)), [o.text for o in options]
    assert shot.error_text(page) == "" and shot.by_id(page, "error").get_dom_attribute("hidden") is not None
    for view in ("score", "explore", "generate"):
        show(page, view)


def test_generating_20_items_with_a_suffix(page, trained_run):
    shot.choose_run(page, PLAIN)
    assert not shot.by_id(page, "label").is_enabled()  # an unlabelled run
    shot.fill(page, "n", 20)
    shot.fill(page, "suffix", "a")
    results = shot.generate(page, 20)
    assert shot.error_text(page) == "" and len(results) == 20
    items = items_shown(page)
    assert len(items) == 20 and all(item.endswith("a") for item in items), items
    assert shot.by_id(page, "new-only").is_selected()  # new only by default: nothing of the training data
    assert not set(items) & set(trained_run.words) and texts(page, "#results li.result span.mark") == []
    assert all(float(nll) > 0 for nll in texts(page, "#results li.result span.nll"))
    seed = int(shot.by_id(page, "shown-seed").text)

    shot.fill(page, "seed", seed + 1)  # another seed, other items
    shot.generate(page, 20)
    other = items_shown(page)
    assert int(shot.by_id(page, "shown-seed").text) == seed + 1 and other != items
    shot.fill(page, "seed", seed)  # the shown seed, set again, makes the same items
    shot.generate(page, 20)
    assert items_shown(page) == items


def test_scoring_a_name_shows_one_cell_per_character_and_the_end(page, server):
    shot.choose_run(page, PLAIN)
    name = "béa"
    score(page, name)
    cells = shot.select_all(page, "#strip .cell")
    status, expected = api_post(server, "/api/score", {"run": PLAIN, "text": name})
    assert status == 200 and len(cells) == len(name) + 1 == len(expected["chars"])
    probs = [float(cell.get_attribute("data-prob")) for cell in cells]
    assert all(0 < p <= 1 for p in probs)
    assert probs == pytest.approx([c["prob"] for c in expected["chars"]], rel=1e-6)
    assert all(c["context"] in cell.get_attribute("title") for cell, c in zip(cells, expected["chars"]))
    shown = shot.by_id(page, "score-nll").text
    assert float(shown) == pytest.approx(expected["nll"], abs=0.5 * 10 ** -len(shown.split(".")[1]) + 1e-9)
    assert shot.select_all(page, "#classes li.class") == []  # no labels, no classes


def test_a_labelled_run_classifies_into_every_label(page, server):
    shot.choose_run(page, LABELLED)
    assert texts(page, "#score-label option") == ["auto", "hi", "lo"]
    assert shot.by_id(page, "label").is_enabled() and texts(page, "#label option") == ["any", "hi", "lo"]
    score(page, "abc")
    shot.wait_until(page, lambda d: len(shot.select_all(d, "#classes li.class")) == 2, "two classes")
    classes = [line.split() for line in texts(page, "#classes li.class")]
    assert [label for label, _ in classes] == ["lo", "hi"]  # most probable first: a-h are 'lo' letters
    assert sum(float(p) for _, p in classes) == pytest.approx(1.0, abs=2e-4)
    status, expected = api_post(server, "/api/score", {"run": LABELLED, "text": "abc"})
    assert status == 200
    assert [float(p) for _, p in classes] == pytest.approx([c["p"] for c in expected["classes"]], abs=5e-5)


@pytest.mark.parametrize(
    "field, value, body",
    [("regex", "(", {"regex": "("}), ("suffix", "zq", {"suffix": "zq"}), ("temperature", "-1", {"temperature": -1})],
    ids=["regex", "unknown-character", "temperature"],
)
def test_a_bad_parameter_shows_the_servers_error(page, server, field, value, body):
    status, expected = api_post(server, "/api/generate", {"run": PLAIN, "n": 20, **body})
    assert status == 400 and "\n" not in expected["error"]
    shot.choose_run(page, PLAIN)
    shot.fill(page, field, value)
    shot.generate(page, 20)
    assert expected["error"] in shot.error_text(page)
    assert shot.select_all(page, "#results li.result") == []
    shot.by_id(page, field).clear()  # fixed, the next request clears the error
    if field == "temperature":
        shot.fill(page, field, 1)
    shot.generate(page, 20)
    assert shot.error_text(page) == "" and len(shot.select_all(page, "#results li.result")) == 20


def test_a_screenshot_of_each_view(page, server, tmp_path):
    items = shot.screenshot_generate(page, server.url, tmp_path / "generate.png", runs=2, n=20, suffix="a", seed=3)
    assert len(items) == 20 and texts(page, "#results li.result span.item") == items
    score(page, "abéc")
    page.save_screenshot(str(tmp_path / "score.png"))
    show(page, "explore")
    loaded = "return arguments[0].complete && arguments[0].naturalWidth > 0"
    for plot in ("bigram-plot", "loss-plot"):
        img = shot.by_id(page, plot)
        shot.wait_until(page, lambda d, img=img: d.execute_script(loaded, img), f"img#{plot} loaded")
    assert re.search(r"\bmlp\b", shot.by_id(page, "description").text)
    page.save_screenshot(str(tmp_path / "explore.png"))
    for view in ("generate", "score", "explore"):
        assert_png(tmp_path / f"{view}.png")
    # written atomically: no temp file left beside them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explore.png", "generate.png", "score.png"]


def test_the_page_generates_once_on_load_with_new_items_only(driver, server, trained_run):
    before = generate_requests(server)
    shot.open_page(driver, server.url, runs=2)
    shot.wait_until(driver, lambda d: len(shot.select_all(d, "#results li.result")) == 20, "items on load")
    assert shot.error_text(driver) == "" and re.fullmatch(r"[0-9]+", shown_seed(driver))
    assert generate_requests(server) == before + 1
    items = items_shown(driver)
    assert shot.by_id(driver, "new-only").is_selected() and not set(items) & set(trained_run.words)
    body = {"run": PLAIN, "n": 20, "seed": int(shown_seed(driver)), "new_only": True}
    status, expected = api_post(server, "/api/generate", body)
    assert status == 200 and [r["item"] for r in expected["items"]] == items


def test_each_press_draws_a_new_seed_unless_one_is_typed(page, server):
    shot.choose_run(page, PLAIN)
    assert shot.by_id(page, "seed").get_attribute("value") == ""
    assert shot.by_id(page, "seed").get_attribute("placeholder") == "random"
    lists, seeds = [], []
    for _ in range(3):
        shot.generate(page, 20)
        lists.append(items_shown(page))
        seeds.append(shown_seed(page))
    assert len(set(seeds)) == 3 and all(re.fullmatch(r"[0-9]+", seed) for seed in seeds), seeds
    assert lists[0] != lists[1] != lists[2]
    assert shot.by_id(page, "seed").get_attribute("value") == ""  # still empty: the next press draws again
    shot.fill(page, "seed", seeds[1])  # the seed shown repeats its list, press after press
    for _ in range(2):
        shot.generate(page, 20)
        assert shown_seed(page) == seeds[1] and items_shown(page) == lists[1]
    shot.by_id(page, "seed").clear()
    shot.generate(page, 20)
    assert shown_seed(page) not in seeds
    shot.by_id(page, "reuse-seed").click()  # the shown seed, put back in the box
    assert shot.by_id(page, "seed").get_attribute("value") == shown_seed(page)


@pytest.mark.parametrize("seed", ["4294967296", "9876543210", "9007199254740993", "18446744073709551615"])
def test_the_seed_box_keeps_any_seed_the_api_takes(page, server, seed):
    """10 digits and more: past 2**32, and past 2**53 where a JavaScript number is no longer exact."""
    shot.choose_run(page, PLAIN)
    shot.fill(page, "n", 8)
    shot.fill(page, "seed", seed)
    shot.generate(page, 8)
    assert shot.error_text(page) == "" and shown_seed(page) == seed
    assert shot.by_id(page, "seed").get_attribute("value") == seed
    status, expected = api_post(server, "/api/generate", {"run": PLAIN, "n": 8, "seed": int(seed), "new_only": True})
    assert status == 200 and items_shown(page) == [r["item"] for r in expected["items"]]
    shot.fill(page, "seed", str(2**64))  # one past the API's limit: the server's error
    shot.generate(page, 8)
    assert shot.error_text(page).startswith("seed: ") and str(2**64) in shot.error_text(page)


def test_shortest_and_longest_are_empty_and_send_nothing_until_filled(page):
    shot.choose_run(page, PLAIN)
    for field in ("min-len", "max-len"):
        box = shot.by_id(page, field)
        assert box.get_attribute("value") == "" and box.get_attribute("placeholder") == "any"
    record_requests(page)
    shot.generate(page, 20)
    body = json.loads(sent_bodies(page)[-1])
    assert "min_len" not in body and "max_len" not in body and body["n"] == 20
    assert shot.error_text(page) == ""
    shot.fill(page, "min-len", 4)
    shot.fill(page, "max-len", 5)
    shot.generate(page, 20)
    body = json.loads(sent_bodies(page)[-1])
    assert (body["min_len"], body["max_len"]) == (4, 5) and shot.error_text(page) == ""
    assert all(4 <= len(item) <= 5 for item in items_shown(page))


def test_known_items_are_marked_when_new_only_is_off(page, trained_run):
    shot.choose_run(page, PLAIN)
    shot.by_id(page, "new-only").click()
    assert not shot.by_id(page, "new-only").is_selected()
    shot.fill(page, "n", 200)
    shot.fill(page, "max-len", 3)  # short items: many of them are training items
    shot.fill(page, "seed", 1)
    shot.generate(page, 200)
    known = set(trained_run.words)
    rows = shot.select_all(page, "#results li.result")
    marked = [row.find_elements("css selector", "span.mark.known") != [] for row in rows]
    items = items_shown(page)
    assert len(items) == 200 and marked == [item in known for item in items]
    assert any(marked) and not all(marked)  # both kinds were seen
    assert set(texts(page, "#results li.result span.mark")) == {"in training data"}
    assert all("known" in row.get_attribute("class") for row, m in zip(rows, marked) if m)


def test_explore_shows_what_applies_to_each_kind_of_model(page, server):
    shot.choose_run(page, LABELLED)
    show(page, "explore")
    shot.wait_until(page, lambda d: "counted" in description(d), "the count model's description")
    rows = description(page)
    assert "parameters" not in rows and "trained" not in rows
    assert not re.search(r"\b(steps|batch|lr)\b", " ".join(rows.values()))
    assert "order=2" in rows["model"]
    _, info = api_get(server, "/api/info?run=1")
    counted = info["counted"]
    assert rows["counted"].startswith(f"{counted['examples']:,} next characters in {counted['contexts']:,} ")
    shot.choose_run(page, PLAIN)
    shot.wait_until(page, lambda d: "trained" in description(d), "the MLP's description")
    rows = description(page)
    assert "counted" not in rows and rows["parameters"] == f"{info_of(server, PLAIN)['parameters']:,}"
    assert re.fullmatch(r"[0-9,]+ steps, batch [0-9]+, lr \S+", rows["trained"])


def api_get(server, path: str) -> tuple[int, dict]:
    with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=30) as response:
        return response.status, json.load(response)


def info_of(server, run: int) -> dict:
    status, info = api_get(server, f"/api/info?run={run}")
    assert status == 200
    return info


def test_a_case_folded_run_reads_capitals_and_can_show_its_items_capitalised(page, server):
    shot.choose_run(page, PLAIN)
    assert shot.by_id(page, "capitalise-box").is_displayed()  # the tiny corpus is in lower case
    shot.fill(page, "prefix", "AB")
    shot.generate(page, 20)
    items = items_shown(page)
    assert shot.error_text(page) == "" and all(item.startswith("ab") for item in items), items
    shot.by_id(page, "capitalise").click()
    capitalised = items_shown(page)
    assert all(item.startswith("Ab") for item in capitalised), capitalised
    assert [item.lower() for item in capitalised] == [item.lower() for item in items]
    shot.by_id(page, "capitalise").click()
    assert items_shown(page) == items
    shot.by_id(page, "prefix").clear()


CONTROLS = """
return [...document.querySelectorAll('#generate-controls input, #generate-controls select')].map((e) => {
  const label = e.closest('label');
  const text = [...label.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent);
  return {id: e.id, tag: e.tagName.toLowerCase(), type: e.type, label: text.join('').trim(), title: e.title,
    min: e.min, max: e.max, step: e.step};
});
"""
HIGH = "nopqrstu"  # the letters of the labelled run's "hi" items
PAGE_ONLY = {"capitalise"}  # the view's own check box: not a sampling option


def test_the_generate_form_has_one_control_per_declared_option(page, server):
    from makemore.config import EvalConfig
    from makemore.generate.config import SampleConfig
    from makemore.options import page_controls
    from makemore.serve import params

    declared = list(page_controls(SampleConfig, params.MAX_TEXT))
    metrics = list(page_controls(EvalConfig, params.MAX_TEXT))  # the Explore view's sample quality
    assert api_get(server, "/api/options") == (200, {"generate": declared, "metrics": metrics})
    shot.choose_run(page, PLAIN)
    shown = {c["id"]: c for c in page.execute_script(CONTROLS) if c["id"] not in PAGE_ONLY}
    assert len(shown) == len(declared) and set(shown) == {c["name"].replace("_", "-") for c in declared}
    limit = info_of_runs(server)[PLAIN]["length_limit"]
    for control in declared:
        element = shown[control["name"].replace("_", "-")]
        assert element["label"] == control["label"], element
        assert element["title"].startswith(control["help"]), element
        kind = control["kind"]
        if control["choices_from"] == "labels":
            assert element["tag"] == "select"
        elif kind == "bool":
            assert element["type"] == "checkbox"
        elif kind in ("int", "float"):
            assert element["type"] == "number" and element["step"] == ("any" if kind == "float" else "1")
            most = limit if control["run_length"] else control["most"]
            assert element["max"] == ("" if most is None else f"{most:g}"), element
        else:
            assert element["type"] == "text"


def info_of_runs(server) -> list[dict]:
    status, answer = api_get(server, "/api/runs")
    assert status == 200
    return answer["runs"]


def test_values_typed_in_generated_controls_reach_the_server(page):
    shot.choose_run(page, PLAIN)
    record_requests(page)
    shot.fill(page, "max-len", 5)
    shot.fill(page, "prefix", "a")
    shot.fill(page, "contains", " b , ,")  # comma-separated, trimmed, empties dropped
    shot.by_id(page, "unique").click()
    shot.generate(page, 20)
    assert shot.error_text(page) == ""
    body = json.loads(sent_bodies(page)[-1])
    assert (body["max_len"], body["prefix"], body["contains"], body["unique"]) == (5, "a", ["b"], True)
    assert "seed" not in body and "label" not in body and "min_len" not in body  # empty: the server's default
    items = items_shown(page)
    assert len(items) == 20 and len(set(items)) == 20
    assert all(item.startswith("a") and "b" in item and len(item) <= 5 for item in items), items


def test_the_label_control_sends_the_chosen_label(page):
    from selenium.webdriver.support.ui import Select

    shot.choose_run(page, LABELLED)
    record_requests(page)
    Select(shot.by_id(page, "label")).select_by_value("hi")
    shot.generate(page, 20)
    assert shot.error_text(page) == ""
    assert json.loads(sent_bodies(page)[-1])["label"] == ["hi"]
    chars = "".join(items_shown(page))  # a smoothed count model: mostly, not only, the label's letters
    assert sum(c in HIGH for c in chars) > 0.8 * len(chars), items_shown(page)
