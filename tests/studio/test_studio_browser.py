"""``makemore studio``'s page in a real browser: headless Chromium (Debian's ``chromium``) driven by Selenium.

One studio (``make_studio`` on a free port of 127.0.0.1, its workspace in a temp folder, its trainings
made short by the studio's ``train_args`` test hook) and one browser serve the module; Chromium's
downloads go to a temp folder. The walk of the issue: paste a 300-item list (its summary), train it
(the loss curve grows while it trains), generate with a suffix, star two items, download the
favourites (.txt and .csv), export the run (the single-file page), share the generate settings by
the address, delete the run. Skipped when Chromium, chromedriver or Selenium is missing, unless
``MAKEMORE_REQUIRE_BROWSER=1`` (``.ci/run`` sets it): then a missing browser fails them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import load_browser_script, make_tiny_words

shot = load_browser_script()
STATIC = Path(__file__).resolve().parents[2] / "src" / "makemore" / "serve" / "static"
SHARED_VIEWS = ("generate", "score", "explore")
# The child's flags in place of --time: a small MLP that logs often, so the curve grows for a few seconds.
TRAIN_ARGS = ["--model", "mlp", "--time", "10s", "--log-interval", "5", "--eval-interval", "20"]


def section(html: str, view: str) -> str:
    match = re.search(rf'<section id="view-{view}"( hidden)?>.*?</section>', html, re.S)
    assert match, f"no view-{view} section"
    return match.group(0)


def test_the_studio_page_carries_serves_views_unchanged():
    """The generate, score and explore views of the studio's page are serve's, put in when it is served."""
    from makemore.studio import studio_static

    index = (STATIC / "index.html").read_text()
    studio = studio_static()["/"][0].decode("utf-8")
    assert "serve views" not in studio and "view-generate" not in (STATIC / "studio.html").read_text()
    for view in SHARED_VIEWS:
        assert section(studio, view) == section(index, view), view
    assert '<script src="/static/app.js"></script>\n<script src="/static/studio.js"></script>' in studio
    ids = re.findall(r'id="([^"]+)"', studio)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    tabs = re.findall(r'<button id="tab-([a-z]+)" class="tab"', studio)
    assert tabs == ["list", "train", "runs", "generate", "score", "explore", "favourites", "compare"]
    assert all(f'<section id="view-{tab}"' in studio for tab in tabs)


@pytest.fixture(scope="module")
def browser_installed():
    missing = shot.missing_browser()
    if missing:
        reason = f"browser tests need {', '.join(missing)} (make browser installs chromium and chromium-driver)"
        if os.environ.get("MAKEMORE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}; MAKEMORE_REQUIRE_BROWSER=1 does not allow skipping them", pytrace=False)
        pytest.skip(reason)


class Live:
    """A studio serving on 127.0.0.1 in a thread: its workspace and URL."""

    def __init__(self, studio, server, workspace: Path):
        self.studio, self.server, self.workspace, self.url = studio, server, workspace, server.url

    def get(self, path: str):
        with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=30) as response:
            return json.load(response)


@pytest.fixture(scope="module")
def live(browser_installed, tmp_path_factory):
    from makemore.studio import StudioConfig, make_studio

    workspace = tmp_path_factory.mktemp("studio") / "workspace"
    studio, server = make_studio(StudioConfig(workspace=str(workspace), port=0, quiet=True), train_args=TRAIN_ARGS)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Live(studio, server, workspace)
    finally:
        server.shutdown()
        server.server_close()
        studio.close()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(browser_installed, tmp_path_factory, downloads):
    with shot.chromium(tmp_path_factory.mktemp("chromium")) as driver:
        # downloads land in the temp folder, without asking
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        yield driver


def visible_view(driver) -> str:
    shown = driver.execute_script(
        "return [...document.querySelectorAll('main > section:not([hidden])')].map((s) => s.id)"
    )
    assert len(shown) == 1, shown
    return shown[0].removeprefix("view-")


def show(driver, view: str) -> None:
    shot.by_id(driver, f"tab-{view}").click()
    assert visible_view(driver) == view


def items_shown(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#results li.result span.item')].map((e) => e.dataset.item)"
    )


def facts(driver) -> dict[str, str]:
    """The list summary's facts, term -> text."""
    pairs = driver.execute_script(
        "return [...document.querySelectorAll('#summary-facts dt')].map((dt) => [dt.textContent, "
        "dt.nextElementSibling.textContent])"
    )
    return dict(pairs)


def downloaded(folder: Path, name: str, timeout: float = 60.0) -> Path:
    """The file ``name`` once Chromium has finished writing it in ``folder``."""
    path = folder / name
    deadline = time.monotonic() + timeout
    while not path.is_file() or any(p.suffix == ".crdownload" for p in folder.iterdir()):
        assert time.monotonic() < deadline, f"no {name} downloaded: {sorted(p.name for p in folder.iterdir())}"
        time.sleep(0.1)
    return path


ROW = """
return [...document.querySelectorAll('#runs tr.run-row')].find((r) => r.querySelector('.name').textContent === arguments[0])
  || null;
"""
ROW_NLL = """
const row = [...document.querySelectorAll('#runs tr.run-row')].find((r) => r.querySelector('.name').textContent === arguments[0]);
return row ? row.querySelector('.nll').textContent : null;
"""


def click_in_row(driver, name: str, css: str) -> None:
    """Click ``css`` in the run ``name``'s row of the Runs table (redrawn when a job changes: found afresh)."""
    from selenium.common.exceptions import StaleElementReferenceException

    def clicked(d) -> bool:
        try:
            row = run_row(d, name)
            buttons = row.find_elements("css selector", css) if row is not None else []
            if buttons:
                buttons[0].click()
            return bool(buttons)
        except StaleElementReferenceException:
            return False

    shot.wait_until(driver, clicked, f"{css} in the row of {name}")


def run_row(driver, name: str):
    """The row of the run ``name`` in the Runs table, or None (found in one script: the table may be redrawn)."""
    return driver.execute_script(ROW, name)


@pytest.mark.slow
def test_an_empty_workspace_opens_on_bring_a_list(live, driver):  # live first: the browser goes before the server
    driver.get(live.url)
    shot.wait_until(driver, lambda d: visible_view(d) == "list", "the Bring a list view")
    assert driver.title == "makemore studio" and shot.error_text(driver) == ""
    assert (
        shot.select_all(driver, "#run-select option") == [] and not shot.by_id(driver, "generate-button").is_enabled()
    )
    assert shot.select_all(driver, "#lists tr.list-row") == [] and not shot.by_id(driver, "train-start").is_enabled()
    assert shot.by_id(driver, "list-limits").text == "at most 20,971,520 bytes and 1,000,000 lines"


def paste_list(driver, name: str, words: list[str]) -> None:
    show(driver, "list")
    shot.fill(driver, "list-name", name)
    # the whole text at once (send_keys would type 300 lines key by key)
    driver.execute_script("document.getElementById('list-text').value = arguments[0]", "\n".join(words) + "\n")
    shot.by_id(driver, "list-add").click()
    shot.wait_until(driver, lambda d: shot.by_id(d, "summary-title").text.startswith(name) or shot.error_text(d), name)
    assert shot.error_text(driver) == ""


def start_training(driver, list_name: str, run_name: str) -> None:
    """Start a training of the list from the Train view; back once the page has sent it (Start enabled again)."""
    from selenium.webdriver.support.ui import Select

    show(driver, "train")
    Select(shot.by_id(driver, "train-list")).select_by_visible_text(f"{list_name} (300 items)")
    shot.fill(driver, "train-name", run_name)
    shot.by_id(driver, "train-start").click()  # disables Start until the job is queued and the state shown
    shot.wait_until(driver, lambda d: shot.by_id(d, "train-start").is_enabled(), f"the training of {run_name} sent")
    assert shot.error_text(driver) == ""


def train(driver, live, list_name: str, run_name: str) -> list[int]:
    """Train the list from the Train view; the curve's last step, as drawn, each time it was looked at while the
    job ran (its number of points is no measure: the server thins a long curve)."""
    from selenium.webdriver.support.ui import Select

    show(driver, "train")
    Select(shot.by_id(driver, "train-list")).select_by_visible_text(f"{list_name} (300 items)")
    shot.fill(driver, "train-name", run_name)
    shot.by_id(driver, "train-start").click()
    seen, deadline = [], time.monotonic() + 120
    while (status := shot.by_id(driver, "progress-status").text) != "finished":
        assert status in ("", "queued", "running"), (status, shot.by_id(driver, "progress-error").text)
        assert time.monotonic() < deadline, f"the training did not finish: {seen}"
        if status == "running":
            seen.append(int(shot.by_id(driver, "curve").get_attribute("data-last-step")))
        time.sleep(0.2)
    return seen


def star(driver, rows: list) -> list[str]:
    """Star the items of ``rows``; their items."""
    for row in rows:
        row.find_element("css selector", "button.star").click()
        shot.wait_until(
            driver,
            lambda d, row=row: row.find_element("css selector", "button.star").get_attribute("aria-pressed") == "true",
            "a star",
        )
    return [row.find_element("css selector", "span.item").get_attribute("data-item") for row in rows]


@pytest.mark.slow
def test_paste_train_generate_star_download_export_share_and_delete(live, driver, downloads):
    words = make_tiny_words(300, seed=1)
    driver.get(live.url)
    shot.wait_until(driver, lambda d: shot.by_id(d, "list-form").is_displayed(), "the page")
    paste_list(driver, "too long", [*words[:10], "x" * 300])  # train refuses an item over 256 characters
    assert [e.text for e in shot.select_all(driver, "#summary-refused li")] == [
        "line 11: item is 300 characters long, more than --max-item-len (256)"
    ]
    assert facts(driver)["items"] == "10" and shot.by_id(driver, "summary-verdict").text != "ready to train"
    paste_list(driver, "tiny words", words)
    summary = facts(driver)
    assert summary["items"] == "300" and summary["distinct"] == f"{len(set(words)):,}"
    assert summary["duplicates"] == f"{300 - len(set(words)):,}"
    assert summary["alphabet"].endswith(": " + "".join(sorted(set("".join(words)))))
    lengths = [len(w) for w in words]
    assert summary["lengths"].startswith(f"{min(lengths)} to {max(lengths)}, mean ")
    assert shot.by_id(driver, "summary-verdict").text == "ready to train"
    assert not shot.by_id(driver, "summary-refused-box").is_displayed()
    bars = shot.select_all(driver, "#summary-lengths .bar")
    assert len(bars) == max(lengths) and bars[2].get_attribute("title") == f"{lengths.count(3)} items of 3 characters"

    seen = train(driver, live, "tiny words", "first run")
    # the curve moved while it trained: it reached further steps
    assert len(set(seen)) >= 3 and seen == sorted(seen), f"the curve's last step while running: {seen}"
    shot.wait_until(driver, lambda d: len(shot.select_all(d, "#run-select option")) == 1, "the trained run listed")
    run = live.get("/api/studio/runs")[0]
    assert run["name"] == "first run" and run["status"] == "finished" and run["serve_id"] is not None

    show(driver, "runs")
    nll = f"{run['dev_nll']:.4f}"
    shot.wait_until(driver, lambda d: d.execute_script(ROW_NLL, "first run") == nll, f"dev NLL {nll} in the table")
    click_in_row(driver, "first run", "button.open")
    assert visible_view(driver) == "generate"
    shot.fill(driver, "n", 20)
    shot.fill(driver, "suffix", "a")
    rows = shot.generate(driver, 20)
    items = items_shown(driver)
    assert shot.error_text(driver) == "" and len(items) == 20 and all(i.endswith("a") for i in items), items
    assert len(shot.select_all(driver, "#results li.result button.star[aria-pressed='false']")) == 20
    nlls = [float(r.find_element("css selector", "span.nll").text) for r in rows]
    chosen = [i for i, item in enumerate(items) if item[0].isalpha() and items.index(item) == i][:2]
    starred = star(driver, [rows[i] for i in chosen])
    favourites = live.get(f"/api/studio/runs/{run['id']}/favourites")
    assert [f["item"] for f in favourites] == starred and all(f["label"] is None for f in favourites)
    assert [f["score"] for f in favourites] == pytest.approx([nlls[i] for i in chosen], abs=5e-4)

    show(driver, "favourites")
    shot.wait_until(driver, lambda d: len(shot.select_all(d, "#favourites li.favourite")) == 2, "two favourites")
    shot.by_id(driver, "favourites-txt").click()
    assert downloaded(downloads, "first run favourites.txt").read_text() == "".join(f"{i}\n" for i in starred)
    shot.by_id(driver, "favourites-csv").click()
    table = list(csv.reader(io.StringIO(downloaded(downloads, "first run favourites.csv").read_text())))
    assert table[0] == ["item", "score", "label"] and [r[0] for r in table[1:]] == starred
    assert [float(r[1]) for r in table[1:]] == [f["score"] for f in favourites] and [r[2] for r in table[1:]] == [
        "",
        "",
    ]

    show(driver, "runs")
    click_in_row(driver, "first run", "a.export")
    page = downloaded(downloads, "first run.html").read_text()
    assert page.lower().startswith("<!doctype html>") and "<title>makemore: " in page
    assert len(page) > 20_000 and not re.search(r'(src|href)="https?:', page)  # one file: nothing fetched

    share_the_generate_settings(driver, live)

    show(driver, "runs")
    click_in_row(driver, "first run", "button.delete")
    click_in_row(driver, "first run", "button.confirm")
    gone = "the run gone from the table and the run select"
    shot.wait_until(
        driver, lambda d: run_row(d, "first run") is None and not shot.select_all(d, "#run-select option"), gone
    )
    assert live.get("/api/studio/runs") == [] and shot.select_all(driver, "#results li") == []
    assert not (live.workspace / "runs" / run["id"]).exists()
    assert sorted(p.name for p in (live.workspace / "runs").iterdir()) == []
    assert shot.error_text(driver) == ""


def share_the_generate_settings(driver, live) -> None:
    """Generate with some settings; the address names them; opened again, it restores them and the items."""
    show(driver, "generate")
    shot.fill(driver, "n", 7)
    shot.fill(driver, "suffix", "e")
    shot.by_id(driver, "seed").clear()
    shot.by_id(driver, "new-only").click()  # on by default: the link says it is off
    shot.generate(driver, 7)
    items, seed = items_shown(driver), shot.by_id(driver, "shown-seed").text
    query = dict(part.split("=", 1) for part in driver.current_url.split("?", 1)[1].split("&"))
    run_id = shot.by_id(driver, "run-select").get_attribute("value")
    assert query == {"run": run_id, "n": "7", "suffix": "e", "new_only": "false", "seed": seed}, query
    driver.get(driver.current_url)
    shot.wait_until(driver, lambda d: len(shot.select_all(d, "#results li.result")) == 7, "the shared request's items")
    assert items_shown(driver) == items and shot.by_id(driver, "shown-seed").text == seed
    assert [shot.by_id(driver, i).get_attribute("value") for i in ("n", "suffix", "seed")] == ["7", "e", seed]
    assert not shot.by_id(driver, "new-only").is_selected()


@pytest.mark.slow
def test_a_cancelled_training_keeps_its_run_and_resumes_from_the_page(live, driver):
    driver.get(live.url)
    shot.wait_until(
        driver, lambda d: shot.by_id(d, "list-form").is_displayed() or visible_view(d) != "list", "the page"
    )
    paste_list(driver, "to cancel", make_tiny_words(300, seed=2))
    from selenium.webdriver.support.ui import Select

    show(driver, "train")
    Select(shot.by_id(driver, "train-list")).select_by_visible_text("to cancel (300 items)")
    shot.fill(driver, "train-name", "cancelled run")
    shot.by_id(driver, "train-start").click()

    def evaluated(d):  # a dev loss drawn: a checkpoint exists
        return shot.by_id(d, "progress-status").text == "running" and any(
            row[2] is not None
            for job in live.get("/api/studio/jobs")
            if job["name"] == "cancelled run"
            for row in job["curve"]
        )

    shot.wait_until(driver, evaluated, "a dev evaluation")
    shot.by_id(driver, "progress-cancel").click()
    shot.wait_until(driver, lambda d: shot.by_id(d, "progress-status").text == "cancelled", "the job cancelled")
    assert not shot.by_id(driver, "progress-cancel").is_displayed()
    show(driver, "runs")
    click_in_row(driver, "cancelled run", "button.resume")  # once the cancelled run is served again
    shot.wait_until(driver, lambda d: visible_view(d) == "train", "the Train view")
    shot.wait_until(
        driver, lambda d: shot.by_id(d, "progress-status").text == "finished", "the resumed job finished", 120
    )
    run = next(r for r in live.get("/api/studio/runs") if r["name"] == "cancelled run")
    assert run["status"] == "finished" and run["serve_id"] is not None
    statuses = [j["status"] for j in live.get("/api/studio/jobs") if j["run"] == run["id"]]
    assert statuses == ["cancelled", "finished"] and shot.error_text(driver) == ""


JOB_STATUS = """
const row = [...document.querySelectorAll('#jobs tr.job-row')].find((r) => r.cells[0].textContent === arguments[0]);
return row ? row.cells[4].textContent : null;
"""
ROW_STATE = """
const row = [...document.querySelectorAll('#runs tr.run-row')].find((r) => r.querySelector('.name').textContent === arguments[0]);
return row ? {status: row.querySelector('.status').textContent, served: Boolean(row.querySelector('button.open'))} : null;
"""
COMPARED = """
return [...document.querySelectorAll('#compare-out .compared')].map((c) => ({name: c.querySelector('h3').textContent,
  meta: c.querySelector('.meta').textContent, items: [...c.querySelectorAll('ol li.item')].map((li) => li.textContent)}));
"""


def served(name: str):
    """A condition: the run ``name`` is finished and served (it has Open) in the Runs table."""
    return lambda d: d.execute_script(ROW_STATE, name) == {"status": "finished", "served": True}


@pytest.mark.slow
def test_two_queued_runs_one_renamed_then_compared(live, driver):
    from selenium.webdriver.support.ui import Select

    words = make_tiny_words(300, seed=3)
    driver.get(live.url)
    shot.wait_until(
        driver, lambda d: shot.by_id(d, "list-form").is_displayed() or visible_view(d) != "list", "the page"
    )
    paste_list(driver, "to compare", words)
    start_training(driver, "to compare", "run a")
    start_training(driver, "to compare", "run b")  # queued behind run a (a 10 s training)
    shot.wait_until(
        driver, lambda d: (d.execute_script(JOB_STATUS, "run b") or "").startswith("queued ("), "run b queued"
    )
    ids = {j["name"]: j["run"] for j in live.get("/api/studio/jobs") if j["name"] in ("run a", "run b")}
    a, b = ids["run a"], ids["run b"]

    # rename run a from the Runs view (while run b trains)
    show(driver, "runs")
    shot.wait_until(driver, served("run a"), "run a finished and served", 120)
    click_in_row(driver, "run a", "button.rename")
    row = run_row(driver, "run a")  # the table is not redrawn while the row asks
    field = row.find_element("css selector", "input.rename")
    assert field.get_attribute("value") == "run a"
    field.clear()
    field.send_keys("  first of two ")
    row.find_element("css selector", "button.save").click()
    new = "first of two"  # trimmed

    def renamed(d) -> bool:
        options = d.execute_script("return [...document.querySelectorAll('#run-select option')].map((o) => o.text)")
        return (
            run_row(d, new) is not None
            and run_row(d, "run a") is None
            and any(o.startswith(f"{new} (") for o in options)
        )

    shot.wait_until(driver, renamed, "the new name in the table and the run select")
    names = {r["id"]: r["name"] for r in live.get("/api/studio/runs")}
    assert names[a] == new and names[b] == "run b"
    assert [j["name"] for j in live.get("/api/studio/jobs") if j["run"] == a] == [new]

    # compare the two
    shot.wait_until(driver, served("run b"), "run b finished and served", 120)
    jobs = {j["run"]: j for j in json.loads((live.workspace / "jobs.json").read_text())}
    assert jobs[b]["started"] >= jobs[a]["ended"], "run b trained while run a did"
    show(driver, "compare")
    Select(shot.by_id(driver, "compare-a")).select_by_value(a)
    Select(shot.by_id(driver, "compare-b")).select_by_value(b)
    shot.by_id(driver, "compare-button").click()
    shot.wait_until(driver, lambda d: len(d.execute_script(COMPARED)) == 2 or shot.error_text(d), "two runs compared")
    runs = {r["id"]: r for r in live.get("/api/studio/runs")}
    assert all(isinstance(runs[i]["dev_nll"], float) for i in (a, b)), runs
    columns = driver.execute_script(COMPARED)
    assert [(c["name"], c["meta"]) for c in columns] == [
        (runs[i]["name"], f"{runs[i]['model']} · dev NLL {runs[i]['dev_nll']:.4f}") for i in (a, b)
    ]
    alphabet, longest = set("".join(words)), max(len(w) for w in words)
    for column in columns:
        items = column["items"]
        assert len(items) == 10 and all(1 <= len(i) <= 2 * longest and set(i) <= alphabet for i in items), column
    assert shot.error_text(driver) == ""
