"""As a person would: the pages served on 127.0.0.1, opened in headless Chromium.

Needs Debian's `chromium` and `chromium-driver` and the pinned `selenium` package. Without them
the test skips and says why; CI sets SIAGA_REQUIRE_BROWSER=1, which turns the skip into a failure.
Selenium is given the system chromedriver and chromium, so Selenium Manager never downloads.
Screenshots go to the test's temporary folder, and also to SIAGA_SCREENSHOT_DIR when it is set
(the list overview, a village incident, a road incident with its kecamatan and line, and the
page after an action).
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from siaga.timelines.web import create_app
from siaga.vocabulary import STATES
from test_web import HAZARDS, seed

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python package selenium")
    if not missing:
        return
    message = "browser test needs " + ", ".join(missing) + " (apt-get install chromium chromium-driver; pip install selenium)"
    if os.environ.get("SIAGA_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " and SIAGA_REQUIRE_BROWSER=1")
    pytest.skip(message)


@pytest.fixture
def served(sqlite_url):
    ids = seed(sqlite_url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(sqlite_url, hazards=HAZARDS, actor="made.browser")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", ids
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path):
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1800", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def screenshot(browser, tmp_path: Path, name: str) -> Path:
    """Save a screenshot in the test's folder (and SIAGA_SCREENSHOT_DIR when set)."""
    shot = tmp_path / name
    browser.save_screenshot(str(shot))
    if os.environ.get("SIAGA_SCREENSHOT_DIR"):
        keep = Path(os.environ["SIAGA_SCREENSHOT_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / name)
    return shot


def wait_for_new_page(browser, old) -> None:
    """Wait until `old` (an element of the page a click is leaving) is gone. While the page is
    swapped, Chromium may answer the check with "Node with given id does not belong to the
    document" instead of a stale element; that only means: not yet, ask again. Any other
    error still fails the test at once."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    stale = expected_conditions.staleness_of(old)

    def gone(driver) -> bool:
        try:
            return stale(driver)
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return False
            raise

    WebDriverWait(browser, 30).until(gone)


def submit_filters(browser) -> None:
    """Press Filter and wait for the new page: reading rows before it loads finds the old ones."""
    from selenium.webdriver.common.by import By

    form = browser.find_element(By.CSS_SELECTOR, "form.filters")
    form.find_element(By.TAG_NAME, "button").click()
    wait_for_new_page(browser, form)


def test_manager_opens_an_incident_and_sees_map_chart_timeline(served, browser, tmp_path):
    from selenium.webdriver.common.by import By

    base, ids = served
    browser.get(base + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Insiden (incidents)"  # Indonesian first
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "id"
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.incident")
    assert len(rows) == 3
    headings = [th.get_attribute("textContent") for th in browser.find_elements(By.CSS_SELECTOR, "#incidents th")]
    assert "Tingkat (severity)" in headings and "Kecamatan" in headings and "Aktivitas terakhir (last activity)" in headings
    # the overview: the regency drawn and laid out, the flood's village shaded, the jam's road drawn
    overview = browser.find_element(By.ID, "overview-map")
    assert overview.size["width"] > 500 and overview.size["height"] > 120
    assert len(overview.find_elements(By.CSS_SELECTOR, "path.village")) == 148
    assert len(overview.find_elements(By.CSS_SELECTOR, "path.village-hit")) == 1
    assert len(overview.find_elements(By.CSS_SELECTOR, "g.road-line")) == 1
    assert len(overview.find_elements(By.CSS_SELECTOR, "path.district-hit")) == 1
    daily = browser.find_element(By.ID, "daily-chart")
    assert daily.size["width"] > 300 and len(daily.find_elements(By.CSS_SELECTOR, "rect.day-bar")) == 3
    assert screenshot(browser, tmp_path, "list-overview.png").stat().st_size > 20_000

    # the state filter offers "all" and exactly the states an incident can have
    from selenium.webdriver.support.ui import Select, WebDriverWait

    state_options = Select(browser.find_element(By.NAME, "state")).options
    assert [o.get_attribute("value") for o in state_options] == ["", *STATES]
    Select(browser.find_element(By.NAME, "state")).select_by_value("acknowledged")
    submit_filters(browser)
    assert [r.get_attribute("data-id") for r in browser.find_elements(By.CSS_SELECTOR, "tr.incident")] == [str(ids["slide"])]
    Select(browser.find_element(By.NAME, "state")).select_by_value("")

    # filter as a person would: pick the hazard, submit, follow the link
    Select(browser.find_element(By.NAME, "hazard")).select_by_value("flood")
    submit_filters(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.incident")
    assert [r.get_attribute("data-id") for r in rows] == [str(ids["flood"])]
    rows[0].find_element(By.LINK_TEXT, "Kalibukbuk").click()
    WebDriverWait(browser, 30).until(lambda b: "/incidents/" in b.current_url)
    assert browser.current_url.endswith(f"/incidents/{ids['flood']}")
    svg_map = browser.find_element(By.ID, "incident-map")
    assert svg_map.size["width"] > 300 and svg_map.size["height"] > 200  # laid out, not collapsed
    assert len(svg_map.find_elements(By.CSS_SELECTOR, "path.affected-area")) == 1
    spots = svg_map.find_elements(By.CSS_SELECTOR, "g.evidence-point")
    assert sum(int(g.get_attribute("data-posts")) for g in spots) == 7
    chart = browser.find_element(By.ID, "incident-chart")
    assert chart.size["width"] > 300
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.bar")) > 3
    assert len(chart.find_elements(By.CSS_SELECTOR, "g.alert-marker")) == 2
    timeline = browser.find_element(By.ID, "timeline")
    kinds = [r.get_attribute("class") for r in timeline.find_elements(By.CSS_SELECTOR, "tr.event")]
    assert "event event-delivered" in kinds and "event event-acknowledged" in kinds and len(kinds) == 7
    assert "#bpbd-siaga" in timeline.text

    # the hostile post is shown as its text, and its script never ran
    evidence = browser.find_element(By.ID, "evidence")
    assert '<script>alert("xss")</script>' in evidence.text
    assert browser.execute_script("return document.querySelectorAll('#evidence script, #evidence img').length") == 0

    screenshot(browser, tmp_path, "village-incident.png")

    # a road incident: its kecamatan, its villages and the road's line, labelled approximate
    browser.get(f"{base}/incidents/{ids['jam']}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#incident-map path.affected-area")) == 24
    assert browser.find_element(By.ID, "incident-kecamatan").text == "Seririt"
    road = browser.find_element(By.CSS_SELECTOR, "#incident-map g.road")
    assert road.get_attribute("data-approximate") == "yes"
    line = road.find_element(By.CSS_SELECTOR, "path.road-line")
    assert line.size["width"] > 200  # drawn across the map, not a dot
    assert "jalur perkiraan" in browser.find_element(By.ID, "road-legend").text
    screenshot(browser, tmp_path, "road-incident.png")

    # acting from the page: acknowledge the jam with a note; the page says so and the timeline has it
    browser.find_element(By.ID, "action-note").send_keys("tim Dishub menuju lokasi")
    old = browser.find_element(By.ID, "actions")
    browser.find_element(By.ID, "action-acknowledge").click()
    wait_for_new_page(browser, old)
    assert browser.find_element(By.ID, "action-result").text.startswith("Tercatat: ditangani oleh made.browser. (recorded: acknowledged by made.browser)")
    assert browser.find_element(By.ID, "incident-state").text == "ditangani (acknowledged)"
    assert "made.browser" in browser.find_element(By.ID, "timeline").text
    assert not browser.find_elements(By.ID, "action-acknowledge") and browser.find_elements(By.ID, "action-resolve")
    shot = screenshot(browser, tmp_path, "page-action.png")
    assert shot.stat().st_size > 20_000
