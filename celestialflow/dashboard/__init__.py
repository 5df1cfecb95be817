"""The live view of a TaskGraph in the browser (imported only when a dashboard is asked for).

``graph.start_graph(tasks, dashboard=True)`` (or ``dashboard=8765``, or
``dashboard="0.0.0.0:8765"``), ``graph.open_dashboard()`` and ``celestialflow serve
module:graph`` start a read-only web server for the graph, bound to 127.0.0.1
unless another address is given explicitly (then with a warning: the page shows
task reprs and tracebacks to whoever can reach it). The page draws the graph
coloured by stage state, with counters, a throughput chart, the failures and the
ETA, updated about once a second; it keeps showing the final state after the
run until the process exits or ``graph.close_dashboard()``. Everything it loads
ships in this package: it works offline.
"""

from __future__ import annotations

import errno
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .server import LOOPBACK, DashboardServer

if TYPE_CHECKING:
    from ..graph import TaskGraph

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765

__all__ = ["DEFAULT_PORT", "DashboardServer", "open_dashboard", "parse_address", "serve_panels"]


def parse_address(address: bool | int | str) -> tuple[str, int | None]:
    """``(host, port)`` from ``True`` (127.0.0.1, default port), a port, or ``"host:port"``.

    A port of None means the default port, or any free one if it is taken."""
    if address is True:
        return DEFAULT_HOST, None
    if isinstance(address, int) and not isinstance(address, bool):
        port: int | None = address
        host = DEFAULT_HOST
    elif isinstance(address, str):
        if address.startswith("["):  # an IPv6 address: [::1] or [::1]:8765
            host, _, port_text = address[1:].partition("]")
            port_text = port_text.removeprefix(":")
        elif address.count(":") == 1:
            host, _, port_text = address.partition(":")
        else:
            host, port_text = address, ""
        host = host or DEFAULT_HOST
        try:
            port = int(port_text) if port_text else None
        except ValueError:
            raise ConfigurationError(f"dashboard={address!r}: expected a port or 'host:port'") from None
    else:
        raise ConfigurationError(f"dashboard={address!r}: expected True, a port or 'host:port'")
    if port is not None and not 0 <= port <= 65535:
        raise ConfigurationError(f"dashboard={address!r}: port {port} is out of range")
    return host, port


def open_dashboard(graph: TaskGraph, address: bool | int | str = True, *, quiet: bool = False) -> str:
    """Start (or reuse) the dashboard of ``graph`` and return its URL, printed unless ``quiet``."""
    host, port = parse_address(address)
    current = graph.dashboard
    if current is not None:
        if port in (None, current.port) and host == current.host:
            return current.url
        current.close()
    server = _start(graph, host, port, f"graph {graph.name!r}")
    graph.dashboard = server
    if not quiet:
        print(f"celestialflow: dashboard of graph {graph.name!r} at {server.url}", file=sys.stderr, flush=True)
    return server.url


def serve_panels(name: str, panels: dict[str, Callable[[], Any]], address: bool | int | str = True, *,
                 quiet: bool = False) -> DashboardServer:
    """Start a dashboard without a graph that shows ``panels`` (see :mod:`.server`); close it with ``.close()``."""
    host, port = parse_address(address)
    server = _start(None, host, port, repr(name), panels=panels, name=name)
    if not quiet:
        print(f"celestialflow: dashboard of {name!r} at {server.url}", file=sys.stderr, flush=True)
    return server


def _start(graph: TaskGraph | None, host: str, port: int | None, what: str, **kw: Any) -> DashboardServer:
    """The server on ``host:port`` (the default port, or any free one when it is taken), warning off loopback."""
    if host not in LOOPBACK:
        warnings.warn(
            f"the dashboard of {what} listens on {host}, not only on this machine: anyone who "
            f"can reach it sees what it shows (it is read-only)",
            stacklevel=4,
        )
    try:
        return DashboardServer(graph, host, DEFAULT_PORT if port is None else port, **kw)
    except OSError as exc:
        if port is not None or exc.errno != errno.EADDRINUSE:
            raise ConfigurationError(f"cannot serve the dashboard of {what} on {host}:{port}: {exc}") from exc
        return DashboardServer(graph, host, 0, **kw)  # the default port is taken: any free one
