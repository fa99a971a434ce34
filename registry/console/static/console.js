// The PAR console's one script: live refresh of the page's #live part, the changes (each sent
// with the session's CSRF token), and the requests chart. No framework, no build, no inline code.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

function flash(text, bad) {
  const el = document.getElementById("flash");
  if (!el) return;
  el.textContent = text;
  el.className = bad ? "error" : "ok";
}

async function send(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401) { location.assign("/console/login"); }
  if (!response.ok) {
    const why = data && (data.detail || data.title) ? (data.detail || data.title) : response.statusText;
    throw new Error(`${response.status}: ${why}`);
  }
  return data;
}

async function refresh() {
  const live = document.getElementById("live");
  if (!live) return;
  try {
    const response = await fetch(location.pathname + "?live=1", { credentials: "same-origin" });
    if (response.redirected && response.url.includes("/console/login")) { location.assign("/console/login"); return; }
    if (response.ok) live.innerHTML = await response.text();
  } catch (e) { /* the registry restarts: try again on the next tick */ }
}

function drawChart(points) {
  // The last WINDOW seconds on a time axis: requests/s as bars, mean latency as a line, each on
  // its own scale (their peaks are written under the chart).
  const svg = document.getElementById("chart");
  if (!svg) return;
  const ns = "http://www.w3.org/2000/svg";
  const W = 600, H = 160, WINDOW = 360, TOP = 6;
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.appendChild(el);
    return el;
  };
  if (points.length === 0) return;
  const now = points[points.length - 1].t;
  const x = (t) => W - ((now - t) / WINDOW) * W;
  const maxRate = Math.max(1e-9, ...points.map((p) => p.rate));
  const lats = points.filter((p) => p.latency_ms !== null);
  const maxLat = Math.max(1e-9, ...lats.map((p) => p.latency_ms));
  const step = W / (WINDOW / 5);
  for (const p of points) {
    const h = (p.rate / maxRate) * (H - TOP - 2);
    if (h > 0) add("rect", { x: (x(p.t) - step * 0.8).toFixed(1), y: (H - h).toFixed(1), width: (step * 0.7).toFixed(1), height: h.toFixed(1), class: "rate" });
  }
  // Each latency sample spans its interval, joined to the next: visible even when alone.
  const coords = [];
  for (const p of lats) {
    const y = (H - 2 - (p.latency_ms / maxLat) * (H - TOP - 4)).toFixed(1);
    coords.push(`${(x(p.t) - step).toFixed(1)},${y}`, `${x(p.t).toFixed(1)},${y}`);
  }
  if (coords.length > 0) add("polyline", { points: coords.join(" "), class: "lat" });
  const last = points[points.length - 1];
  const lat = last.latency_ms === null ? "-" : `${last.latency_ms} ms`;
  const peaks = `peaks ${maxRate.toFixed(2)} req/s` + (lats.length ? `, ${maxLat.toFixed(1)} ms` : "");
  document.getElementById("chart-last").textContent = `now: ${last.rate} req/s, ${lat}; ${peaks} (last ${WINDOW / 60} min)`;
}

async function refreshChart() {
  const panel = document.getElementById("chart-panel");
  if (!panel || !document.getElementById("chart")) return;
  try {
    const response = await fetch(panel.dataset.series, { credentials: "same-origin" });
    if (response.ok) drawChart((await response.json()).points);
  } catch (e) { /* next tick */ }
}

async function refreshLogs() {
  const panel = document.getElementById("logs-panel");
  const out = document.getElementById("logs");
  if (!panel || !out) return;
  try {
    const response = await fetch(panel.dataset.logs, { credentials: "same-origin" });
    if (!response.ok) return;
    const body = await response.json();
    const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    out.textContent = body.error ? body.error
      : body.lines.map((r) => `[${r.instance} ${r.version}] ${r.line}`).join("\n") || "(no output yet)";
    if (atEnd) out.scrollTop = out.scrollHeight;
  } catch (e) { /* next tick */ }
}

function trafficBody() {
  const from = document.getElementById("traffic-from").value;
  const to = document.getElementById("traffic-to").value;
  const share = Math.max(0, Math.min(100, parseInt(document.getElementById("traffic-percent").value, 10) || 0));
  if (from === to) return { traffic: [{ version: to, percent: 100 }] };
  return { traffic: [{ version: from, percent: 100 - share }, { version: to, percent: share }] };
}

const actions = {
  async logout() {
    await send("POST", "/console/logout");
    location.assign("/console/login");
  },
  async invoke() {
    const panel = document.getElementById("invoke-panel");
    const out = document.getElementById("invoke-result");
    let body;
    try { body = JSON.parse(document.getElementById("invoke-body").value || "null"); } catch (e) {
      out.textContent = `not JSON: ${e.message}`; return;
    }
    out.textContent = "calling...";
    const reply = await send("POST", panel.dataset.invokeUrl, body);
    out.textContent = `${reply.status}\n${JSON.stringify(reply.body, null, 2)}`;
  },
  async "apply-traffic"() {
    const panel = document.getElementById("traffic-panel");
    const out = await send("PUT", panel.dataset.trafficUrl, trafficBody());
    flash("traffic: " + out.traffic.map((t) => `${t.version} ${t.percent}%`).join(", "));
    await refresh();
  },
  async rollback() {
    const panel = document.getElementById("traffic-panel");
    const out = await send("POST", panel.dataset.rollbackUrl);
    flash("rolled back: " + out.traffic.map((t) => `${t.version} ${t.percent}%`).join(", "));
    await refresh();
  },
  async "create-key"() {
    const grants = document.getElementById("key-grants").value.split(",").map((g) => g.trim()).filter(Boolean);
    const body = {
      name: document.getElementById("key-name").value || null,
      tenant: document.getElementById("key-tenant").value || "default",
      admin: document.getElementById("key-admin").checked,
    };
    if (grants.length) body.grants = grants;
    const created = await send("POST", "/console/keys", body);
    document.getElementById("new-key-secret").textContent = created.key;
    document.getElementById("new-key").hidden = false;
    flash(`key ${created.id} created`);
    await refresh();
  },
  async revoke(button) {
    const id = button.dataset.keyId;
    await send("DELETE", `/console/keys/${encodeURIComponent(id)}`);
    flash(`key ${id} revoked`);
    await refresh();
  },
};

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (!button || !(button.dataset.action in actions)) return;
  event.preventDefault();
  button.disabled = true;
  actions[button.dataset.action](button)
    .catch((e) => flash(e.message, true))
    .finally(() => { button.disabled = false; });
});

document.addEventListener("input", (event) => {
  const slider = document.getElementById("traffic-slider");
  const number = document.getElementById("traffic-percent");
  if (event.target === slider) number.value = slider.value;
  if (event.target === number) slider.value = number.value;
});

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live) setInterval(refresh, parseInt(live.dataset.poll, 10) || 2000);
  if (document.getElementById("chart")) { refreshChart(); setInterval(refreshChart, 5000); }
  if (document.getElementById("logs")) { refreshLogs(); setInterval(refreshLogs, 2000); }
});
