"""The dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
Selenium) against a `newsdedup web` process and a real Redis holding the ingested test corpus.

Without a browser these tests are skipped, each with the reason, which `pytest -ra` prints:
install one with `apt-get install -y chromium chromium-driver`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dedup.urls import url_id
from tests.webserver import (
    EDITED_URL,
    HOSTILE_COPY_URL,
    TOKEN,
    WebProcess,
    delete_prefix,
    ingest_corpus,
    web_server,
)

CHROMIUM = next(filter(None, (shutil.which(name) for name in ("chromium", "chromium-browser"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the test extra not installed
    webdriver = None  # type: ignore[assignment]

WAIT = 20.0
"""Seconds a step may take on a busy machine before the test fails (a bound, not a measurement)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through chromedriver; the test is skipped, saying why, when there is none."""
    if webdriver is None:
        pytest.skip("no browser tests: selenium is not installed (pip install -e '.[test]')")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no browser tests: headless Chromium not found (Debian: apt-get install -y chromium "
                    "chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        pytest.skip(f"no browser tests: Chromium at {CHROMIUM} did not start: {exc.msg}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def corpus_prefix(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    prefix = f"newsdedup-test-browser-{uuid.uuid4().hex[:12]}:"
    ingest_corpus(redis_server_url, prefix, tmp_path_factory.mktemp("browser-corpus"))
    yield prefix
    delete_prefix(redis_server_url, prefix)


@pytest.fixture(scope="module")
def site(browser: Any, redis_server_url: str, corpus_prefix: str) -> Iterator[WebProcess]:
    with web_server(redis_server_url, corpus_prefix) as server:
        yield server


def console_errors(driver: Any) -> list[str]:
    """Console errors since the last call (CSP violations, failed loads, script errors)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait(driver: Any, condition: Any, what: str) -> Any:
    return WebDriverWait(driver, WAIT).until(condition, message=f"waiting for {what}")


def load(driver: Any, url: str) -> None:
    """Open a page and wait until htmx has loaded (so its errors would be in the console)."""
    console_errors(driver)  # forget earlier pages
    driver.get(url)
    wait(driver, lambda d: d.execute_script("return document.readyState") == "complete", "the page to load")
    wait(driver, lambda d: d.execute_script("return typeof htmx !== 'undefined'"), "htmx to load")


@pytest.mark.parametrize("path", [
    "/", "/?range=7d", "/duplicates", "/duplicates?kind=excerpt&since=1d", f"/story/{url_id(EDITED_URL)}",
    f"/story/{url_id(HOSTILE_COPY_URL)}", "/overrides", "/search?q=https%3A%2F%2Fnowhere.example%2F",
])
def test_pages_load_without_console_errors(browser: Any, site: WebProcess, path: str) -> None:
    load(browser, site.url.rstrip("/") + path)
    assert console_errors(browser) == []
    assert browser.find_element(By.CSS_SELECTOR, "header.top nav").is_displayed()
    assert browser.execute_script("return htmx.version").startswith("2.")
    # Hostile titles are text: no element injected by them exists.
    assert browser.execute_script("return document.querySelectorAll('img[src=x], main script').length") == 0


def test_chart_renders(browser: Any, site: WebProcess) -> None:
    load(browser, site.url)
    chart = browser.find_element(By.ID, "decisions-chart")
    assert chart.size["width"] > 600 and chart.size["height"] > 100
    segments = chart.find_elements(By.CSS_SELECTOR, "g.bar rect:not(.hit)")
    drawn = [s for s in segments if s.size["height"] > 0]
    kinds = {s.get_attribute("class") for s in drawn}
    assert {"k-canonical", "k-near", "k-excerpt", "k-exact"} <= kinds
    fill = browser.execute_script(
        "return getComputedStyle(document.querySelector('#decisions-chart rect.k-near')).fill")
    assert fill not in ("", "none", "rgb(0, 0, 0)")  # the stylesheet applied: the CSP let it in
    legend = browser.find_element(By.CSS_SELECTOR, ".legend").text
    assert "near copy" in legend and "excerpt" in legend
    assert console_errors(browser) == []


def test_diff_shows_side_by_side(browser: Any, site: WebProcess) -> None:
    load(browser, site.url + f"story/{url_id(EDITED_URL)}")
    table = browser.find_element(By.CSS_SELECTOR, "table.diff")
    assert table.is_displayed()
    inserted = [m.text for m in table.find_elements(By.CSS_SELECTOR, "mark.ins") if m.is_displayed()]
    assert any("reportedly" in text for text in inserted)
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    left, right = rows[0].find_elements(By.TAG_NAME, "td")
    assert left.location["x"] < right.location["x"] and left.location["y"] == right.location["y"]
    # Another member, chosen from the members table.
    compare = browser.find_elements(By.LINK_TEXT, "compare")
    assert compare
    compare[-1].click()
    wait(browser, lambda d: "diff=" in d.current_url, "the other member's diff")
    assert browser.find_element(By.CSS_SELECTOR, "tr.is-selected")
    assert console_errors(browser) == []


def _kinds_shown(driver: Any) -> list[str]:
    """The kind badge of every row of the results (read in one go: htmx may be swapping them)."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "return [...document.querySelectorAll('#results table.dupes .kind')].map(e => e.textContent)")


def _results_text(driver: Any) -> str:
    return driver.execute_script(  # type: ignore[no-any-return]
        "const r = document.getElementById('results'); return r ? r.textContent : ''")


def test_filters_work(browser: Any, site: WebProcess) -> None:
    load(browser, site.url + "duplicates?limit=200")
    everything = _kinds_shown(browser)
    assert {"exact copy", "near copy", "excerpt"} <= set(everything)
    browser.find_element(By.CSS_SELECTOR, "input[name=kind][value=excerpt]").click()  # htmx swaps the results
    wait(browser, lambda d: set(_kinds_shown(d)) == {"excerpt"}, "only excerpts")
    assert len(_kinds_shown(browser)) == everything.count("excerpt")
    assert "kind=excerpt" in browser.current_url  # the filter is in the address, for back and sharing
    source = browser.find_element(By.CSS_SELECTOR, "input[name=source]")
    source.send_keys("copy.example")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait(browser, lambda d: "No duplicate decisions match" in _results_text(d),
         "no excerpt from copy.example")
    browser.find_element(By.CSS_SELECTOR, "input[name=kind][value=excerpt]").click()
    wait(browser, lambda d: _kinds_shown(d) == ["exact copy"], "the one copy from copy.example")
    since = browser.find_element(By.CSS_SELECTOR, "input[name=since]")
    since.send_keys("not a time")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait(browser, lambda d: "not a time" in _results_text(d), "the error about Since")
    # A 400 for a bad filter is expected here: it is the only console line.
    assert all("400" in line for line in console_errors(browser))


def test_search_finds_a_story(browser: Any, site: WebProcess) -> None:
    load(browser, site.url)
    box = browser.find_element(By.CSS_SELECTOR, "header .search input[name=q]")
    box.send_keys(EDITED_URL + "\n")
    wait(browser, lambda d: f"/story/{url_id(EDITED_URL)}" in d.current_url, "the story page")
    assert browser.find_element(By.CSS_SELECTOR, "table.members").is_displayed()
    assert console_errors(browser) == []


def test_narrow_screen_has_no_sideways_scrolling(browser: Any, site: WebProcess) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        for path in ("/", "/duplicates", f"/story/{url_id(EDITED_URL)}", "/overrides"):
            load(browser, site.url.rstrip("/") + path)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than a 390px screen"
            assert console_errors(browser) == []
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_public_bind_asks_for_the_token(browser: Any, redis_server_url: str, corpus_prefix: str) -> None:
    with web_server(redis_server_url, corpus_prefix, "--host", "0.0.0.0", NEWSDEDUP_WEB_TOKEN=TOKEN) as server:
        console_errors(browser)
        browser.get(server.url + "duplicates")
        form = browser.find_element(By.CSS_SELECTOR, "form[action='/login']")
        assert "Recent duplicates" not in browser.page_source and "Articles kept" not in browser.page_source
        assert any("401" in line for line in console_errors(browser))  # refused, as the console says
        form.find_element(By.NAME, "token").send_keys(TOKEN + "\n")
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "h1") and
             d.find_element(By.CSS_SELECTOR, "h1").text == "Recent duplicates", "the page asked for")
        assert console_errors(browser) == []
        assert browser.get_cookie("newsdedup_session")["httpOnly"] is True

