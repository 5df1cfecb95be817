"""The dashboard page in a real headless Chromium, against a real server on 127.0.0.1.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and
the selenium package; skips, saying which is missing, otherwise.
"""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from celestialflow import TaskGraph, TaskManager

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FIELDS = ("received", "succeeded", "failed", "retried", "duplicated", "in_flight", "queued")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="no headless browser: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@pytest.fixture
def browser(tmp_path, monkeypatch):
    webdriver = pytest.importorskip("selenium.webdriver", reason="the selenium package is not installed")
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # never let selenium look for a driver or browser online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


def parse(x):
    if x % 25 == 7:
        raise ValueError(f"cannot parse record {x}")
    return x * 2


def double(x):
    return x + 1


def wait_for(check, timeout=40.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last is True:
                return
        except Exception as exc:  # the page is still loading or redrawing
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def page_numbers(driver, stage):
    from selenium.webdriver.common.by import By

    row = driver.find_element(By.CSS_SELECTOR, f'#stages tr[data-stage="{stage}"]')
    cells = {c.get_attribute("data-field"): c for c in row.find_elements(By.CSS_SELECTOR, "td[data-field]")}
    out = {f: int(cells[f].text.replace(",", "")) for f in FIELDS}
    out["state"] = cells["state"].get_attribute("data-state")
    return out


def status_numbers(status, stage):
    s = status[stage]
    return {"received": s["processed"] + s["waiting"], "succeeded": s["succeeded"], "failed": s["failed"],
            "retried": s["retried"], "duplicated": s["duplicated"], "in_flight": s["in_flight"],
            "queued": s["waiting"], "state": s["state"]}


def test_page_shows_the_run_live_its_failures_and_the_final_state(browser, tmp_path):
    from selenium.webdriver.common.by import By

    gate = threading.Event()

    def hold(x):
        gate.wait(120)  # keeps the last stage busy so the page can be compared while the run is on
        return x

    g = TaskGraph("watched")
    read = g.add_stage(TaskManager(double, name="read", log_to_file=False))
    parse_stage = g.add_stage(TaskManager(parse, name="parse", log_to_file=False))
    sink = g.add_stage(TaskManager(hold, name="sink", log_to_file=False))
    side = g.add_stage(TaskManager(double, name="stats", log_to_file=False))
    g.connect(read, [parse_stage, side])
    g.connect(parse_stage, sink)
    run = threading.Thread(target=g.start_graph, args=({read: list(range(400))},), kwargs={"dashboard": 0})
    run.start()
    try:
        wait_for(lambda: g.dashboard_url is not None, what="the dashboard")
        url = g.dashboard_url
        assert url.startswith("http://127.0.0.1:")
        # while the sink is held, every counter is still: the page must show exactly get_status_dict()
        wait_for(lambda: all(g.get_status_dict()[n]["state"] != "running" for n in ("read", "parse", "stats")),
                 what="the upstream stages to finish")
        browser.get(url)
        status = g.get_status_dict()
        assert status["sink"]["state"] == "running"
        for stage in status:
            wait_for(lambda stage=stage: page_numbers(browser, stage) == status_numbers(status, stage),
                     what=f"the page's numbers for {stage}")
        assert browser.find_element(By.ID, "run-state").get_attribute("data-state") == "running"
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, '#drawing [data-stage="sink"]')) == 1,
                 what="the drawing")
        # the failures: type and message, and the filter by stage
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#failures .failure")) == 16,
                 what="16 failures in the list")

        def first_failure_names_its_error():  # read again if the list is redrawn meanwhile
            first = browser.find_element(By.CSS_SELECTOR, '#failures .failure[data-stage="parse"]')
            return "ValueError" in first.text and "cannot parse record" in first.text

        wait_for(first_failure_names_its_error, what="the failure's type and message")
        browser.save_screenshot(str(tmp_path / "dashboard-running.png"))
        wait_for(lambda: browser.find_element(By.CSS_SELECTOR, '#stages tr[data-stage="stats"]').click() is None,
                 what="a click on the stats row")
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#failures .failure")) == 0,
                 what="the failure list filtered to a stage without failures")
        wait_for(lambda: browser.find_element(By.CSS_SELECTOR, '#stages tr[data-stage="stats"]').click() is None,
                 what="a click back to all stages")
    finally:
        gate.set()
        run.join(30)
    # after the run: the server still answers and the page shows the final state
    final = g.get_status_dict()
    wait_for(lambda: browser.find_element(By.ID, "run-state").get_attribute("data-state") == "failed",
             what="the final state")
    for stage in final:
        wait_for(lambda stage=stage: page_numbers(browser, stage) == status_numbers(final, stage),
                 what=f"the final numbers for {stage}")
    wait_for(lambda: page_numbers(browser, "sink")["succeeded"] == 384, what="384 in the sink's row")
    # a reload starts from nothing and shows the same
    browser.refresh()
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#failures .failure")) == 16,
             what="the failures after a reload")
    wait_for(lambda: page_numbers(browser, "sink") == status_numbers(final, "sink"), what="numbers after a reload")
    shot = tmp_path / "dashboard-final.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    g.close_dashboard()


def test_watch_dashboard_draws_the_spectra_in_the_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from waveform_analysis import Context, standard_plugins
    from waveform_analysis.synthetic import generate_run

    daq = tmp_path / "DAQ"
    generate_run(daq, "run_001", layout="compass2", n_channels=2, n_waveforms=30, n_samples=256, n_segments=2, seed=0)
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(daq)})
    ctx.register(standard_plugins())
    watcher = ctx.watch("peaks", background=True, poll=True, interval=0.05, settle=0, dashboard=0)
    try:
        browser.get(watcher.dashboard.url)
        wait_for(lambda: watcher.status().get("run_001", {}).get("state") == "done", timeout=120, what="the run")

        def runs_row_says_done():
            cell = browser.find_element(By.CSS_SELECTOR, '[data-panel="runs"] td[data-field="state"]')
            return cell.text == "done"

        wait_for(runs_row_says_done, what="the run's state on the page")
        lines = '[data-panel="spectra"] [data-chart="run_001"] polyline[data-series]'
        wait_for(lambda: {p.get_attribute("data-series") for p in browser.find_elements(By.CSS_SELECTOR, lines)}
                 == {"0:0", "0:1"}, what="one spectrum line per channel")
        rates = '[data-panel="rates"] tbody tr'
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, rates)) == 2, what="the rates table")
        assert not browser.find_element(By.ID, "stages").is_displayed()  # no graph: its sections are hidden
        browser.save_screenshot(str(tmp_path / "watch-dashboard.png"))
    finally:
        watcher.stop()
        watcher.dashboard.close()
    print(tmp_path / "watch-dashboard.png")
