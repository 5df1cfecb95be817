"""Extra read-only panels on the dashboard server: served as JSON, refused when unknown or not GET,
and a DAQ watcher's runs, spectra and rates on them end to end."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from celestialflow import TaskChain, TaskManager
from celestialflow.dashboard import serve_panels
from waveform_analysis import Context, standard_plugins
from waveform_analysis.synthetic import generate_run

TIMEOUT = 120.0  # a loaded machine compiles the kernels on the first run


def inc(x):
    return x + 1


def request(url: str, path: str, method: str = "GET") -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def get_json(url: str, path: str):
    status, body = request(url, path)
    assert status == 200, body
    return json.loads(body)


@pytest.fixture
def panels_server():
    calls = []

    def table():
        calls.append(1)
        return {"kind": "table", "columns": ["a", "b"], "rows": [[1, "x"], [len(calls), "y"]]}

    def broken():
        raise RuntimeError("no data yet")

    server = serve_panels("lab", {"table": table, "broken": broken}, 0, quiet=True)
    yield server
    server.close()


def test_panels_are_served_as_json_and_computed_per_request(panels_server):
    s = panels_server
    prefix = f"/g/{s.id}/"
    assert get_json(s.url, prefix + "api/panels") == {"name": "lab", "graph": False, "panels": ["table", "broken"]}
    first = get_json(s.url, prefix + "api/panel/table")
    assert first["columns"] == ["a", "b"] and first["rows"][1] == [1, "y"]
    assert get_json(s.url, "/api/panel/table")["rows"][1] == [2, "y"]  # the address without the id too
    status, body = request(s.url, prefix + "api/panel/broken")
    assert status == 500 and b"RuntimeError: no data yet" in body
    status, body = request(s.url, prefix)
    assert status == 200 and b"static/app.js" in body


def test_unknown_panels_and_the_missing_graph_are_404(panels_server):
    s = panels_server
    for path in (f"/g/{s.id}/api/panel/nope", "/api/panel/nope", f"/g/{s.id}/api/panel/../static/app.js",
                 f"/g/{s.id}/api/panel/", "/api/status", f"/g/{s.id}/api/snapshot", f"/g/{s.id}/api/graph.svg"):
        status, _ = request(s.url, path)
        assert status == 404, path
    status, _ = request(s.url, "/g/other-123456/api/panel/table")
    assert status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD"])
def test_panels_refuse_every_method_but_get(panels_server, method):
    s = panels_server
    for path in (f"/g/{s.id}/api/panel/table", "/api/panel/table"):
        status, _ = request(s.url, path, method)
        assert status == 405


def test_a_graph_dashboard_serves_panels_beside_the_graph():
    g = TaskChain([TaskManager(inc, log_to_file=False)])
    g.start(list(range(5)), dashboard=0)
    try:
        d = g.dashboard
        d.add_panel("extra", lambda: {"n": 3})
        assert get_json(d.url, f"/g/{d.id}/api/panels")["graph"] is True
        assert get_json(d.url, f"/g/{d.id}/api/panel/extra") == {"n": 3}
        assert get_json(d.url, "/api/status")  # the graph's own routes are unchanged
        with pytest.raises(ValueError):
            d.add_panel("../x", dict)
    finally:
        g.close_dashboard()


def watched_daq(tmp_path: Path):
    daq = tmp_path / "DAQ"
    generate_run(daq, "run_001", layout="compass2", n_channels=2, n_waveforms=30, n_samples=256,
                 n_segments=2, seed=0)  # fmt: skip
    ctx = Context(storage_dir=tmp_path / "cache", config={"data_root": str(daq)})
    ctx.register(standard_plugins())
    watcher = ctx.watch("peaks", background=True, poll=True, interval=0.05, settle=0, dashboard=0)
    return ctx, watcher


def wait_done(watcher) -> dict:
    url, end = watcher.dashboard.url, time.monotonic() + TIMEOUT
    while True:
        runs = get_json(url, f"/g/{watcher.dashboard.id}/api/panel/runs")
        states = {row[0]: row[1] for row in runs["rows"]}
        if states.get("run_001") == "done":
            return runs
        assert time.monotonic() < end, runs
        time.sleep(0.1)


def test_watch_dashboard_shows_runs_spectra_and_rates(tmp_path):
    ctx, watcher = watched_daq(tmp_path)
    try:
        assert watcher.dashboard.url.startswith("http://127.0.0.1:")
        runs = wait_done(watcher)
        assert runs["columns"][:2] == ["run", "state"]
        prefix = f"/g/{watcher.dashboard.id}/api/panel/"
        spectra = get_json(watcher.dashboard.url, prefix + "spectra")
        rates = get_json(watcher.dashboard.url, prefix + "rates")
    finally:
        watcher.stop()
        watcher.dashboard.close()
    peaks = ctx.get_data("run_001", "peaks")
    [chart] = spectra["charts"]
    assert chart["title"] == "run_001"
    edges = np.asarray(chart["edges"])
    expected = {
        f"{b}:{c}": np.histogram(peaks["area"][(peaks["board"] == b) & (peaks["channel"] == c)], bins=edges)[0].tolist()
        for b, c in sorted(set(zip(peaks["board"].tolist(), peaks["channel"].tolist(), strict=True)))
    }  # fmt: skip
    assert chart["counts"] == expected and sum(map(sum, expected.values())) == len(peaks) > 0
    assert np.allclose(edges, np.histogram_bin_edges(peaks["area"], bins=100))
    assert {row[1] for row in rates["rows"]} == {"0:0", "0:1"} and all(row[2] > 0 for row in rates["rows"])
    assert rates["rows"] == [["run_001", k, v, "done"] for k, v in watcher.status()["run_001"]["rate_hz"].items()]


def test_watch_command_prints_its_dashboard_address(tmp_path):
    import subprocess
    import sys

    daq = tmp_path / "DAQ"
    generate_run(daq, "run_001", layout="compass2", n_channels=2, n_waveforms=10, n_samples=256, seed=0)
    out = subprocess.run(
        [sys.executable, "-m", "waveform_analysis", "watch", str(daq), "--dashboard", "--settle", "0",
         "--idle-exit", "0.2", "--interval", "0.1", "--poll", "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    )  # fmt: skip
    assert "dashboard: http://127.0.0.1:" in out.stdout and "run_001" in out.stdout, out.stdout + out.stderr
