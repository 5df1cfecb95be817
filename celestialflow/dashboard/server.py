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

    def __init__(self, graph: TaskGraph, host: str = "127.0.0.1", port: int = 8765, *, interval: float = 1.0) -> None:
        self.graph = graph
        self.id = graph_id(graph.name)
        self.observer = GraphObserver(graph, interval=interval)
        self.static = _static_files()
        self._layout: tuple[tuple[Any, ...], Layout] | None = None
        self._layout_lock = threading.Lock()
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

    def close(self) -> None:
        """Stop serving and detach the observer (idempotent)."""
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()
        self.observer.close()
        if self.graph.dashboard is self:
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
        if path == "/api/status":
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
