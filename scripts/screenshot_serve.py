"""The README's screenshot of ``makemore serve``: the generate view, items made under a suffix.

Starts ``makemore serve RUN`` on a free port of 127.0.0.1, opens the page in headless Chromium
(Debian's ``chromium`` and ``chromium-driver`` packages driven by Selenium; nothing is downloaded),
generates ``-n`` items ending with ``--suffix`` and writes a screenshot of the whole page
atomically. The browser tests (``tests/serve/test_browser.py``) drive the page with the same helpers.

Usage (the test extra installs Selenium, ``make browser`` installs Chromium):
    python scripts/screenshot_serve.py runs/default -o docs/images/serve-generate.png
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

WINDOW = (1280, 900)
MAX_HEIGHT = 2400  # a full-page screenshot is at most this tall
SERVING = re.compile(r"^serving .* at (http://\S+/)\s*$")
START_TIMEOUT_S = 60.0
WAIT_S = 60.0


def missing_browser() -> list[str]:
    """What driving Chromium needs and this machine lacks (empty when nothing is missing)."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return missing


@dataclass
class Server:
    """A running ``makemore serve``: its URL and what it has written on stderr so far."""

    url: str
    proc: subprocess.Popen
    stderr: list[str] = field(default_factory=list)


@contextmanager
def serve(runs: Sequence[str | Path], cwd: str | Path | None = None) -> Iterator[Server]:
    """``makemore serve RUN... --port 0`` as a subprocess, stopped with Ctrl-C (SIGINT) on exit."""
    command = [sys.executable, "-m", "makemore", "serve", *map(str, runs), "--port", "0"]
    proc = subprocess.Popen(
        command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stderr: list[str] = []

    def pump() -> None:  # keeps reading, so the server never blocks on a full pipe
        for line in proc.stderr:
            stderr.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield Server(_wait_for_url(lines, stderr, proc), proc, stderr)
    finally:
        _stop(proc)


def _wait_for_url(lines: queue.Queue, stderr: list[str], proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError(
                f"makemore serve printed no URL in {START_TIMEOUT_S:.0f} s: {''.join(stderr)!r}"
            ) from None
        if line is None:
            proc.wait(timeout=10)
            raise RuntimeError(f"makemore serve exited with code {proc.returncode}: {''.join(stderr)[-2000:]}")
        match = SERVING.match(line)
        if match:
            return match.group(1)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def chromium(work_dir: str | Path, window: tuple[int, int] = WINDOW) -> Iterator:
    """A headless Chromium (Selenium WebDriver) whose profile and temp files stay in ``work_dir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = missing_browser()
    if missing:
        raise RuntimeError(f"missing: {', '.join(missing)} (make browser installs Chromium)")
    work_dir = Path(work_dir)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")  # with the driver's path: no Selenium Manager
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={window[0]},{window[1]}",
        f"--user-data-dir={work_dir / 'profile'}",
    ):
        options.add_argument(arg)
    env = {**os.environ, "HOME": str(work_dir), "TMPDIR": str(work_dir), "XDG_CONFIG_HOME": str(work_dir / "config")}
    env["XDG_CACHE_HOME"] = str(work_dir / "cache")
    service = Service(
        executable_path=shutil.which("chromedriver"), log_output=str(work_dir / "chromedriver.log"), env=env
    )
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(driver, condition: Callable, what: str, timeout: float = WAIT_S):
    """``condition(driver)`` once it is truthy; an AssertionError naming ``what`` (and #error) if never."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except TimeoutException:
        raise AssertionError(
            f"timed out after {timeout:.0f} s waiting for {what} (#error: {error_text(driver)!r})"
        ) from None


def by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def select_all(driver, css: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def error_text(driver) -> str:
    """What ``#error`` shows ('' when it is hidden or empty)."""
    try:
        return by_id(driver, "error").text.strip()
    except Exception:  # no page (yet): nothing shown
        return ""


def open_page(driver, url: str, runs: int) -> None:
    """Load the page and wait until ``#run-select`` lists the ``runs`` runs."""
    driver.get(url)
    wait_until(driver, lambda d: len(select_all(d, "#run-select option")) >= runs, f"{runs} runs in #run-select")


def choose_run(driver, run_id: int) -> None:
    from selenium.webdriver.support.ui import Select

    Select(by_id(driver, "run-select")).select_by_value(str(run_id))


def fill(driver, element_id: str, value: object) -> None:
    """Type ``value`` into the input ``#element_id`` as a person would (after clearing it)."""
    element = by_id(driver, element_id)
    element.clear()
    element.send_keys(str(value))


# The fields of a form that the browser's constraint validation rejects (none when the form is novalidate).
REFUSED_FIELDS = """
const form = document.getElementById(arguments[0]);
if (form.noValidate) return [];
return [...form.elements].filter((e) => e.willValidate && !e.checkValidity()).map((e) => `#${e.id}: ${e.validationMessage}`);
"""


def generate(driver, n: int) -> list:
    """Click Generate (after emptying #results) and wait for ``n`` results, an error or a warning.

    Raises AssertionError at once when the browser would not submit the form (its own validation).
    """
    refused = driver.execute_script(REFUSED_FIELDS, "generate-form")
    if refused:
        raise AssertionError(f"the browser refuses to submit #generate-form: {'; '.join(refused)}")
    driver.execute_script("document.getElementById('results').replaceChildren()")
    by_id(driver, "generate-button").click()

    def done(d):
        return len(select_all(d, "#results li.result")) >= n or error_text(d) or by_id(d, "warning").text.strip()

    wait_until(driver, done, f"{n} generated items")
    return select_all(driver, "#results li.result")


def screenshot(driver, output: str | Path, full_page: bool = False) -> None:
    """Write what the browser shows as a PNG, atomically (the whole page, up to MAX_HEIGHT, if asked)."""
    from makemore.files import atomic_write_bytes

    size = driver.get_window_size()
    if full_page:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(size["width"], min(MAX_HEIGHT, max(size["height"], height)))
    try:
        atomic_write_bytes(output, driver.get_screenshot_as_png())
    finally:
        if full_page:
            driver.set_window_size(size["width"], size["height"])


def screenshot_generate(
    driver, url: str, output: str | Path, *, runs: int = 1, n: int = 20, suffix: str = "a", seed: int | None = None
) -> list[str]:
    """Open the page, generate ``n`` items of run 0 ending with ``suffix``, screenshot it; the items."""
    open_page(driver, url, runs)
    choose_run(driver, 0)
    fill(driver, "n", n)
    fill(driver, "suffix", suffix)
    if seed is not None:
        fill(driver, "seed", seed)
    results = generate(driver, n)
    if error_text(driver) or len(results) != n:
        raise RuntimeError(f"the page shows {len(results)} of {n} items (#error: {error_text(driver)!r})")
    items = [row.find_element("css selector", "span.item").text for row in results]
    driver.execute_script("window.scrollTo(0, 0)")
    screenshot(driver, output, full_page=True)
    return items


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a trained run directory")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/images/serve-generate.png"))
    parser.add_argument("-n", type=int, default=20, help="items to generate (default 20)")
    parser.add_argument("--suffix", default="a", help="the suffix every item ends with (default a)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    missing = missing_browser()
    if missing:
        parser.error(f"missing: {', '.join(missing)} (make browser installs Chromium; the test extra, Selenium)")
    with tempfile.TemporaryDirectory(prefix="screenshot-serve-") as work, serve([args.run]) as server:
        with chromium(work) as driver:
            items = screenshot_generate(driver, server.url, args.output, n=args.n, suffix=args.suffix, seed=args.seed)
    print(f"{args.output}  ({len(items)} items: {' '.join(items)})")


if __name__ == "__main__":
    main()
