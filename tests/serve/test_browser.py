"""``makemore serve`` in a real browser: headless Chromium (Debian's ``chromium``) driven by Selenium.

One ``makemore serve`` subprocess (run 0: the shared small MLP, run 1: the labelled count model) and one
browser serve the module; each test loads the page afresh. The helpers are those of
``scripts/screenshot_serve.py``, which makes the README's screenshot. Skipped when Chromium,
chromedriver or Selenium is missing, unless ``MAKEMORE_REQUIRE_BROWSER=1`` (``.ci/run`` sets it): then a
missing browser fails every test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import struct
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_serve.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLAIN, LABELLED = 0, 1


def _load_script():
    spec = importlib.util.spec_from_file_location("screenshot_serve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


shot = _load_script()


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
    items = texts(page, "#results li.result span.item")
    assert len(items) == 20 and all(item.endswith("a") for item in items), items
    known = set(trained_run.words)
    assert texts(page, "#results li.result span.mark") == ["in training data" if i in known else "new" for i in items]
    assert all(float(nll) > 0 for nll in texts(page, "#results li.result span.nll"))
    seed = int(shot.by_id(page, "shown-seed").text)

    shot.fill(page, "seed", seed + 1)  # another seed, other items
    shot.generate(page, 20)
    other = texts(page, "#results li.result span.item")
    assert int(shot.by_id(page, "shown-seed").text) == seed + 1 and other != items
    shot.fill(page, "seed", seed)  # the shown seed, set again, makes the same items
    shot.generate(page, 20)
    assert texts(page, "#results li.result span.item") == items


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
