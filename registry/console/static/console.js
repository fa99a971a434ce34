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
  const svg = document.getElementById("chart");
  if (!svg) return;
  const ns = "http://www.w3.org/2000/svg";
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = 600, H = 160;
  const line = (values, cls) => {
    const max = Math.max(1e-9, ...values.filter((v) => v !== null));
    const step = W / Math.max(1, values.length - 1);
    const coords = values.map((v, i) => `${(i * step).toFixed(1)},${(H - 4 - ((v || 0) / max) * (H - 12)).toFixed(1)}`);
    const path = document.createElementNS(ns, "polyline");
    path.setAttribute("points", coords.join(" "));
    path.setAttribute("class", cls);
    svg.appendChild(path);
  };
  if (points.length > 0) {
    line(points.map((p) => p.rate), "rate");
    line(points.map((p) => p.latency_ms), "lat");
    const last = points[points.length - 1];
    const lat = last.latency_ms === null ? "-" : `${last.latency_ms} ms`;
    document.getElementById("chart-last").textContent = `now: ${last.rate} req/s, ${lat}`;
  }
}

async function refreshChart() {
  const panel = document.getElementById("chart-panel");
  if (!panel || !document.getElementById("chart")) return;
  try {
    const response = await fetch(panel.dataset.series, { credentials: "same-origin" });
    if (response.ok) drawChart((await response.json()).points);
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
});
