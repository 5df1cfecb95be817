"""A read-only HTTP server for one graph's live view, on the standard library.

``http.server.ThreadingHTTPServer`` in a daemon thread: the page is a handful of
static files and JSON polled about once a second by a few browsers, which needs
no framework, no event loop of our own beside the graph's threads and no
dependency (so the dashboard works wherever celestialflow does, and an asyncio
server cannot clash with a notebook's running loop). Every answer is computed
from the observer's snapshot; nothing a request says reaches the graph.

Routes (``<id>`` is the graph id, a slug of its name plus a random suffix, so a
page left open from an earlier process is told its graph is gone)::

    GET /                         -> redirect to /g/<id>/
    GET /g/<id>/                  -> the page
    GET /g/<id>/static/<file>     -> one of the files shipped in dashboard/static
    GET /g/<id>/api/snapshot      -> observer snapshot + history + events + drawing (?since=<seq>&selected=<stage>)
    GET /g/<id>/api/graph.svg     -> the drawing coloured by the current state (?selected=<stage>)
    GET /api/status, /g/<id>/api/status -> graph.get_status_dict() as JSON
    GET /g/<id>/api/panels        -> {"name", "graph": bool, "panels": [names]}
    GET /api/panel/<name>, /g/<id>/api/panel/<name> -> a registered panel's data as JSON

Panels are a caller's extra read-only views (:meth:`DashboardServer.add_panel`): a
name and a zero-argument callable returning JSON-ready data, called once per
request. The page draws a panel shaped ``{"kind": "table", "columns", "rows"}`` as
a table and ``{"kind": "histograms", "charts": [{"title", "edges", "counts":
{label: [...]}}]}`` as small step charts; anything else as its JSON. A server
made with ``graph=None`` shows its panels only (``/api/status`` and the snapshot
are then 404): so a program without a TaskGraph, such as a folder watcher, gets
the same page without celestialflow knowing what its panels hold.

Anything else is 404; any method but GET is 405; on a loopback address, a request
whose Host header names another host is 403 (DNS rebinding).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..observe import GraphObserver
from .drawing import Layout, layout, svg

if TYPE_CHECKING:
    from ..graph import TaskGraph

LOOPBACK = ("127.0.0.1", "localhost", "::1")
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # the page loads its own files only: nothing from another origin, no inline script
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "frame-ancestors 'none'; form-action 'none'",
}


def _static_files() -> dict[str, bytes]:
    """The page's files, read once: the only files the server ever sends."""
    folder = resources.files(__package__).joinpath("static")
    return {entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.is_file()}


def graph_id(name: str) -> str:
    """A URL-safe id for the graph called ``name``, unique to this server."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "graph"
    return f"{slug}-{secrets.token_hex(3)}"


class DashboardServer:
    """Serves the live view of ``graph`` on ``host:port`` until :meth:`close` (see the module docstring)."""

    def __init__(self, graph: TaskGraph | None, host: str = "127.0.0.1", port: int = 8765, *, interval: float = 1.0,
                 panels: dict[str, Callable[[], Any]] | None = None, name: str | None = None) -> None:
        self.graph = graph
        self.name = name or (graph.name if graph is not None else "dashboard")
        self.id = graph_id(self.name)
        self.observer = GraphObserver(graph, interval=interval) if graph is not None else None
        self.static = _static_files()
        self.panels: dict[str, Callable[[], Any]] = {}
        for panel, func in (panels or {}).items():
            self.add_panel(panel, func)
        self._layout: tuple[tuple[Any, ...], Layout] | None = None
        self._layout_lock = threading.Lock()
        if graph is not None:
            self.layout()  # now, before the run: Graphviz is a subprocess, not something to start mid-run
        handler = type("Handler", (_Handler,), {"dashboard": self})
        server_class = _Server6 if ":" in host else _Server
        self.httpd = server_class((host, port), handler)
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.5},
                                       name=f"cf-dashboard-{self.port}", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in str(self.host) else self.host
        return f"http://{host}:{self.port}/g/{self.id}/"

    def add_panel(self, name: str, func: Callable[[], Any]) -> None:
        """Serve ``func()`` (JSON-ready data, computed per request) at ``api/panel/<name>``."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
            raise ValueError(f"panel name {name!r}: letters, digits, '_' and '-' only (at most 40)")
        if not callable(func):
            raise TypeError(f"panel {name!r}: expected a zero-argument callable, got {type(func).__name__}")
        self.panels[name] = func

    def close(self) -> None:
        """Stop serving and detach the observer (idempotent)."""
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()
        if self.observer is not None:
            self.observer.close()
        if self.graph is not None and self.graph.dashboard is self:
            self.graph.dashboard = None

    def host_allowed(self, host_header: str) -> bool:
        """Whether a request naming ``host_header`` may be answered.

        On a loopback address only the loopback names are: a web page elsewhere
        whose domain is made to resolve to 127.0.0.1 (DNS rebinding) gets nothing."""
        if self.host not in LOOPBACK:
            return True
        name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        return name.strip("[]").lower() in LOOPBACK

    def layout(self) -> Layout:
        """The drawing's layout, computed again only when the graph's structure changed."""
        g = self.graph.to_networkx()
        key = (tuple(g.nodes), tuple(g.edges))
        with self._layout_lock:
            if self._layout is None or self._layout[0] != key:
                self._layout = (key, layout(g))
            return self._layout[1]

    def snapshot(self, since: int, selected: str | None = None) -> dict[str, Any]:
        """What the page reads each second: the observer's snapshot, the throughput history,
        the events after ``since`` and the drawing of that same snapshot (so they agree)."""
        snap = self.observer.snapshot()
        lay = self.layout()
        snap["id"] = self.id
        snap["layout"] = lay.engine
        snap["history"] = self.observer.history()
        snap["events"] = self.observer.events_since(since)
        snap["svg"] = svg(lay, snap["stages"], selected=selected)
        return snap

    def drawing(self, selected: str | None) -> str:
        return svg(self.layout(), self.observer.snapshot()["stages"], selected=selected)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the page was closed or reloaded mid-answer: nothing to report
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    dashboard: DashboardServer
    server_version = "celestialflow-dashboard"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # a page polling every second would fill the terminal

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_") and name != "do_GET":
            return self._refuse_method
        raise AttributeError(name)

    def _refuse_method(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only: only GET is served\n", "text/plain; charset=utf-8",
                   {"Allow": "GET"})

    def _send(self, status: HTTPStatus, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any) -> None:
        body = json.dumps(data, default=str, allow_nan=False).encode()
        self._send(HTTPStatus.OK, body, "application/json")

    def _not_found(self, why: str) -> None:
        self._send(HTTPStatus.NOT_FOUND, (why + "\n").encode(), "text/plain; charset=utf-8")

    def do_GET(self) -> None:  # noqa: N802 - the name http.server looks up
        d = self.dashboard
        if not d.host_allowed(self.headers.get("Host", "")):
            self._send(HTTPStatus.FORBIDDEN, b"this dashboard answers only to its own address\n",
                       "text/plain; charset=utf-8")
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        path = url.path
        if path == "/":
            self._send(HTTPStatus.FOUND, b"", "text/plain", {"Location": f"/g/{d.id}/"})
            return
        if path.startswith("/api/panel/"):
            self._panel(path[len("/api/panel/"):])
            return
        if path == "/api/status":
            if d.graph is None:
                self._not_found("this dashboard shows no graph, only its panels")
                return
            asked = query.get("graph", [d.id])[0]
            if asked != d.id:
                self._not_found(f"no graph {asked!r} here; this server shows {d.id!r}")
                return
            self._json(d.graph.get_status_dict())
            return
        parts = path.split("/")
        if len(parts) < 4 or parts[1] != "g":
            self._not_found(f"no such page: {path}")
            return
        if parts[2] != d.id:
            self._not_found(f"no graph {parts[2]!r} here; this server shows {d.id!r}")
            return
        rest = "/".join(parts[3:])
        if rest in ("", "index.html"):
            self._send(HTTPStatus.OK, d.static["index.html"], CONTENT_TYPES[".html"])
        elif rest.startswith("static/"):
            name = rest[len("static/"):]
            if name not in d.static:  # only the shipped files, by exact name: no path is ever opened
                self._not_found(f"no static file {name!r}")
                return
            suffix = name[name.rfind("."):]
            self._send(HTTPStatus.OK, d.static[name], CONTENT_TYPES.get(suffix, "application/octet-stream"))
        elif rest == "api/panels":
            self._json({"name": d.name, "graph": d.graph is not None, "panels": list(d.panels)})
        elif rest.startswith("api/panel/"):
            self._panel(rest[len("api/panel/"):])
        elif d.graph is None and rest in ("api/status", "api/snapshot", "api/graph.svg"):
            self._not_found("this dashboard shows no graph, only its panels")
        elif rest == "api/status":
            self._json(d.graph.get_status_dict())
        elif rest == "api/snapshot":
            try:
                since = int(query.get("since", ["0"])[0])
            except ValueError:
                since = 0
            self._json(d.snapshot(since, query.get("selected", [None])[0]))
        elif rest == "api/graph.svg":
            selected = query.get("selected", [None])[0]
            self._send(HTTPStatus.OK, d.drawing(selected).encode(), CONTENT_TYPES[".svg"])
        else:
            self._not_found(f"no such page: {path}")

    def _panel(self, name: str) -> None:
        func = self.dashboard.panels.get(name)
        if func is None:
            self._not_found(f"no panel {name!r} here")
            return
        try:
            body = json.dumps(func(), default=str, allow_nan=False).encode()
        except Exception as exc:  # noqa: BLE001 - the caller's code: the page shows why, the server goes on
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, f"panel {name!r}: {type(exc).__name__}: {exc}\n".encode(),
                       "text/plain; charset=utf-8")
            return
        self._send(HTTPStatus.OK, body, "application/json")
