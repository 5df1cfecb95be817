"""The graph drawn as SVG, each stage coloured by its state and labelled with its counts.

The layout is computed once per graph: by Graphviz (``dot -Tplain`` on the DOT
text of :func:`celestialflow.dot.dot_source`, every node a fixed-size box) when
the ``dot`` program is installed, else by a small built-in layered layout
(longest path from the sources, back edges of cycles drawn below). Drawing the
layout with a status snapshot is string formatting only, so the browser page and
the Jupyter display can redraw it every second for nothing.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

import networkx as nx

from ..dot import dot_available, dot_source

PX = 72.0  # Graphviz works in inches
NODE_H = 66.0
MIN_W = 176.0
CHAR_W = 7.6  # width of one character of the 13 px name, roughly
GAP_X, GAP_Y, PAD = 70.0, 28.0, 16.0

#: (fill, stroke, text) per stage state; inline, so the SVG looks the same without the page's CSS.
COLOURS = {
    "idle": ("#f3f4f6", "#9ca3af", "#374151"),
    "running": ("#dbeafe", "#2563eb", "#1e3a8a"),
    "finished": ("#dcfce7", "#16a34a", "#14532d"),
    "failed": ("#fef3c7", "#d97706", "#78350f"),
    "stopped": ("#ffedd5", "#ea580c", "#7c2d12"),
    "crashed": ("#fee2e2", "#dc2626", "#7f1d1d"),
}


@dataclass
class Layout:
    """Where each stage's box and each edge go, in pixels (y grows downwards)."""

    width: float
    height: float
    nodes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)  # name -> x, y, w, h
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # u, v, SVG path data
    engine: str = "builtin"


def node_width(name: str) -> float:
    return max(MIN_W, len(name) * CHAR_W + 28)


def layout(g: nx.DiGraph, *, use_graphviz: bool | None = None) -> Layout:
    """The layout of ``g`` (one node per stage): Graphviz when available, else built in."""
    if use_graphviz is None:
        use_graphviz = dot_available()
    if use_graphviz:
        try:
            return _graphviz_layout(g)
        except (OSError, subprocess.SubprocessError, ValueError):
            pass  # a broken Graphviz install: the built-in layout still draws the graph
    return _builtin_layout(g)


def _graphviz_layout(g: nx.DiGraph) -> Layout:
    attrs = {
        n: {"fixedsize": "true", "width": f"{node_width(str(n)) / PX:.3f}", "height": f"{NODE_H / PX:.3f}"}
        for n in g.nodes
    }
    source = dot_source(g, name=str(g.graph.get("name") or "G"), node_attrs=attrs)
    source = source.replace("rankdir=", 'nodesep="0.35"; ranksep="0.8"; rankdir=', 1)
    out = subprocess.run(["dot", "-Tplain"], input=source, capture_output=True, text=True, timeout=30, check=True)
    height = 0.0
    nodes: dict[str, tuple[float, float, float, float]] = {}
    raw_edges: list[tuple[str, str, list[tuple[float, float]]]] = []
    for line in out.stdout.splitlines():
        parts = shlex.split(line)
        if not parts:
            continue
        if parts[0] == "graph":
            width, height = float(parts[2]) * PX, float(parts[3]) * PX
        elif parts[0] == "node":
            x, y, w, h = (float(v) * PX for v in parts[2:6])
            nodes[parts[1]] = (x - w / 2, height - y - h / 2, w, h)
        elif parts[0] == "edge":
            n = int(parts[3])
            pts = [(float(parts[4 + 2 * i]) * PX, height - float(parts[5 + 2 * i]) * PX) for i in range(n)]
            raw_edges.append((parts[1], parts[2], pts))
    edges = []
    for u, v, pts in raw_edges:
        d = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}" + "".join(
            f" C{pts[i][0]:.1f},{pts[i][1]:.1f} {pts[i + 1][0]:.1f},{pts[i + 1][1]:.1f} {pts[i + 2][0]:.1f},{pts[i + 2][1]:.1f}"
            for i in range(1, len(pts) - 2, 3)
        )
        edges.append((u, v, d))
    return _padded(Layout(width, height, nodes, edges, "graphviz"))


def _builtin_layout(g: nx.DiGraph) -> Layout:
    """Layers by longest path over the graph without its back edges; left to right."""
    back = set()
    seen: set[Any] = set()
    for root in [n for n in g if g.in_degree(n) == 0] + list(g):
        if root in seen:
            continue
        stack, on_path = [(root, iter(g.successors(root)))], {root}
        seen.add(root)
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                on_path.discard(node)
            elif nxt in on_path:
                back.add((node, nxt))
            elif nxt not in seen:
                seen.add(nxt)
                on_path.add(nxt)
                stack.append((nxt, iter(g.successors(nxt))))
    dag = nx.DiGraph([e for e in g.edges if e not in back])
    dag.add_nodes_from(g.nodes)
    rank: dict[Any, int] = {}
    for n in nx.topological_sort(dag):
        rank[n] = max((rank[p] + 1 for p in dag.predecessors(n)), default=0)
    layers: dict[int, list[Any]] = {}
    for n in g.nodes:  # insertion order within a layer, then by the mean place of the predecessors
        layers.setdefault(rank[n], []).append(n)
    place: dict[Any, float] = {}
    for r in sorted(layers):
        members = layers[r]
        members.sort(key=lambda n, first={n: i for i, n in enumerate(members)}: _mean_place(dag, place, n, first[n]))
        for i, n in enumerate(members):
            place[n] = i
    col_w = max((node_width(str(n)) for n in g), default=MIN_W)
    tallest = max((len(m) for m in layers.values()), default=1)
    height = tallest * NODE_H + (tallest - 1) * GAP_Y
    nodes = {}
    for r, members in layers.items():
        top = (height - (len(members) * NODE_H + (len(members) - 1) * GAP_Y)) / 2
        for i, n in enumerate(members):
            w = node_width(str(n))
            nodes[str(n)] = (r * (col_w + GAP_X) + (col_w - w) / 2, top + i * (NODE_H + GAP_Y), w, NODE_H)
    width = len(layers) * col_w + (len(layers) - 1) * GAP_X
    edges = []
    for u, v in g.edges:
        ux, uy, uw, uh = nodes[str(u)]
        vx, vy, vw, vh = nodes[str(v)]
        if (u, v) in back or u == v:  # loop back under the boxes
            x1, y1, x2, y2 = ux + uw / 2, uy + uh, vx + vw / 2, vy + vh
            low = max(y1, y2) + 34
            d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{low:.1f} {x2:.1f},{low:.1f} {x2:.1f},{y2 + 4:.1f}"
            height = max(height, low)
        else:
            x1, y1, x2, y2 = ux + uw, uy + uh / 2, vx - 4, vy + vh / 2
            mid = (x1 + x2) / 2
            d = f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        edges.append((str(u), str(v), d))
    return _padded(Layout(width, height, nodes, edges, "builtin"))


def _mean_place(dag: nx.DiGraph, place: Mapping[Any, float], node: Any, default: float) -> float:
    """Where ``node``'s predecessors sit in their layers, on average (``default`` without any)."""
    preds = list(dag.predecessors(node))
    return sum(place[p] for p in preds) / len(preds) if preds else default


def _padded(lay: Layout) -> Layout:
    """The layout moved by PAD on every side (room for strokes and arrowheads)."""
    lay.nodes = {n: (x + PAD, y + PAD, w, h) for n, (x, y, w, h) in lay.nodes.items()}
    lay.edges = [(u, v, _shift(d, PAD)) for u, v, d in lay.edges]
    lay.width += 2 * PAD
    lay.height += 2 * PAD
    return lay


def _shift(path: str, by: float) -> str:
    out = []
    for token in path.split(" "):
        cmd = token[0] if token[0].isalpha() else ""
        x, y = token[len(cmd):].split(",")
        out.append(f"{cmd}{float(x) + by:.1f},{float(y) + by:.1f}")
    return " ".join(out)


def _count(n: Any) -> str:
    n = int(n)
    return f"{n / 1e6:.1f}M" if n >= 10_000_000 else f"{n:,}"


def svg(lay: Layout, stages: Mapping[str, Mapping[str, Any]], *, selected: str | None = None) -> str:
    """The layout drawn with each stage's state and counts from ``stages`` (a snapshot's ``stages``)."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cf-graph" viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" '
        f'width="{lay.width:.0f}" height="{lay.height:.0f}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">',
        '<defs><marker id="cf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>',
    ]
    for u, v, d in lay.edges:
        busy = stages.get(v, {}).get("queued", 0)
        colour = "#2563eb" if busy else "#9ca3af"
        parts.append(
            f'<path class="edge" data-from="{escape(u)}" data-to="{escape(v)}" d="{d}" fill="none" '
            f'stroke="{colour}" stroke-width="1.6" marker-end="url(#cf-arrow)"/>'
        )
    for name, (x, y, w, h) in lay.nodes.items():
        s = stages.get(name, {})
        state = str(s.get("state", "idle"))
        fill, stroke, ink = COLOURS.get(state, COLOURS["idle"])
        failed = int(s.get("failed", 0))
        width = 3 if name == selected else 1.6
        parts.append(f'<g class="stage state-{escape(state)}" data-stage="{escape(name)}" tabindex="0">')
        parts.append(f"<title>{escape(name)}: {escape(state)} (click to show its failures)</title>")
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="9" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width}"/>'
        )
        cx = x + w / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{y + 20:.1f}" text-anchor="middle" font-size="13" font-weight="600" '
            f'fill="{ink}">{escape(name)}</text>'
        )
        fail = f' <tspan fill="#b91c1c" font-weight="600">✗ {_count(failed)}</tspan>' if failed else ""
        parts.append(
            f'<text class="counts" x="{cx:.1f}" y="{y + 38:.1f}" text-anchor="middle" font-size="11.5" '
            f'fill="{ink}">✓ {_count(s.get("succeeded", 0))}{fail}</text>'
        )
        parts.append(
            f'<text class="queue" x="{cx:.1f}" y="{y + 54:.1f}" text-anchor="middle" font-size="10.5" '
            f'fill="#4b5563">queued {_count(s.get("queued", 0))} · '
            f'in flight {_count(s.get("in_flight", 0))}</text>'
        )
        total = s.get("total")
        if total:
            frac = min(int(s.get("done", 0)) / total, 1.0)
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y + h - 4:.1f}" width="{(w - 2) * frac:.1f}" height="3" '
                f'rx="1.5" fill="{stroke}" opacity="0.7"/>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)
