// The live view: polls api/snapshot (counters, history, new events and the drawing of them).
// Everything from the server is written with textContent except the SVG, which the
// server escapes; the page keeps no state a reload would lose.
"use strict";

const POLL_RUNNING = 1000;
const POLL_IDLE = 3000;
const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#db2777", "#0891b2", "#65a30d", "#dc2626", "#4f46e5", "#0d9488"];
const FIELDS = ["received", "succeeded", "failed", "retried", "duplicated", "in_flight", "queued"];

let since = 0;
let run = null;
let selected = "";
let failures = [];
let lastSvg = "";
let lastTotal = 0;

const $ = (id) => document.getElementById(id);
const STATE_TEXT = { failed: "finished with failures" };
const stateText = (s) => STATE_TEXT[s] || s;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function svgEl(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

const fmtInt = (n) => Number(n || 0).toLocaleString("en-US");
function fmtRate(r) {
  if (!r) return "0";
  if (r >= 100) return Math.round(r).toLocaleString("en-US");
  return r.toFixed(r >= 10 ? 1 : 2);
}
function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60), sec = Math.round(s % 60);
  if (m < 60) return `${m} min ${sec} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

async function poll() {
  let delay = POLL_RUNNING;
  try {
    const sel = selected ? `&selected=${encodeURIComponent(selected)}` : "";
    const resp = await fetch(`api/snapshot?since=${since}${sel}`, { cache: "no-store" });
    if (resp.status === 404) {
      setLink("lost", "this graph is no longer served here");
      return;  // another graph (or none) now answers on this address: stop polling
    }
    if (!resp.ok) throw new Error(resp.statusText);
    const snap = await resp.json();
    render(snap);
    setLink("live", snap.state === "running" ? "live" : "connected · final state");
    if (snap.state !== "running") delay = POLL_IDLE;
  } catch (err) {
    setLink("lost", "disconnected (the process may have exited); retrying");
    delay = POLL_IDLE;
  }
  setTimeout(poll, delay);
}

function setLink(cls, text) {
  const link = $("link");
  link.className = "link " + cls;
  link.textContent = text;
}

function render(snap) {
  if (run !== snap.run) {  // a new run: its events start afresh
    run = snap.run;
    failures = [];
  }
  for (const e of snap.events) {
    since = Math.max(since, e.seq);
    if (e.kind === "task_failed") failures.push(e);
  }
  document.title = `${snap.graph} · ${snap.state} · celestialflow`;
  $("graph-name").textContent = snap.graph;
  const badge = $("run-state");
  badge.className = "badge state-" + snap.state;
  badge.dataset.state = snap.state;
  badge.textContent = stateText(snap.state);
  $("run-no").textContent = snap.run ? `run ${snap.run}` : "not started";
  $("layout-engine").textContent = snap.layout === "graphviz" ? "laid out by Graphviz" : "built-in layout";
  $("t-elapsed").textContent = fmtSeconds(snap.elapsed);
  $("t-eta").textContent = snap.state === "running" ? fmtSeconds(snap.eta) : (snap.run ? "done" : "–");
  for (const f of FIELDS) $("t-" + f).textContent = fmtInt(snap.totals[f]);
  renderStages(snap);
  renderFilter(Object.keys(snap.stages));
  renderFailures(snap.failures);
  renderChart(snap.history);
  if (snap.svg !== lastSvg) {  // the drawing of this same snapshot: its numbers agree with the table's
    lastSvg = snap.svg;
    $("drawing").innerHTML = snap.svg;
  }
  lastTotal = snap.failures;
}

async function refreshDrawing() {
  const q = selected ? `?selected=${encodeURIComponent(selected)}` : "";
  const resp = await fetch(`api/graph.svg${q}`, { cache: "no-store" });
  if (resp.ok) {
    lastSvg = await resp.text();
    $("drawing").innerHTML = lastSvg;
  }
}

function renderStages(snap) {
  const body = $("stages").tBodies[0];
  const rows = [];
  for (const [name, s] of Object.entries(snap.stages)) {
    const cells = [
      el("td", { class: "name" }, name),
      el("td", { "data-field": "state", "data-state": s.state }, el("span", { class: "pill state-" + s.state }, stateText(s.state))),
    ];
    for (const f of FIELDS) {
      const cls = f + (f === "failed" && s.failed ? " nonzero" : "");
      cells.push(el("td", { class: cls, "data-field": f }, fmtInt(s[f])));
    }
    cells.push(el("td", { "data-field": "throughput" }, fmtRate(s.throughput)));
    cells.push(el("td", { "data-field": "elapsed" }, fmtSeconds(s.elapsed)));
    cells.push(el("td", { "data-field": "eta" }, s.state === "running" ? fmtSeconds(s.eta) : "–"));
    const frac = s.total ? Math.min(s.done / s.total, 1) : (s.state === "finished" || s.state === "failed" ? 1 : 0);
    const bar = el("span", { class: "bar", title: s.total ? `${fmtInt(s.done)} of ${fmtInt(s.total)}` : "input size unknown" },
      el("span", { style: `width:${(frac * 100).toFixed(1)}%` }));
    cells.push(el("td", {}, bar));
    const row = el("tr", { "data-stage": name, class: name === selected ? "selected" : "" }, ...cells);
    row.addEventListener("click", () => select(name === selected ? "" : name));
    rows.push(row);
  }
  body.replaceChildren(...rows);
}

function renderFilter(names) {
  const sel = $("failure-filter");
  const have = [...sel.options].map((o) => o.value).slice(1);
  if (have.join("\u0000") !== names.join("\u0000")) {
    sel.replaceChildren(el("option", { value: "" }, "all stages"), ...names.map((n) => el("option", { value: n }, n)));
  }
  sel.value = selected;
}

function renderFailures(total) {
  const shown = failures.filter((f) => !selected || f.stage === selected);
  const list = $("failures");
  const openTb = new Set([...list.querySelectorAll("details[open]")].map((d) => d.dataset.seq));
  list.replaceChildren(...shown.slice(-300).reverse().map((f) => {
    const details = el("details", { "data-seq": String(f.seq) }, el("summary", {}, "traceback"), el("pre", {}, f.traceback || ""));
    if (openTb.has(String(f.seq))) details.open = true;
    return el("li", { class: "failure", "data-stage": f.stage },
      el("div", { class: "head" },
        el("span", { class: "stage" }, f.stage),
        el("span", { class: "type" }, f.error),
        el("span", { class: "message" }, f.message),
        el("span", { class: "time" }, new Date(f.time * 1000).toLocaleTimeString())),
      el("div", { class: "task" }, "task " + f.task),
      details);
  }));
  $("no-failures").style.display = shown.length ? "none" : "";
  const kept = failures.length < total ? ` (the first ${fmtInt(failures.length)} kept)` : "";
  $("failure-count").textContent = total ? `${fmtInt(total)} in this run${kept}` + (selected ? ` · showing ${selected}` : "") : "";
}

function select(name) {
  selected = name;
  $("failure-filter").value = name;
  for (const row of $("stages").tBodies[0].rows) row.classList.toggle("selected", row.dataset.stage === name);
  renderFailures(lastTotal);
  refreshDrawing();
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function renderChart(history) {
  const W = 900, H = 220, L = 56, R = 12, T = 10, B = 26;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": "throughput over time" });
  const names = Object.keys(history.stages);
  const t = history.t;
  const tmax = Math.max(t.length ? t[t.length - 1] : 1, 1);
  let vmax = 0;
  for (const n of names) for (const v of history.stages[n]) vmax = Math.max(vmax, v);
  vmax = niceMax(vmax);
  const x = (s) => L + (s / tmax) * (W - L - R);
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = (vmax * i) / 4;
    svg.append(svgEl("line", { class: i ? "grid" : "axis", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    const label = svgEl("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" });
    label.textContent = fmtRate(v);
    svg.append(label);
  }
  for (let i = 0; i <= 5; i++) {
    const s = (tmax * i) / 5;
    const label = svgEl("text", { x: x(s), y: H - 8, "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle" });
    label.textContent = fmtSeconds(s);
    svg.append(label);
  }
  names.forEach((n, i) => {
    const pts = history.stages[n].map((v, k) => `${x(t[k]).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    if (pts) svg.append(svgEl("polyline", { points: pts, fill: "none", stroke: PALETTE[i % PALETTE.length],
      "stroke-width": n === selected ? 3 : 1.8, "stroke-linejoin": "round", "vector-effect": "non-scaling-stroke" }));
  });
  const key = el("div", { class: "key" }, ...names.map((n, i) =>
    el("span", {}, el("i", { style: `background:${PALETTE[i % PALETTE.length]}` }), n)));
  $("chart").replaceChildren(svg, key);
}

document.addEventListener("DOMContentLoaded", () => {
  $("failure-filter").addEventListener("change", (e) => select(e.target.value));
  $("drawing").addEventListener("click", (e) => {
    const g = e.target.closest("[data-stage]");
    if (g) select(g.dataset.stage === selected ? "" : g.dataset.stage);
  });
  start();
});

// Extra read-only panels a caller registered (api/panels lists them; see server.py for their shapes).
async function start() {
  let info = { graph: true, panels: [] };
  try {
    const resp = await fetch("api/panels", { cache: "no-store" });
    if (resp.ok) info = await resp.json();
  } catch (err) { /* an older server: the graph only */ }
  if (!info.graph) {
    document.body.classList.add("no-graph");
    document.title = `${info.name} · celestialflow`;
    $("graph-name").textContent = info.name;
    $("run-state").textContent = "panels";
  } else {
    poll();
  }
  if (info.panels.length) pollPanels(info.panels, !info.graph);
}

async function pollPanels(names, own) {
  try {
    for (const name of names) {
      const resp = await fetch(`api/panel/${encodeURIComponent(name)}`, { cache: "no-store" });
      renderPanel(name, resp.ok ? await resp.json() : { kind: "error", message: await resp.text() });
    }
    if (own) setLink("live", "live");
  } catch (err) {
    if (own) setLink("lost", "disconnected (the process may have exited); retrying");
  }
  setTimeout(() => pollPanels(names, own), POLL_RUNNING);
}

function renderPanel(name, data) {
  let card = document.querySelector(`#panels section[data-panel="${CSS.escape(name)}"]`);
  if (!card) {
    card = el("section", { class: "card panel", "data-panel": name }, el("h2", {}, name), el("div", { class: "body" }));
    $("panels").append(card);
  }
  const body = card.querySelector(".body");
  if (data && data.title) card.querySelector("h2").textContent = data.title;
  if (data && data.kind === "table") body.replaceChildren(panelTable(data));
  else if (data && data.kind === "histograms") body.replaceChildren(el("div", { class: "chart-grid" }, ...data.charts.map(histogram)));
  else if (data && data.kind === "error") body.replaceChildren(el("p", { class: "nonzero" }, data.message));
  else body.replaceChildren(el("pre", { class: "raw" }, JSON.stringify(data, null, 2)));
}

function panelTable(data) {
  const head = el("tr", {}, ...data.columns.map((c) => el("th", {}, c)));
  const rows = data.rows.map((r) => el("tr", {}, ...r.map((v, i) =>
    el("td", { "data-field": data.columns[i], "data-value": String(v) }, typeof v === "number" ? (Number.isInteger(v) ? fmtInt(v) : fmtRate(v)) : String(v ?? "")))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: String(data.columns.length), class: "muted" }, "nothing yet")));
  return el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function histogram(chart) {
  const W = 420, H = 180, L = 48, R = 8, T = 8, B = 22;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": chart.title || "histogram" });
  const edges = chart.edges || [];
  const labels = Object.keys(chart.counts || {});
  let vmax = 0;
  for (const k of labels) for (const v of chart.counts[k]) vmax = Math.max(vmax, v);
  vmax = niceMax(vmax);
  const lo = edges.length ? edges[0] : 0, hi = edges.length ? edges[edges.length - 1] : 1;
  const x = (e) => L + ((e - lo) / ((hi - lo) || 1)) * (W - L - R);
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  for (let i = 0; i <= 2; i++) {
    svg.append(svgEl("line", { class: i ? "grid" : "axis", x1: L, x2: W - R, y1: y((vmax * i) / 2), y2: y((vmax * i) / 2) }));
    const t = svgEl("text", { x: L - 4, y: y((vmax * i) / 2) + 4, "text-anchor": "end" });
    t.textContent = fmtInt((vmax * i) / 2);
    svg.append(t);
  }
  for (const [i, e] of [[0, lo], [1, hi]]) {
    const t = svgEl("text", { x: x(e), y: H - 6, "text-anchor": i ? "end" : "start" });
    t.textContent = Number(e).toPrecision(4);
    svg.append(t);
  }
  labels.forEach((k, i) => {
    const counts = chart.counts[k];
    let pts = `${x(lo).toFixed(1)},${y(0).toFixed(1)}`;
    counts.forEach((v, b) => { pts += ` ${x(edges[b]).toFixed(1)},${y(v).toFixed(1)} ${x(edges[b + 1]).toFixed(1)},${y(v).toFixed(1)}`; });
    svg.append(svgEl("polyline", { points: pts, fill: "none", stroke: PALETTE[i % PALETTE.length], "stroke-width": 1.6,
      "data-series": k, "vector-effect": "non-scaling-stroke" }));
  });
  const key = el("div", { class: "key" }, ...labels.map((k, i) =>
    el("span", {}, el("i", { style: `background:${PALETTE[i % PALETTE.length]}` }), k)));
  return el("div", { class: "mini chart", "data-chart": chart.title || "" }, el("h3", {}, chart.title || ""), svg, key);
}
