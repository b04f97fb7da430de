"""The crews' map page (``GET /``) in a real headless Chromium (Debian's /usr/bin/chromium and chromedriver, driven
by selenium), against a real uvicorn server on a loopback port and a database filled by ingesting sample trips.

Skipped only when /usr/bin/chromium is absent (``.ci/run`` installs it). Everything runs in one browser session
(module fixtures), each test starting from a fresh page load; the PATCH test runs last in file order, since it
changes the database.
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


@pytest.fixture(scope="module")
def base_url(db_path: Path, crew_token: str) -> Iterator[str]:
    """The real service (api.create_app) under uvicorn on a free loopback port, in a thread of this process."""
    # privacy_trim_m=0: no defect is withheld near a trip's ends, so the page must show every defect stored
    settings = Settings(db_path=db_path, public_read=True, tile_url=None, privacy_trim_m=0.0)
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-map-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(WAIT_S)


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


def test_page_shows_every_defect_ranked_with_no_console_errors(driver: webdriver.Chrome, base_url: str,
                                                              db_path: Path, workdir: Path) -> None:
    every = _db_defects(db_path, status="all", kind="all")
    open_ = _db_defects(db_path, kind="all")
    assert len(every) >= 5 and len(open_) == len(every), "the sample trips should give several open defects"
    _open(driver, base_url)

    assert _console_errors(driver) == []
    assert sorted(_marker_ids(driver)) == sorted(d["id"] for d in every)
    assert _row_ids(driver) == [d["id"] for d in every], "the table is not in priority order"
    ranks = [int(r.find_element(By.CSS_SELECTOR, "td").text) for r in driver.find_elements(By.CSS_SELECTOR, ROWS)]
    assert ranks == list(range(1, len(every) + 1))
    first = driver.find_elements(By.CSS_SELECTOR, f"{ROWS}:first-child td")
    assert first[1].text == every[0]["kind"].replace("_", " ") and first[5].text == f"{every[0]['priority']:.1f}"

    # legend, and the view fitted to the defects: every marker inside the map's box
    assert "pothole" in driver.find_element(By.ID, "legend").text
    box = driver.find_element(By.ID, "map").rect
    for m in driver.find_elements(By.CSS_SELECTOR, MARKERS):
        r = m.rect
        cx, cy = r["x"] + r["width"] / 2, r["y"] + r["height"] / 2
        assert box["x"] <= cx <= box["x"] + box["width"] and box["y"] <= cy <= box["y"] + box["height"]
    sizes = {m.get_attribute("data-defect-id"): m.rect["width"] for m in driver.find_elements(By.CSS_SELECTOR, MARKERS)}
    top, bottom = str(every[0]["id"]), str(every[-1]["id"])
    assert sizes[top] > sizes[bottom], "markers are not sized by priority"

    shot = workdir / "map.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    _keep_screenshot(driver, "map.png")
    _assert_local_only(driver, base_url)


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
    assert _console_errors(driver) == []
    _assert_local_only(driver, base_url)


def test_row_and_marker_selection_open_the_detail_with_hits(driver: webdriver.Chrome, base_url: str, db_path: Path,
                                                            crew_token: str) -> None:
    every = _db_defects(db_path, status="all", kind="all")
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
    driver.find_element(By.ID, "t-roughness").click()
    _idle(driver)
    assert driver.find_elements(By.CSS_SELECTOR, "path.rough-cell") == []
    assert _console_errors(driver) == []
    _assert_local_only(driver, base_url)


def test_mark_repaired_patches_with_the_crew_token(driver: webdriver.Chrome, base_url: str, db_path: Path,
                                                   crew_token: str) -> None:
    target = _db_defects(db_path, kind="all")[0]
    # a wrong token kept from an earlier visit: reads are public, so the page still loads and says so
    _open(driver, base_url, token="not-a-token")
    assert "not accepted" in driver.find_element(By.ID, "token-error").text
    assert _row_ids(driver)[0] == target["id"]
    driver.find_element(By.CSS_SELECTOR, f"{ROWS}[data-defect-id='{target['id']}']").click()
    _idle(driver)

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
    # the open list no longer holds it; the "all" list shows it as repaired
    assert target["id"] not in _row_ids(driver)
    Select(driver.find_element(By.ID, "f-status")).select_by_value("all")
    _idle(driver)
    row = driver.find_element(By.CSS_SELECTOR, f"{ROWS}[data-defect-id='{target['id']}']")
    assert row.find_elements(By.TAG_NAME, "td")[2].text == "repaired"
    _keep_screenshot(driver, "repaired.png")
    assert _console_errors(driver, allowed=("status of 401", "status of 422", "status of 400")) == []
    _assert_local_only(driver, base_url)


# -------------------------------------------------------------------------------------------------- helpers


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
