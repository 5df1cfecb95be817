"""The dashboard server: what it serves, what it refuses, where it listens, and its drawing."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import urllib.request
from urllib.parse import urlsplit

import networkx as nx
import pytest

from celestialflow import ConfigurationError, TaskChain, TaskGraph, TaskManager
from celestialflow.dashboard import parse_address
from celestialflow.dashboard.drawing import layout, svg


def inc(x):
    return x + 1


def picky(x):
    if x % 10 == 0:
        raise ValueError(f"no multiples of ten: {x}")
    return x


@pytest.fixture
def served():
    """A chain that has run with its dashboard open on a free port (closed afterwards)."""
    g = TaskChain([TaskManager(inc, log_to_file=False), TaskManager(picky, log_to_file=False)])
    g.start(list(range(50)), dashboard=0)
    yield g
    g.close_dashboard()


def request(url: str, method: str = "GET", path: str | None = None) -> tuple[int, bytes, dict]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, path if path is not None else parts.path + (f"?{parts.query}" if parts.query else ""))
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, dict(resp.getheaders())


def test_status_api_is_get_status_dict_and_the_final_state_stays(served):
    url = served.dashboard_url
    assert url.startswith("http://127.0.0.1:") and "/g/TaskChain-" in url
    root = url.split("/g/")[0]
    status, body, headers = request(root + "/api/status")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == json.loads(json.dumps(served.get_status_dict()))
    status, body, _ = request(url + "api/snapshot")
    snap = json.loads(body)
    assert snap["state"] == "failed" and snap["totals"]["failed"] == 5
    failures = [e for e in snap["events"] if e["kind"] == "task_failed"]
    assert len(failures) == 5 and failures[0]["error"] == "ValueError" and "Traceback" in failures[0]["traceback"]
    status, body, headers = request(url)
    assert status == 200 and b"app.js" in body and "default-src 'self'" in headers["Content-Security-Policy"]
    status, body, _ = request(url + "api/graph.svg")
    assert status == 200 and b'data-stage="picky"' in body and b"\xe2\x9c\x97 5" in body  # the failure count
    status, _, headers = request(root + "/")
    assert status == 302 and headers["Location"] == urlsplit(url).path


def test_page_loads_nothing_from_elsewhere(served):
    url = served.dashboard_url
    for name in ("", "static/app.js", "static/style.css"):
        status, body, _ = request(url + name)
        assert status == 200
        text = body.decode().replace("http://www.w3.org/2000/svg", "")  # a namespace name, not a fetch
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


@pytest.mark.parametrize(
    "path",
    [
        "/g/{id}/static/../../../../etc/passwd",
        "/g/{id}/static/%2e%2e/%2e%2e/server.py",
        "/g/{id}/static/../server.py",
        "/g/{id}/static/",
        "/g/{id}/static//etc/passwd",
        "/etc/passwd",
        "/g/{id}/../../etc/passwd",
        "/static/app.js",
        "/g/{id}/api/unknown",
    ],
)
def test_refuses_paths_outside_its_static_files(served, path):
    d = served.dashboard
    status, body, _ = request(served.dashboard_url, path=path.format(id=d.id))
    assert status == 404
    assert b"root:" not in body and b"import" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW"])
def test_refuses_every_method_but_get(served, method):
    status, _, headers = request(served.dashboard_url + "api/status", method)
    assert status == 405 and headers.get("Allow") == "GET"


def test_refuses_another_graph_id(served):
    root = served.dashboard_url.split("/g/")[0]
    for path in ("/g/other-123456/", "/g/other-123456/api/status", "/g/other-123456/api/snapshot",
                 "/api/status?graph=other-123456"):
        status, body, _ = request(root + path)
        assert status == 404 and b"no graph" in body
    status, _, _ = request(root + f"/api/status?graph={served.dashboard.id}")
    assert status == 200


def test_binds_to_loopback_and_warns_for_another_address():
    assert parse_address(True) == ("127.0.0.1", None)
    assert parse_address(8765) == ("127.0.0.1", 8765)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ConfigurationError, match="dashboard="):
        parse_address("here:port")
    g = TaskChain([TaskManager(inc, log_to_file=False)])
    g.open_dashboard(0)
    assert g.dashboard.host == "127.0.0.1"
    g.close_dashboard()
    assert g.dashboard_url is None
    with pytest.warns(UserWarning, match="not only on this machine"):
        g.open_dashboard("127.0.0.2:0")
    try:
        assert g.dashboard.host == "127.0.0.2"
    finally:
        g.close_dashboard()


def test_close_dashboard_stops_serving():
    g = TaskChain([TaskManager(inc, log_to_file=False)])
    url = g.open_dashboard(0)
    g.start([1, 2, 3])
    assert request(url + "api/status")[0] == 200
    g.close_dashboard()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "api/status", timeout=2)


def test_open_dashboard_again_reuses_the_server():
    g = TaskChain([TaskManager(inc, log_to_file=False)])
    url = g.open_dashboard(0)
    try:
        g.start([1], dashboard=True)  # already open: same server, same address
        assert g.dashboard_url == url
    finally:
        g.close_dashboard()


def test_import_celestialflow_imports_no_server():
    code = ("import sys, celestialflow; bad = [m for m in sys.modules if m.startswith("
            "('celestialflow.dashboard', 'celestialflow.observe', 'http.server'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("use_graphviz", [False, True])
def test_drawing_shows_every_stage_and_edge(use_graphviz):
    if use_graphviz:
        from celestialflow.dot import dot_available

        if not dot_available():
            pytest.skip("Graphviz's dot program is not installed")
    g = nx.DiGraph([("read", "parse"), ("parse", "peaks"), ("peaks", "parse"), ("read", "stats")])
    lay = layout(g, use_graphviz=use_graphviz)
    assert lay.engine == ("graphviz" if use_graphviz else "builtin")
    assert set(lay.nodes) == {"read", "parse", "peaks", "stats"} and len(lay.edges) == 4
    for x, y, w, h in lay.nodes.values():
        assert 0 <= x and x + w <= lay.width and 0 <= y and y + h <= lay.height
    boxes = list(lay.nodes.values())
    for i, a in enumerate(boxes):  # no two boxes overlap
        for b in boxes[i + 1:]:
            assert a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]
    text = svg(lay, {"parse": {"state": "running", "succeeded": 1234, "failed": 2, "queued": 7, "in_flight": 3,
                               "total": 10, "done": 5}})
    assert 'data-stage="parse"' in text and "1,234" in text and "✗ 2" in text and "queued 7" in text
    assert text.count("<path class=\"edge\"") == 4


def test_drawing_escapes_names():
    g = nx.DiGraph([("<b>&", 'say "hi"')])
    text = svg(layout(g, use_graphviz=False), {})
    assert "<b>&" not in text and "&lt;b&gt;&amp;" in text


def test_live_display_updates_in_place(capsys):
    pytest.importorskip("IPython")
    gate = threading.Event()

    def hold(x):
        gate.wait(10)
        return x

    g = TaskGraph("nb")
    a = g.add_stage(TaskManager(inc, name="a", log_to_file=False))
    b = g.add_stage(TaskManager(hold, name="b", log_to_file=False))
    g.connect(a, b)
    live = g.live(interval=0.05)
    try:
        assert "idle" in live.html()
        t = threading.Thread(target=g.start_graph, args=({a: list(range(20))},))
        t.start()
        gate.set()
        t.join(10)
        html = live.html()
        assert "finished" in html and 'data-stage="b"' in html and ">20</td>" in html
    finally:
        live.stop()
    assert not g.events  # the observer stopped listening


PIPELINE = '''
from celestialflow import TaskChain, TaskManager

def inc(x):
    return x + 1

def picky(x):
    if x % 10 == 0:
        raise ValueError(f"no multiples of ten: {x}")
    return x

graph = TaskChain([TaskManager(inc, log_to_file=False), TaskManager(picky, log_to_file=False)])

def tasks():
    return list(range(100))
'''


def test_serve_command_runs_the_graph_and_keeps_serving_until_ctrl_c(tmp_path):
    import os
    import re
    import signal
    import time

    (tmp_path / "pipe.py").write_text(PIPELINE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celestialflow.cli", "serve", "pipe:graph", "--tasks", "pipe:tasks", "--port", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            found = re.search(r"(http://127\.0\.0\.1:\d+/g/[^/]+/)", line)
            url = found.group(1) if found else None
        assert url is not None, "the command printed no address"
        while "until Ctrl-C" not in proc.stdout.readline():
            assert time.monotonic() < deadline
        status, body, _ = request(url + "api/status")
        counts = json.loads(body)
        assert status == 200 and counts["picky"]["failed"] == 10 and counts["inc"]["state"] == "finished"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0


def test_serve_command_refuses_a_bad_target(tmp_path):
    out = subprocess.run([sys.executable, "-m", "celestialflow.cli", "serve", "nosuchmodule:graph", "--exit"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 2 and "cannot import 'nosuchmodule'" in out.stderr


def test_ipv6_loopback_is_local():
    import socket

    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    g = TaskChain([TaskManager(inc, log_to_file=False)])
    try:
        url = g.open_dashboard("[::1]:0")
    except ConfigurationError as exc:
        pytest.skip(f"cannot bind ::1 here: {exc}")
    try:
        assert url.startswith("http://[::1]:")
        assert request(url + "api/status")[0] == 200
    finally:
        g.close_dashboard()


LIVE_CELL = '''
import time
from celestialflow import TaskChain, TaskManager

def slow(x):
    time.sleep(0.002)
    return x

chain = TaskChain([TaskManager(slow, log_to_file=False), TaskManager(slow, log_to_file=False)])
live = chain.live(interval=0.1)
chain.start(list(range(400)))
time.sleep(0.5)   # the display's thread draws the final state
live.stop()
'''


def test_live_display_in_a_real_kernel_updates_one_output_in_place(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LIVE_CELL)])
    updates = []

    class Client(nbclient.NotebookClient):
        def process_message(self, msg, cell, cell_index):
            if msg["msg_type"] == "update_display_data":
                updates.append(msg["content"]["data"]["text/html"])
            return super().process_message(msg, cell, cell_index)

    Client(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert len(shown) == 1, "one output, updated in place"
    final = shown[0]["data"]["text/html"]
    assert "finished" in final and "<svg" in final and ">400</td>" in final
    assert len(updates) >= 2 and any("running" in u for u in updates)


def test_refuses_a_request_for_another_host_name(served):
    """A page on another domain made to resolve to 127.0.0.1 (DNS rebinding) reads nothing."""
    parts = urlsplit(served.dashboard_url)
    for host, expected in ((f"evil.example:{parts.port}", 403), ("evil.example", 403),
                           (f"localhost:{parts.port}", 200), (f"127.0.0.1:{parts.port}", 200)):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.putrequest("GET", "/api/status", skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status == expected, host
