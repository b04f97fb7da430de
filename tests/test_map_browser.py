"""The crews' map page (``GET /``) in a real headless Chromium (Debian's /usr/bin/chromium and chromedriver, driven
by selenium), against a real uvicorn server on a loopback port and a database filled by ingesting sample trips.

Skipped only when /usr/bin/chromium is absent (``.ci/run`` installs it). Everything runs in one browser session
(module fixtures), each test starting from a fresh page load; the PATCH test runs last in file order, since it
changes the database. Two more servers share the session: one on an empty database, one with a tile server
configured (on loopback: no request leaves the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium: install Debian's chromium and chromium-driver (apt-get install -y chromium "
                "chromium-driver; .ci/run does) to run the browser test", allow_module_level=True)

from selenium import webdriver  # noqa: E402  (selenium: in the `test` extra)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

import ingest  # noqa: E402
from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from bump import pipeline, views  # noqa: E402
from bump.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRIPS = sorted((ROOT / "sample_traces" / "trips").glob("*.json.gz"))[:8]     # 4 drivers x 2 trips: ~2 s
WAIT_S = 10.0
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

MARKERS = "path.defect-marker"
ROWS = "#defects tbody tr"


# --------------------------------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="bump-map-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def db_path(workdir: Path) -> Path:
    path = workdir / "bump.sqlite"
    with Store.open(path) as store:
        for f in TRIPS:
            pipeline.ingest_trace(store, ingest.read(f))
    return path


@pytest.fixture(scope="module")
def crew_token(db_path: Path) -> str:
    """A crew token made the way an operator makes one: `bump token create` prints it alone on its last line."""
    out = subprocess.run([sys.executable, "-m", "bump.cli.main", "token", "create", "--role", "crew", "--label",
                          "north depot", "--db", str(db_path)], capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def _serve(settings: Settings, port: int | None = None) -> Iterator[str]:
    """The real service (api.create_app) under uvicorn on a free loopback port, in a thread of this process."""
    app = create_app(settings)
    port = port or _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-map-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(WAIT_S)


@pytest.fixture(scope="module")
def base_url(db_path: Path, crew_token: str) -> Iterator[str]:
    # privacy_trim_m=0: no defect is withheld near a trip's ends, so the page must show every defect stored
    with _serve(Settings(db_path=db_path, public_read=True, tile_url=None, privacy_trim_m=0.0,
                         warm_up=False)) as url:
        yield url


# -------------------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def driver(workdir: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,800", f"--user-data-dir={workdir / 'chromium-profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    drv.set_page_load_timeout(30)
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",      # the page's viewport: 1280 x 800 CSS px
                        {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield drv
    finally:
        drv.quit()


def _wait(driver: webdriver.Chrome, what: str, predicate: Any) -> Any:
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(lambda d: predicate(d), message=what)


def _idle(driver: webdriver.Chrome) -> None:
    """Wait until the page has no API request in flight (app.js counts them in body[data-busy])."""
    _wait(driver, "page idle", lambda d: d.execute_script("return document.body.dataset.busy") == "0")


def _open(driver: webdriver.Chrome, base_url: str, *, token: str | None = None) -> None:
    driver.get(base_url)
    driver.execute_script("sessionStorage.clear()" if token is None
                          else f"sessionStorage.setItem('bump.crewToken', {token!r})")
    driver.get(base_url)            # reload: the token (or its absence) is read at start
    _idle(driver)


def _console_errors(driver: webdriver.Chrome, allowed: tuple[str, ...] = ()) -> list[str]:
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(a in e["message"] for a in allowed)]


def _marker_ids(driver: webdriver.Chrome) -> list[int]:
    return [int(m.get_attribute("data-defect-id")) for m in driver.find_elements(By.CSS_SELECTOR, MARKERS)]


def _row_ids(driver: webdriver.Chrome) -> list[int]:
    return [int(r.get_attribute("data-defect-id")) for r in driver.find_elements(By.CSS_SELECTOR, ROWS)]


def _db_defects(db_path: Path, **filters: Any) -> list[dict[str, Any]]:
    with Store.open(db_path, create=False) as store:
        return views.list_defects(store, limit=5000, **filters).defects


@pytest.fixture(autouse=True)
def _fresh_logs(driver: webdriver.Chrome) -> None:
    driver.get_log("browser")       # drop what an earlier test left
    driver.get_log("performance")


# ---------------------------------------------------------------------------------------------------- tests


def test_page_shows_the_crews_default_list_ranked_with_no_console_errors(driver: webdriver.Chrome, base_url: str,
                                                                       db_path: Path, workdir: Path) -> None:
    every = _db_defects(db_path, status="all", kind="all")
    open_ = _db_defects(db_path, kind="all")
    default = _db_defects(db_path)                     # what GET /v1/defects lists with no kind: the crews' list
    assert len(every) >= 5 and len(open_) == len(every), "the sample trips should give several open defects"
    assert 3 <= len(default) < len(every), "the sample trips should give speed bumps or joints, off the default"
    _open(driver, base_url)

    assert _console_errors(driver) == []
    assert driver.find_element(By.ID, "f-kind").get_attribute("value") == ""
    asked = [u for u in _request_urls(driver) if "/v1/defects.geojson?" in u]
    assert asked and "kind=" not in asked[0], f"the default list must send no kind: {asked[0]}"
    assert sorted(_marker_ids(driver)) == sorted(d["id"] for d in default)
    assert _row_ids(driver) == [d["id"] for d in default], "the table is not the API's default list by priority"
    ranks = [int(r.find_element(By.CSS_SELECTOR, "td").text) for r in driver.find_elements(By.CSS_SELECTOR, ROWS)]
    assert ranks == list(range(1, len(default) + 1))
    first = driver.find_elements(By.CSS_SELECTOR, f"{ROWS}:first-child td")
    assert first[1].text == default[0]["kind"].replace("_", " ") and first[5].text == f"{default[0]['priority']:.1f}"
    assert "UTC" in driver.find_element(By.CSS_SELECTOR, "#defects thead th:last-child").text
    assert driver.find_element(By.ID, "fit").is_enabled() and not driver.find_element(By.ID, "empty").is_displayed()

    # legend, and the view fitted to the defects: every marker inside the map's box
    assert "pothole" in driver.find_element(By.ID, "legend").text
    box = driver.find_element(By.ID, "map").rect
    for m in driver.find_elements(By.CSS_SELECTOR, MARKERS):
        r = m.rect
        cx, cy = r["x"] + r["width"] / 2, r["y"] + r["height"] / 2
        assert box["x"] <= cx <= box["x"] + box["width"] and box["y"] <= cy <= box["y"] + box["height"]
    sizes = {m.get_attribute("data-defect-id"): m.rect["width"] for m in driver.find_elements(By.CSS_SELECTOR, MARKERS)}
    top, bottom = str(default[0]["id"]), str(default[-1]["id"])
    assert sizes[top] > sizes[bottom], "markers are not sized by priority"

    shot = workdir / "map.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    _keep_screenshot(driver, "map.png")
    _assert_local_only(driver, base_url)

    # "all" is still one choice away, speed bumps and joints included
    Select(driver.find_element(By.ID, "f-kind")).select_by_value("all")
    _idle(driver)
    _wait(driver, "every kind", lambda d: _row_ids(d) == [x["id"] for x in every])


def test_filters_requery_the_api(driver: webdriver.Chrome, base_url: str, db_path: Path) -> None:
    every = _db_defects(db_path, status="all", kind="all")
    potholes = _db_defects(db_path, status="all", kind="pothole")
    assert 0 < len(potholes) < len(every)
    _open(driver, base_url)
    Select(driver.find_element(By.ID, "f-kind")).select_by_value("pothole")
    _idle(driver)
    _wait(driver, "markers filtered", lambda d: len(_marker_ids(d)) == len(potholes))
    assert sorted(_marker_ids(driver)) == sorted(d["id"] for d in potholes)
    assert _row_ids(driver) == [d["id"] for d in potholes]
    assert {m.get_attribute("class").split()[1] for m in driver.find_elements(By.CSS_SELECTOR, MARKERS)} == {
        "kind-pothole"}

    Select(driver.find_element(By.ID, "f-kind")).select_by_value("all")
    Select(driver.find_element(By.ID, "f-status")).select_by_value("confirmed")
    _idle(driver)
    confirmed = [d["id"] for d in every if d["status"] == "confirmed"]
    assert 0 < len(confirmed) < len(every)
    _wait(driver, "status filter", lambda d: _row_ids(d) == confirmed)

    threshold = sorted(d["confidence"] for d in every)[len(every) // 2]
    Select(driver.find_element(By.ID, "f-status")).select_by_value("")
    box = driver.find_element(By.ID, "f-confidence")
    box.clear()
    box.send_keys(str(threshold), "\t")     # tab away: a change event
    _idle(driver)
    sure = [d["id"] for d in every if d["confidence"] >= threshold]
    assert 0 < len(sure) < len(every)
    _wait(driver, "min confidence filter", lambda d: _row_ids(d) == sure)
    assert not driver.find_element(By.ID, "f-confidence-error").is_displayed()

    # out of range or not a number: refused next to the field, no request, the list unchanged
    driver.execute_script("performance.clearResourceTimings()")
    for typed in ("1.5", "-0.2", "0,5"):
        box.send_keys(Keys.CONTROL, "a")            # select and type over (clear() would send a change: empty = 0)
        box.send_keys(typed, "\t")
        _idle(driver)
        message = driver.find_element(By.ID, "f-confidence-error")
        assert message.is_displayed() and "0 to 1" in message.text, typed
        assert box.get_attribute("aria-invalid") == "true"
        assert _row_ids(driver) == sure, f"{typed!r} changed the list"
        assert not driver.find_element(By.ID, "load-error").is_displayed()
    assert not [u for u in _request_urls(driver) if "defects.geojson" in u], "an invalid value was sent"
    box.clear()
    box.send_keys("0", "\t")
    _idle(driver)
    assert not driver.find_element(By.ID, "f-confidence-error").is_displayed()
    assert box.get_attribute("aria-invalid") == "false"
    assert _console_errors(driver) == []
    _assert_local_only(driver, base_url)


def test_a_new_list_starts_at_its_top_and_flags_a_detail_it_left_out(driver: webdriver.Chrome, base_url: str,
                                                                     db_path: Path) -> None:
    every = _db_defects(db_path, status="all", kind="all")
    potholes = {d["id"] for d in _db_defects(db_path, status="all", kind="pothole")}
    _open(driver, base_url)
    Select(driver.find_element(By.ID, "f-kind")).select_by_value("all")
    _idle(driver)
    _wait(driver, "every kind", lambda d: len(_row_ids(d)) == len(every))
    other = next(d for d in reversed(every) if d["id"] not in potholes)
    driver.find_element(By.CSS_SELECTOR, f"{ROWS}[data-defect-id='{other['id']}']").click()
    _idle(driver)
    assert not driver.find_element(By.ID, "detail-filtered").is_displayed()
    # a short table, scrolled down as a crew deep in a long list would be
    scrolled = driver.execute_script("const w = document.getElementById('list-wrap'); w.style.maxHeight = '70px';"
                                     "w.style.flex = 'none'; w.scrollTop = 1e6; return w.scrollTop")
    assert scrolled > 0
    Select(driver.find_element(By.ID, "f-kind")).select_by_value("pothole")
    _idle(driver)
    _wait(driver, "potholes", lambda d: set(_row_ids(d)) == potholes)
    assert driver.execute_script("return document.getElementById('list-wrap').scrollTop") == 0
    notice = driver.find_element(By.ID, "detail-filtered")
    assert notice.is_displayed() and f"#{other['id']}" in notice.text and "not in the list" in notice.text
    assert driver.find_element(By.ID, "detail").get_attribute("data-filtered-out") == "true"
    Select(driver.find_element(By.ID, "f-kind")).select_by_value("all")
    _idle(driver)
    _wait(driver, "back in the list", lambda d: not d.find_element(By.ID, "detail-filtered").is_displayed())
    assert _console_errors(driver) == []


def test_row_and_marker_selection_open_the_detail_with_hits(driver: webdriver.Chrome, base_url: str, db_path: Path,
                                                            crew_token: str) -> None:
    every = _db_defects(db_path)                    # the page's default list
    with Store.open(db_path, create=False) as store:
        n_hits = {d["id"]: len(store.hits_of_defects([d["id"]])) for d in every}
    # without a token the detail opens (reads are public) but hits are for crews only
    _open(driver, base_url)
    driver.find_elements(By.CSS_SELECTOR, ROWS)[0].click()
    _idle(driver)
    assert driver.find_element(By.ID, "detail").get_attribute("data-defect-id") == str(every[0]["id"])
    assert "crew token" in driver.find_element(By.ID, "hits-count").text
    assert driver.find_elements(By.CSS_SELECTOR, "#hits tbody tr") == []

    _open(driver, base_url, token=crew_token)
    target = every[1]
    driver.find_elements(By.CSS_SELECTOR, ROWS)[1].click()
    _idle(driver)
    detail = driver.find_element(By.ID, "detail")
    assert detail.is_displayed() and detail.get_attribute("data-defect-id") == str(target["id"])
    assert f"#{target['id']}" in driver.find_element(By.ID, "detail-title").text
    hit_rows = driver.find_elements(By.CSS_SELECTOR, "#hits tbody tr")
    assert len(hit_rows) == n_hits[target["id"]] > 0
    assert "UTC" in driver.find_element(By.CSS_SELECTOR, "#hits thead th").text
    fields = {dt.text: dt.find_element(By.XPATH, "following-sibling::dd[1]").text
              for dt in driver.find_elements(By.CSS_SELECTOR, "#detail-fields dt")}
    assert fields["first seen"].endswith(" UTC") and fields["last seen"].endswith(" UTC"), fields
    assert driver.find_element(By.CSS_SELECTOR, "#history li .meta").text.split(" by ")[0].endswith(" UTC")
    selected = driver.find_elements(By.CSS_SELECTOR, f"{MARKERS}.selected")
    assert [m.get_attribute("data-defect-id") for m in selected] == [str(target["id"])]
    assert driver.find_element(By.CSS_SELECTOR, f"{ROWS}.selected").get_attribute("data-defect-id") == str(
        target["id"])
    assert "new → candidate" in driver.find_element(By.ID, "history").text

    # and the other way round: a marker's click selects its row
    other = every[-1]
    marker = driver.find_element(By.CSS_SELECTOR, f"{MARKERS}[data-defect-id='{other['id']}']")
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", marker)
    _idle(driver)
    _wait(driver, "row selected by marker", lambda d: d.find_element(By.CSS_SELECTOR, f"{ROWS}.selected")
          .get_attribute("data-defect-id") == str(other["id"]))
    assert driver.find_element(By.ID, "detail").get_attribute("data-defect-id") == str(other["id"])
    assert len(driver.find_elements(By.CSS_SELECTOR, "#hits tbody tr")) == n_hits[other["id"]]

    # hits in time order (oldest first, as the passes), for every defect with more than one
    with Store.open(db_path, create=False) as store:
        shuffled = [d["id"] for d in every
                    if len(t := store.hits_of_defects([d["id"]])["t_s"]) > 1 and list(t) != sorted(t)]
    assert shuffled, "the sample trips should give a defect whose hits were stored out of time order"
    for defect_id in shuffled:
        driver.find_element(By.CSS_SELECTOR, f"{ROWS}[data-defect-id='{defect_id}']").click()
        _idle(driver)
        _wait(driver, "detail", lambda d, i=defect_id: d.find_element(By.ID, "detail").get_attribute("data-status")
              and d.find_element(By.ID, "detail").get_attribute("data-defect-id") == str(i))
        times = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#hits tbody tr td:first-child")]
        assert len(times) == n_hits[defect_id] and times == sorted(times), (defect_id, times)
    assert _console_errors(driver) == []
    _assert_local_only(driver, base_url)


def test_layer_toggles_show_cells(driver: webdriver.Chrome, base_url: str) -> None:
    rough = httpx.get(base_url + "v1/roughness.geojson").json()["features"]
    cover = httpx.get(base_url + "v1/coverage.geojson").json()["features"]
    assert rough and cover
    _open(driver, base_url)
    assert driver.find_elements(By.CSS_SELECTOR, "path.rough-cell") == []
    driver.find_element(By.ID, "t-roughness").click()
    _idle(driver)
    _wait(driver, "roughness cells", lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.rough-cell")) == len(rough))
    colours = {c.get_attribute("fill") for c in driver.find_elements(By.CSS_SELECTOR, "path.rough-cell")}
    assert len(colours) > 1, "roughness cells are not coloured by IRI"
    assert "IRI" in driver.find_element(By.ID, "legend").text
    driver.find_element(By.ID, "t-coverage").click()
    _idle(driver)
    _wait(driver, "coverage cells", lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.coverage-cell")) == len(cover))
    _keep_screenshot(driver, "layers.png")

    # the legends are drawn from the cells' own scales: IRI labels where their colour is, coverage in passes
    placed = driver.execute_script("""return [...document.querySelectorAll('.legend .ramp-box')].map(box => {
      const r = box.querySelector('.ramp').getBoundingClientRect();
      return [...box.querySelectorAll('.ramp-labels span')].map(s => { const b = s.getBoundingClientRect();
        return [s.textContent, (b.x + b.width / 2 - r.x) / r.width]; }); })""")
    iri = {text: at for text, at in placed[0]}
    for text, value in (("≤1.5", 1.5), ("2.7", 2.7), ("4", 4.0), ("≥6", 6.0)):
        assert abs(iri[text] - (value - 1.5) / 4.5) < 0.02, (text, iri[text])
    gradient = driver.execute_script("return getComputedStyle(document.querySelector('.legend .ramp')).backgroundImage")
    assert "rgb(254, 224, 139) 26.7%" in gradient and "rgb(244, 109, 67) 55.6%" in gradient, gradient
    most = max(f["properties"]["passes"] for f in cover)
    counts = [int(text) for text, _ in placed[1]]
    assert counts[0] == 1 and counts[-1] == most and placed[1][-1][1] == pytest.approx(1.0, abs=0.02), placed[1]
    assert "passes" in driver.find_element(By.ID, "legend").text

    # cells are road cells on the ground: they grow when zoomed in (never below a few pixels)
    def widest(d: webdriver.Chrome) -> float:
        return float(d.execute_script("return Math.max(...[...document.querySelectorAll('path.rough-cell')]"
                                      ".map(p => p.getBoundingClientRect().width))"))
    before = widest(driver)
    assert before >= 6
    for _ in range(3):
        driver.find_element(By.CSS_SELECTOR, ".leaflet-control-zoom-in").click()
        time.sleep(0.3)
    _wait(driver, "cells scale with the zoom", lambda d: widest(d) > 2 * before)
    driver.find_element(By.ID, "t-roughness").click()
    _idle(driver)
    assert driver.find_elements(By.CSS_SELECTOR, "path.rough-cell") == []
    assert _console_errors(driver) == []
    _assert_local_only(driver, base_url)


def test_keyboard_goes_through_the_table_not_the_markers(driver: webdriver.Chrome, base_url: str,
                                                         db_path: Path) -> None:
    default = _db_defects(db_path)
    _open(driver, base_url)
    assert {m.get_attribute("tabindex") for m in driver.find_elements(By.CSS_SELECTOR, MARKERS)} == {"-1"}
    assert [r.get_attribute("tabindex") for r in driver.find_elements(By.CSS_SELECTOR, ROWS)] == [
        "0"] + ["-1"] * (len(default) - 1), "the table should be one Tab stop"
    driver.find_element(By.ID, "token").click()
    stops = []
    for _ in range(30):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        active = driver.switch_to.active_element
        stops.append(active.tag_name)
        if active.tag_name == "tr":
            break
    assert stops[-1] == "tr" and "path" not in stops, stops
    assert driver.switch_to.active_element.get_attribute("data-defect-id") == str(default[0]["id"])
    driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    _idle(driver)
    _wait(driver, "row chosen by keyboard", lambda d: d.find_element(By.ID, "detail").get_attribute(
        "data-defect-id") == str(default[2]["id"]))
    assert [r.get_attribute("tabindex") for r in driver.find_elements(By.CSS_SELECTOR, ROWS)].count("0") == 1
    # a marker focused by assistive technology: Enter chooses it
    marker = driver.find_element(By.CSS_SELECTOR, f"{MARKERS}[data-defect-id='{default[-1]['id']}']")
    driver.execute_script("arguments[0].focus()", marker)
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    _idle(driver)
    _wait(driver, "marker chosen by keyboard", lambda d: d.find_element(By.ID, "detail").get_attribute(
        "data-defect-id") == str(default[-1]["id"]))
    assert _console_errors(driver) == []


def test_an_800_by_600_window_stacks_the_map_above_the_list(driver: webdriver.Chrome, base_url: str,
                                                            db_path: Path) -> None:
    default = _db_defects(db_path)
    _viewport(driver, 800, 600)
    try:
        _open(driver, base_url)
        box = driver.find_element(By.ID, "map").rect
        assert box["width"] >= 780 and box["height"] >= 250, box
        centres = driver.execute_script("""return [...document.querySelectorAll('path.defect-marker')].map(m => {
          const r = m.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })""")
        assert len(centres) == len(default)
        for x, y in centres:
            assert box["x"] <= x <= box["x"] + box["width"] and box["y"] <= y <= box["y"] + box["height"]
        wrap = driver.execute_script("const w = document.getElementById('list-wrap');"
                                     "return [w.scrollWidth, w.clientWidth]")
        assert wrap[0] <= wrap[1], f"the table scrolls sideways: {wrap}"
        driver.find_elements(By.CSS_SELECTOR, ROWS)[0].click()
        _idle(driver)
        _wait(driver, "the crew's buttons in view", lambda d: d.execute_script(
            "const r = document.getElementById('mark-repaired').getBoundingClientRect();"
            "return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight"))
        _keep_screenshot(driver, "narrow_800x600.png")
        assert _console_errors(driver) == []
    finally:
        _viewport(driver, 1280, 800)


def test_more_defects_than_a_page_are_offered_page_by_page(driver: webdriver.Chrome, base_url: str,
                                                          db_path: Path) -> None:
    default = _db_defects(db_path)
    assert len(default) > 3
    _open(driver, base_url + "?page_size=3")
    assert _row_ids(driver) == [d["id"] for d in default[:3]]
    bar = driver.find_element(By.ID, "more-bar")
    assert bar.is_displayed() and "More defects match than the 3 shown" in bar.text
    driver.find_element(By.ID, "more").click()
    _idle(driver)
    _wait(driver, "next page", lambda d: _row_ids(d) == [x["id"] for x in default[:6]])
    assert sorted(_marker_ids(driver)) == sorted(d["id"] for d in default[:6])
    for _ in range(len(default) // 3):
        if not driver.find_element(By.ID, "more-bar").is_displayed():
            break
        driver.find_element(By.ID, "more").click()
        _idle(driver)
    assert _row_ids(driver) == [d["id"] for d in default]
    assert not driver.find_element(By.ID, "more-bar").is_displayed(), "the last page still offers more"

    # or only the map's view: the request carries its bbox, again after a move
    _open(driver, base_url)
    driver.execute_script("performance.clearResourceTimings()")
    driver.find_element(By.ID, "f-view").click()
    _idle(driver)
    _wait(driver, "bbox request", lambda d: any("bbox=" in u for u in _request_urls(d)))
    assert "in this map view" in driver.find_element(By.ID, "summary").text
    assert _console_errors(driver) == []


def test_an_empty_database_says_how_data_arrives(driver: webdriver.Chrome, workdir: Path) -> None:
    with _serve(Settings(db_path=workdir / "empty.sqlite", tile_url=None, warm_up=False)) as url:
        _open(driver, url)
        assert "no defects yet" in driver.find_element(By.ID, "summary").text
        empty = driver.find_element(By.ID, "empty")
        assert empty.is_displayed() and "bump ingest" in empty.text and "upload" in empty.text
        assert not driver.find_element(By.ID, "fit").is_enabled()
        _keep_screenshot(driver, "empty.png")
        assert _console_errors(driver) == []


def test_tiles_come_after_the_fit_with_their_attribution(driver: webdriver.Chrome, db_path: Path) -> None:
    port = _free_port()       # tiles from this same server (404s): nothing leaves the machine
    settings = Settings(db_path=db_path, privacy_trim_m=0.0, warm_up=False,
                        tile_url=f"http://127.0.0.1:{port}/test-tiles/{{z}}/{{x}}/{{y}}.png",
                        tile_attribution="© test tile makers")
    with _serve(settings, port) as url:
        assert httpx.get(url + "v1/config").json()["tile_attribution"] == "© test tile makers"
        _open(driver, url)
        _wait(driver, "tiles", lambda d: d.find_elements(By.CSS_SELECTOR, "img.leaflet-tile"))
        assert "© test tile makers" in driver.find_element(By.CSS_SELECTOR, ".leaflet-control-attribution").text
        zooms = {int(u.split("/test-tiles/")[1].split("/")[0]) for u in _request_urls(driver) if "/test-tiles/" in u}
        assert zooms and min(zooms) > 8, f"tiles of the whole world were asked for: zooms {sorted(zooms)}"
        assert _console_errors(driver, allowed=("/test-tiles/",)) == []


def test_mark_repaired_patches_with_the_crew_token(driver: webdriver.Chrome, base_url: str, db_path: Path,
                                                   crew_token: str) -> None:
    target = _db_defects(db_path)[0]
    # a wrong token kept from an earlier visit: reads are public, so the page still loads and says so
    _open(driver, base_url, token="not-a-token")
    assert "not accepted" in driver.find_element(By.ID, "token-error").text
    assert _row_ids(driver)[0] == target["id"]
    driver.find_element(By.CSS_SELECTOR, f"{ROWS}[data-defect-id='{target['id']}']").click()
    _idle(driver)
    # the hits are for crews: the section says the token was refused (the API's 401) and how to get one
    hint = driver.find_element(By.ID, "hits-count").text
    assert "not accepted" in hint and "401" in hint and "bump token create --role crew" in hint, hint

    # a PATCH with the wrong token: the JSON error body is shown, nothing changes
    driver.find_element(By.ID, "note").send_keys("patched, work order 123")
    driver.find_element(By.ID, "mark-repaired").click()
    _idle(driver)
    error = driver.find_element(By.ID, "action-error")
    assert error.is_displayed() and "401" in error.text
    assert _history(db_path, target["id"], "repaired") == []

    # the crew token pasted in the field, but no note: the API's message is shown
    token_box = driver.find_element(By.ID, "token")
    token_box.clear()
    token_box.send_keys(crew_token)
    driver.find_element(By.ID, "note").clear()
    driver.find_element(By.ID, "mark-repaired").click()
    _idle(driver)
    error = driver.find_element(By.ID, "action-error").text
    assert "422" in error and "note" in error
    assert _history(db_path, target["id"], "repaired") == []
    assert driver.execute_script("return sessionStorage.getItem('bump.crewToken')") == crew_token

    driver.find_element(By.ID, "note").send_keys("patched, work order 123")
    driver.find_element(By.ID, "mark-repaired").click()
    _idle(driver)
    _wait(driver, "status repaired", lambda d: d.find_element(By.ID, "detail").get_attribute("data-status")
          == "repaired")
    assert driver.find_element(By.CSS_SELECTOR, "#detail-fields dd[data-field='status']").text == "repaired"
    assert not driver.find_element(By.ID, "action-error").is_displayed()
    rows = _history(db_path, target["id"], "repaired")
    assert rows == [("patched, work order 123", "north depot")]
    assert "patched, work order 123" in driver.find_element(By.ID, "history").text
    # the open list no longer holds it, and the open detail says so; the "all" list shows it as repaired
    assert target["id"] not in _row_ids(driver)
    assert driver.find_element(By.ID, "detail-filtered").is_displayed()
    Select(driver.find_element(By.ID, "f-status")).select_by_value("all")
    _idle(driver)
    row = driver.find_element(By.CSS_SELECTOR, f"{ROWS}[data-defect-id='{target['id']}']")
    assert row.find_elements(By.TAG_NAME, "td")[2].text == "repaired"
    _keep_screenshot(driver, "repaired.png")

    # a mistake: the detail offers to undo it (reopen), not to mark it repaired again
    assert _shown_actions(driver) == {"reopen", "dismissed"}
    assert "repaired" in driver.find_element(By.ID, "mark-reopen").text
    driver.find_element(By.ID, "note").send_keys("wrong defect, clicked by mistake")
    driver.find_element(By.ID, "mark-reopen").click()
    _idle(driver)
    _wait(driver, "reopened", lambda d: d.find_element(By.ID, "detail").get_attribute("data-status")
          not in ("repaired", ""))
    after = httpx.get(base_url + f"v1/defects/{target['id']}").json()
    assert after["crew_status"] is None and after["status"] == target["status"]
    assert "Reopened" in driver.find_element(By.ID, "action-ok").text
    assert "reopen" not in _shown_actions(driver) and "repaired" in _shown_actions(driver)
    assert "wrong defect, clicked by mistake" in driver.find_element(By.ID, "history").text
    row = driver.find_element(By.CSS_SELECTOR, f"{ROWS}[data-defect-id='{target['id']}']")
    assert row.find_elements(By.TAG_NAME, "td")[2].text == target["status"].replace("_", " ")

    # a candidate seen on site: confirmed by the crew, and that decision can be undone too
    candidate = next(d for d in _db_defects(db_path) if d["status"] == "candidate")
    driver.find_element(By.CSS_SELECTOR, f"{ROWS}[data-defect-id='{candidate['id']}']").click()
    _idle(driver)
    assert _shown_actions(driver) == {"confirmed", "repaired", "dismissed"}
    driver.find_element(By.ID, "note").send_keys("seen on site, 10 cm deep")
    driver.find_element(By.ID, "mark-confirmed").click()
    _idle(driver)
    _wait(driver, "confirmed", lambda d: d.find_element(By.ID, "detail").get_attribute("data-status")
          == "confirmed")
    assert httpx.get(base_url + f"v1/defects/{candidate['id']}").json()["crew_status"] == "confirmed"
    assert _shown_actions(driver) == {"repaired", "dismissed", "reopen"}
    # the API's refusal is shown with what to do (a second confirm, sent by hand: 409)
    driver.execute_script("document.getElementById('mark-confirmed').hidden = false")
    driver.find_element(By.ID, "note").send_keys("again")
    driver.find_element(By.ID, "mark-confirmed").click()
    _idle(driver)
    error = driver.find_element(By.ID, "action-error").text
    assert "409" in error and "already confirmed" in error and "What to do" in error, error
    assert _console_errors(driver, allowed=("status of 401", "status of 422", "status of 400",
                                            "status of 409")) == []
    _assert_local_only(driver, base_url)


# -------------------------------------------------------------------------------------------------- helpers


def _request_urls(driver: webdriver.Chrome) -> list[str]:
    """The URLs the page fetched since it loaded (or since performance.clearResourceTimings())."""
    return driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")


def _shown_actions(driver: webdriver.Chrome) -> set[str]:
    """The crew decisions the open detail offers (visible buttons' data-status)."""
    return {b.get_attribute("data-status") for b in driver.find_elements(By.CSS_SELECTOR, "#actions button")
            if b.is_displayed()}


def _viewport(driver: webdriver.Chrome, width: int, height: int) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def _keep_screenshot(driver: webdriver.Chrome, name: str) -> None:
    """Save a screenshot into $BUMP_MAP_SCREENSHOTS (a folder) when set: for a person to look at the page."""
    folder = os.environ.get("BUMP_MAP_SCREENSHOTS")
    if folder:
        driver.save_screenshot(str(Path(folder) / name))


def _history(db_path: Path, defect_id: int, to_status: str) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return conn.execute("SELECT reason, actor FROM defect_history WHERE defect_id = ? AND to_status = ?",
                            (defect_id, to_status)).fetchall()


def _assert_local_only(driver: webdriver.Chrome, base_url: str) -> None:
    """Every request the page made (Chrome's network log and the page's resource timing) went to the server."""
    urls = [json.loads(e["message"])["message"]["params"]["request"]["url"]
            for e in driver.get_log("performance")
            if '"Network.requestWillBeSent"' in e["message"]]
    urls += driver.execute_script("return performance.getEntries().map(e => e.name)"
                                  ".filter(n => /^[a-z]+:/.test(n))")
    assert base_url + "static/vendor/leaflet/leaflet.js" in urls, "the network log was not read"
    assert any(u.startswith(base_url + "v1/defects.geojson?") for u in urls)
    far = [u for u in urls if not (u.startswith(("data:", "blob:", "about:"))
                                   or urlsplit(u).hostname in LOOPBACK)]
    assert far == [], f"requests left the machine: {far}"
