// The analyst dashboard: sign in, then one server-drawn SVG line chart per feature.
// The token stays in memory only; every chart is fetched with it, like any API call.
"use strict";
let token = "";
const $ = (id) => document.getElementById(id);
const say = (text) => { $("status").textContent = text; };

function isoDay(d) { return d.toISOString().slice(0, 10); }

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) { throw new Error((await r.json()).error.message); }
  return r;
}

$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const r = await fetch("/api/v1/sessions", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ login: form.get("login"), password: form.get("password") }) });
  if (!r.ok) { say("Sign-in failed."); return; }
  token = (await r.json()).token;
  e.target.hidden = true;
  const q = $("query");
  const today = new Date();
  q.elements.to.value = isoDay(today);
  q.elements.from.value = isoDay(new Date(today.getTime() - 29 * 86400000));
  q.hidden = false;
  q.requestSubmit();
});

$("query").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const charts = $("charts");
  charts.replaceChildren();
  say("");
  try {
    const features = (await (await api("/api/v1/analytics/features")).json()).features;
    if (!features.length) { say("No usage has been rolled up yet."); }
    for (const feature of features) {
      const params = new URLSearchParams({ feature, from: form.get("from"), to: form.get("to"),
        granularity: form.get("granularity"), dimension: form.get("dimension") });
      const svg = await (await api(`/api/v1/analytics/feature-usage.svg?${params}`)).text();
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.alt = `${feature} usage chart`;
      img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
      figure.append(img);
      charts.append(figure);
    }
  } catch (err) { say(err.message); }
});
