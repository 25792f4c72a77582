// The Streaming page: fetches /api/v1/status and draws it, again every batch interval.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const BOX = { width: 600, height: 170, left: 56, right: 12, top: 10, bottom: 24 };
let subsecond = false; // batch times need milliseconds when batches are shorter than a second

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value === 0) return "0";
  const ms = value * 1000;
  if (value < 1) return ms.toFixed(ms < 1 ? 2 : ms < 10 ? 1 : 0) + " ms";
  return value.toFixed(2) + " s";
}

function clock(ms) {
  const time = new Date(ms).toLocaleTimeString([], { hour12: false });
  return subsecond ? `${time}.${String(Math.floor(ms % 1000)).padStart(3, "0")}` : time;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * step) return m * step;
  return 10 * step;
}

function tickLabel(value, unit) {
  if (unit === "s") return seconds(value);
  return value >= 1000 ? (value / 1000).toFixed(value >= 10000 ? 0 : 1) + "k" : String(+value.toFixed(1));
}

function format(value, unit) {
  return unit === "s" ? seconds(value) : `${tickLabel(value, unit)} ${unit}`;
}

// One timeline: a line and a point per batch, failed batches in red; `limit` draws a dashed line.
function plot(svg, batches, key, limit) {
  svg.replaceChildren();
  const unit = svg.dataset.unit;
  const points = batches.filter((b) => b[key] !== null && b[key] !== undefined);
  const w = BOX.width - BOX.left - BOX.right;
  const h = BOX.height - BOX.top - BOX.bottom;
  svg.appendChild(el("line", { class: "axis", x1: BOX.left, y1: BOX.top + h, x2: BOX.left + w, y2: BOX.top + h }));
  svg.appendChild(el("line", { class: "axis", x1: BOX.left, y1: BOX.top, x2: BOX.left, y2: BOX.top + h }));
  svg.dataset.points = String(points.length);
  const values = points.map((b) => b[key]);
  svg.parentNode.querySelector(".avg").textContent = points.length
    ? `avg ${format(values.reduce((a, v) => a + v, 0) / values.length, unit)} · max ${format(Math.max(...values), unit)}`
    : "";
  if (points.length === 0) {
    svg.appendChild(el("text", { class: "empty", x: BOX.left + w / 2, y: BOX.top + h / 2, "text-anchor": "middle" }, "no completed batch yet"));
    return;
  }
  const t0 = points[0].batch_time;
  const t1 = Math.max(points[points.length - 1].batch_time, t0 + 1);
  const top = niceMax(Math.max(...points.map((b) => b[key]), limit || 0));
  const x = (t) => BOX.left + ((t - t0) / (t1 - t0)) * w;
  const y = (v) => BOX.top + h - (v / top) * h;
  for (const f of [0, 0.5, 1]) {
    svg.appendChild(el("line", { class: "axis", x1: BOX.left - 4, y1: y(top * f), x2: BOX.left, y2: y(top * f) }));
    svg.appendChild(el("text", { class: "tick", x: BOX.left - 6, y: y(top * f) + 4, "text-anchor": "end" }, tickLabel(top * f, unit)));
  }
  svg.appendChild(el("text", { class: "tick", x: BOX.left, y: BOX.height - 6 }, clock(t0)));
  svg.appendChild(el("text", { class: "tick", x: BOX.left + w, y: BOX.height - 6, "text-anchor": "end" }, clock(t1)));
  if (limit) {
    svg.appendChild(el("line", { class: "limit", x1: BOX.left, y1: y(limit), x2: BOX.left + w, y2: y(limit) }));
  }
  const coords = points.map((b) => `${x(b.batch_time).toFixed(1)},${y(b[key]).toFixed(1)}`);
  svg.appendChild(el("polygon", { class: "area", points: `${BOX.left},${BOX.top + h} ${coords.join(" ")} ${x(t1).toFixed(1)},${BOX.top + h}` }));
  svg.appendChild(el("polyline", { class: "line", points: coords.join(" ") }));
  const radius = points.length > 120 ? 1.5 : 2.5;
  for (const b of points) {
    const dot = el("circle", {
      class: b.state === "failed" ? "point failed" : "point",
      cx: x(b.batch_time).toFixed(1), cy: y(b[key]).toFixed(1), r: b.state === "failed" ? 4 : radius,
      "data-batch-time": b.batch_time, "data-value": b[key],
    });
    dot.appendChild(el("title", {}, `${clock(b.batch_time)}: ${format(b[key], unit)}`));
    svg.appendChild(dot);
  }
}

function row(cells, attrs) {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
  for (const [text, cls] of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    if (cls === "error") td.title = text;
    tr.appendChild(td);
  }
  return tr;
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function render(status) {
  subsecond = status.batch_interval < 1;
  document.getElementById("job").textContent = status.job;
  const state = document.getElementById("state");
  state.textContent = status.state;
  state.className = "badge " + status.state;
  const s = status.summary;
  document.getElementById("interval").textContent = seconds(status.batch_interval);
  document.getElementById("completed").textContent = status.totals.completed;
  document.getElementById("failed").textContent = status.totals.failed;
  document.getElementById("queue").textContent = `${s.pending_batches} / ${s.running_batches}`;
  document.getElementById("ratio").textContent = s.processing_ratio === null ? "–" : (s.processing_ratio * 100).toFixed(1) + " %";
  document.getElementById("trend").textContent = s.scheduling_delay_trend === null ? "–" : (s.scheduling_delay_trend * 1000).toFixed(2) + " ms/s";

  const problems = [];
  if (status.stall) problems.push(["stall", "Stalled: " + status.stall.message]);
  const checkpoint = status.checkpoint && status.checkpoint.problem;
  if (checkpoint) problems.push(["checkpoint", `Checkpoints failing since ${clock(checkpoint.since * 1000)}: ${checkpoint.path}: ${checkpoint.error}`]);
  if (status.slow_tasks && status.slow_tasks.length) {
    const longest = status.slow_tasks[0];
    problems.push(["slow_tasks", `${status.slow_tasks.length} slow task(s); the longest, ${longest.task_id} on ${longest.executor_id}, has run ${seconds(longest.running_seconds)}`]);
  }
  const banner = document.getElementById("problems");
  banner.replaceChildren(...problems.map(([kind, text]) => {
    const p = document.createElement("p");
    p.className = "problem";
    p.dataset.problemKind = kind;
    p.textContent = text;
    return p;
  }));
  banner.hidden = problems.length === 0;

  const oldestFirst = status.batches.slice().reverse();
  for (const svg of document.querySelectorAll("svg.plot")) {
    const key = svg.dataset.series;
    const shown = key === "input_rate" ? oldestFirst.filter((b) => b.state !== "queued") : oldestFirst;
    plot(svg, shown, key, key === "processing_time" ? status.batch_interval : null);
  }

  const tbody = document.getElementById("batches");
  tbody.replaceChildren(...status.batches.slice(0, 50).map((b) => row([
    [clock(b.batch_time)], [String(b.num_records)], [seconds(b.scheduling_delay)],
    [seconds(b.processing_time)], [seconds(b.total_delay)],
    [b.state === "failed" ? "failed: " + b.errors.join("; ") : b.state, b.state === "failed" ? "status error" : "status"],
  ], { "data-batch-time": b.batch_time, "data-state": b.state, class: b.state })));

  document.getElementById("executors").replaceChildren(...status.executors.map((e) => row([
    [e.id], [e.address], [e.state], [String(e.running_tasks)], [bytes(e.memory_bytes)],
  ], { "data-executor": e.id })));
  document.getElementById("receivers").replaceChildren(...status.receivers.map((r) => row([
    [String(r.stream_id)], [r.executor_id || "–"], [r.state], [r.last_error || "", r.last_error ? "error" : ""],
  ], { "data-stream": r.stream_id })));
  const counters = (i) => ["files_selected", "files_missing", "records_undecodable"]
    .filter((k) => k in i).map((k) => `${k.split("_").pop()} ${i[k]}`).join(" · ");
  document.getElementById("inputs").replaceChildren(...status.inputs.map((i) => row([
    [String(i.stream_id)], [i.kind], [counters(i)], [i.problem || "", i.problem ? "error" : ""],
  ], { "data-input": i.stream_id, "data-problem": i.problem ? "yes" : "no" })));

  document.getElementById("updated").textContent = "updated " + clock(status.time * 1000);
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  return Math.min(5, Math.max(0.5, status.batch_interval));
}

async function refresh() {
  let next = 2;
  try {
    const response = await fetch("api/v1/status?batches=300", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    next = render(await response.json());
  } catch (err) {
    const state = document.getElementById("state");
    state.textContent = "unreachable";
    state.className = "badge unreachable";
    document.getElementById("updated").textContent = "last refresh failed: " + err.message;
  }
  setTimeout(refresh, next * 1000);
}

refresh();
