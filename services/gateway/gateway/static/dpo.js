// The DPO's page: sign in, then fetch the content (rendered and escaped by the gateway, for the DPO only).
// The token stays in memory only, as on the analyst dashboard.
"use strict";
let token = "";
const $ = (id) => document.getElementById(id);
const say = (text) => { $("status").textContent = text; };

async function load() {
  say("Loading…");
  const r = await fetch("/api/v1/dpo/page.html", { headers: { Authorization: `Bearer ${token}` } });
  if (r.status === 403) { say("Only the data protection officer may see this page."); return; }
  if (!r.ok) { say((await r.json()).error.message); return; }
  // Parsed, never executed: a DOMParser document runs no scripts (and the CSP allows none inline).
  const doc = new DOMParser().parseFromString(await r.text(), "text/html");
  $("content").replaceChildren(...doc.body.childNodes);
  $("refresh").hidden = false;
  say("");
}

$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const r = await fetch("/api/v1/sessions", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ login: form.get("login"), password: form.get("password") }) });
  if (!r.ok) { say("Sign-in failed."); return; }
  token = (await r.json()).token;
  e.target.hidden = true;
  await load();
});

$("refresh").addEventListener("submit", async (e) => { e.preventDefault(); await load(); });
