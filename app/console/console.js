// The operator console: plain DOM over the admin API, authenticated by the HttpOnly session cookie.
"use strict";
const BASE = location.pathname.replace(/\/admin\/?$/, "");
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "");
let tab = "pool", pool = [], cooldownsAt = 0, errorPages = [null], timer = null;

async function api(path, opts = {}) {
  const init = {method: opts.method || "GET", credentials: "same-origin", headers: {"x-console": "1"}};
  if (opts.body !== undefined) { init.body = JSON.stringify(opts.body); init.headers["content-type"] = "application/json"; }
  const res = await fetch(BASE + path, init);
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 && !path.endsWith("/login")) { showLogin("Session ended: log in again."); throw new Error("logged out"); }
  if (!res.ok) throw new Error((data.error && data.error.message) || `HTTP ${res.status}`);
  return data;
}
function flash(text, bad) { const f = $("flash"); f.textContent = text; f.className = bad ? "bad" : ""; }
function guard(fn) { return async (...a) => { try { await fn(...a); } catch (e) { if (e.message !== "logged out") flash(e.message, true); } }; }

function showLogin(msg) {
  $("app").hidden = true; $("logout").hidden = true; $("login-view").hidden = false;
  $("login-error").textContent = msg || ""; clearInterval(timer);
}
async function start() {
  $("login-view").hidden = true; $("app").hidden = false; $("logout").hidden = false;
  await refresh();
  clearInterval(timer);
  timer = setInterval(() => { tickCooldowns(); if ($("auto").checked && Date.now() - lastLoad > 5000) refresh(); }, 1000);
}
let lastLoad = 0;
const refresh = guard(async () => {
  lastLoad = Date.now();
  if (tab === "pool") await loadPool();
  else if (tab === "tokens") await loadTokens();
  else if (tab === "usage") await loadUsage();
  else if (tab === "errors") await loadErrors(errorPages[errorPages.length - 1]);
  else await loadSettings();
});

// -- pool ---------------------------------------------------------------------------------------------------
async function loadPool() {
  const since = Math.floor(Date.now() / 1000) - 86400;
  const [live, stored, usage] = await Promise.all([api("/admin/keys"), api("/admin/api/keys"),
    api(`/admin/api/usage?period=hour&since=${since}`)]);
  const byId = Object.fromEntries(live.keys.map((k) => [k.id, k]));
  const stats = {};
  const hourAgo = Date.now() / 1000 - 3600;
  for (const u of usage.usage) {
    const s = stats[u.key] ||= {h: [0, 0], d: [0, 0]};
    s.d[0] += u.requests; s.d[1] += u.successes;
    if (u.start + 3600 > hourAgo) { s.h[0] += u.requests; s.h[1] += u.successes; }
  }
  pool = stored.keys.map((row) => ({...row, ...(byId[row.id] || {state: row.state, cooldowns: {}}), stats: stats[row.id]}));
  for (const k of live.keys) if (!pool.some((p) => p.id === k.id)) pool.push({...k, stats: stats[k.id]});
  cooldownsAt = Date.now();
  const s = live.summary;
  $("summary").innerHTML = `<b>${s.total}</b> keys: <span class="active">${s.active} active</span> · ` +
    `<span class="cooling">${s.cooling} cooling</span> · <span class="disabled">${s.disabled} disabled</span>`;
  drawPool();
}
function rate(pair) { return pair && pair[0] ? `${pair[0]} <small>${Math.round(100 * pair[1] / pair[0])}% ok</small>` : "0"; }
function drawPool() {
  const state = $("f-state").value, model = $("f-model").value.trim();
  const rows = pool.filter((k) => (!state || k.state === state) && (!model || Object.keys(k.cooldowns || {}).some((m) => m.includes(model))));
  $("keys").tBodies[0].innerHTML = rows.map((k) => {
    const cds = Object.entries(k.cooldowns || {}).map(([m, c]) =>
      `<div>${esc(m)}: <span class="cd" data-until="${c.remaining}">${Math.ceil(c.remaining)}</span> s <small>${esc(c.reason)}</small></div>`).join("");
    const off = k.state === "off";
    const failures = k.failures ? `<br><small>${esc(k.failures)} failure${k.failures === 1 ? "" : "s"} in a row</small>` : "";
    return `<tr data-id="${esc(k.id)}"><td><code>${esc(k.id)}</code>${k.project ? `<br><small>${esc(k.project)}</small>` : ""}</td>
      <td><span class="${esc(k.state)} state">${esc(k.state)}</span><br><small class="reason">${esc(k.reason)}</small>${failures}</td>
      <td class="route">${esc(k.kind)}<br><small>${esc(k.proxy)}</small></td>
      <td class="share">${k.weight === undefined ? "" : `<span class="w">weight ${esc(k.weight)} · tier ${esc(k.tier)}</span>`}${lists(k)}</td><td>${cds}</td>
      <td class="err-text">${esc(k.last_error)}<br><small>${when(k.last_error_at)}</small></td>
      <td class="rates">1 h: ${rate(k.stats && k.stats.h)}<br>24 h: ${rate(k.stats && k.stats.d)}</td>
      <td class="acts"><button data-act="edit">Edit</button><button data-act="check">Check</button>${k.state === "disabled" || off ? '<button data-act="enable">Enable</button>' : '<button data-act="disable">Disable</button>'}<button data-act="delete">Delete</button><div class="result"></div></td></tr>`;
  }).join("") || `<tr><td colspan="8">no keys</td></tr>`;
}
function lists(k) {  // the model lists, shown only when set
  const parts = [];
  if (k.models && k.models.length) parts.push(`models: ${k.models.join(", ")}`);
  if (k.exclude_models && k.exclude_models.length) parts.push(`not: ${k.exclude_models.join(", ")}`);
  return parts.map((p) => `<br><small class="lists">${esc(p)}</small>`).join("");
}
const patterns = (text) => { const list = text.split(/[\s,|]+/).filter(Boolean); return list.length ? list : null; };
// The form sends only the fields the operator changed: a value shown because the settings give it must not be
// stored for the key, or a later change of the settings would no longer reach that key.
const KEY_FIELDS = {weight: "k-weight", tier: "k-tier", models: "k-models", exclude_models: "k-exclude", kind: "k-kind"};
let keyShown = {};
function keyForm(k) {  // the proxy is never prefilled: the API shows it without credentials
  $("key-form").hidden = !k; $("k-proxy").value = ""; if (!k) return;
  $("k-id").value = k.id; $("k-title").textContent = k.id;
  $("k-weight").value = k.weight ?? ""; $("k-tier").value = k.tier ?? "";
  $("k-models").value = (k.models || []).join(", "); $("k-exclude").value = (k.exclude_models || []).join(", ");
  $("k-kind").value = k.kind || "gemini"; $("k-proxy").placeholder = `unchanged (${k.proxy || "direct"})`;
  $("k-proxy-reset").checked = false;
  keyShown = Object.fromEntries(Object.entries(KEY_FIELDS).map(([name, el]) => [name, $(el).value]));
}
const saveKey = guard(async (ev) => {
  ev.preventDefault();
  const id = $("k-id").value, num = (v) => (v === "" ? null : Number(v));
  const read = {weight: num, tier: num, models: patterns, exclude_models: patterns, kind: (v) => v};
  const body = {};
  for (const [name, el] of Object.entries(KEY_FIELDS)) {
    if ($(el).value !== keyShown[name]) body[name] = read[name]($(el).value);
  }
  if ($("k-proxy-reset").checked) body.proxy = null;
  else if ($("k-proxy").value.trim()) body.proxy = $("k-proxy").value.trim();
  if (Object.keys(body).length) await api(`/admin/api/keys/${encodeURIComponent(id)}`, {method: "PATCH", body});
  flash(Object.keys(body).length ? `key ${id} saved` : `key ${id}: nothing changed`); keyForm(null); await loadPool();
});
function tickCooldowns() {
  const gone = (Date.now() - cooldownsAt) / 1000;
  for (const el of document.querySelectorAll(".cd")) el.textContent = Math.max(0, Math.ceil(el.dataset.until - gone));
}
const keyAction = guard(async (ev) => {
  const btn = ev.target.closest("button[data-act]"); if (!btn) return;
  const id = btn.closest("tr").dataset.id, act = btn.dataset.act;
  if (act === "edit") return keyForm(pool.find((k) => k.id === id));
  if (act === "delete") {
    if (!confirm(`Delete key ${id}?`)) return;
    await api(`/admin/api/keys/${encodeURIComponent(id)}`, {method: "DELETE"}); flash(`key ${id} deleted`);
  } else if (act === "check") {
    btn.disabled = true;
    const r = await api(`/admin/keys/${encodeURIComponent(id)}/check`, {method: "POST"});
    flash(`check of ${id}: ${r.check}${r.status ? " (" + r.status + ")" : ""}${r.reason ? ": " + r.reason : ""}`, r.check !== "ok");
  } else {
    await api(`/admin/api/keys/${encodeURIComponent(id)}/${act}`, {method: "POST"}); flash(`key ${id}: ${act}d`);
  }
  await loadPool();
});
const addKeys = guard(async () => {
  const r = await api("/admin/api/keys", {method: "POST", body: {keys: $("paste").value}});
  flash(`added ${r.added.length}, already there ${r.existing.length}` + (r.refused.length ? `, refused ${r.refused.length}: ${r.refused.map((x) => x.reason).join("; ")}` : ""), r.refused.length > 0);
  $("paste").value = ""; await loadPool();
});
function exportKeys() {
  const text = "id,state,reason,kind,proxy,weight,tier\n" + pool.map((k) => [k.id, k.state, k.reason || "", k.kind || "", k.proxy || "", k.weight ?? "", k.tier ?? ""].map((v) => `"${String(v).replace(/"/g, '""')}"`).join(",")).join("\n");
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], {type: "text/csv"})); a.download = "keys.csv"; a.click();
}

// -- tokens -------------------------------------------------------------------------------------------------
const LIMITS = ["rpm", "rpd", "tpm", "tpd", "concurrent"];
let tokens = [];
async function loadTokens() {
  tokens = (await api("/admin/api/tokens")).tokens;
  const since = Math.floor(Date.now() / 1000) - 30 * 86400;
  const usage = (await api(`/admin/api/usage?period=day&by=token&since=${since}`)).usage;
  const per = {};
  for (const u of usage) { const p = per[u.token] ||= [0, 0]; p[0] += u.requests; p[1] += u.input_tokens + u.output_tokens; }
  $("tokens").tBodies[0].innerHTML = tokens.map((t) => `<tr data-id="${esc(t.id)}"><td>${esc(t.name)}</td><td><code>${esc(t.id)}</code> <small>${esc(t.hint)}</small></td>
    <td class="${t.enabled ? "active" : "disabled"}">${t.enabled ? "enabled" : "disabled"}</td><td>${esc((t.models || []).join(", ") || "all")}</td>
    <td>${LIMITS.filter((f) => t.limits[f]).map((f) => `${f} ${t.limits[f]}`).join(", ") || "none"}</td>
    <td>${(per[t.id] || [0, 0])[0]} req, ${(per[t.id] || [0, 0])[1]} tokens</td>
    <td><button data-act="edit">Edit</button><button data-act="${t.enabled ? "disable" : "enable"}">${t.enabled ? "Disable" : "Enable"}</button><button data-act="delete">Delete</button></td></tr>`).join("")
    || `<tr><td colspan="7">no tokens</td></tr>`;
}
function hideSecret() { $("secret").hidden = true; $("secret-value").textContent = ""; }  // shown once, then gone
function tokenForm(t) {
  $("t-id").value = t ? t.id : ""; $("t-name").value = t ? t.name : ""; $("t-models").value = t ? (t.models || []).join(", ") : "";
  for (const f of LIMITS) $("t-" + f).value = t && t.limits[f] ? t.limits[f] : "";
  $("t-save").textContent = t ? "Save changes" : "Create token"; $("t-cancel").hidden = !t;
}
const saveToken = guard(async (ev) => {
  ev.preventDefault();
  const limits = Object.fromEntries(LIMITS.map((f) => [f, $("t-" + f).value ? Number($("t-" + f).value) : null]));
  const body = {name: $("t-name").value, models: $("t-models").value.split(",").map((m) => m.trim()).filter(Boolean), limits};
  const id = $("t-id").value;
  if (id) { await api(`/admin/api/tokens/${encodeURIComponent(id)}`, {method: "PATCH", body}); flash(`token ${body.name} saved`); hideSecret(); }
  else {
    const r = await api("/admin/api/tokens", {method: "POST", body});
    $("secret-value").textContent = r.secret; $("secret").hidden = false; flash(`token ${r.name} created`);
  }
  tokenForm(null); await loadTokens();
});
const tokenAction = guard(async (ev) => {
  const btn = ev.target.closest("button[data-act]"); if (!btn) return;
  const id = btn.closest("tr").dataset.id, act = btn.dataset.act;
  hideSecret();
  if (act === "edit") return tokenForm(tokens.find((t) => t.id === id));
  if (act === "delete") { if (!confirm("Delete this token?")) return; await api(`/admin/api/tokens/${encodeURIComponent(id)}`, {method: "DELETE"}); }
  else await api(`/admin/api/tokens/${encodeURIComponent(id)}/${act}`, {method: "POST"});
  flash(`token ${id}: ${act}`); await loadTokens();
});

// -- usage --------------------------------------------------------------------------------------------------
const FAILS = ["rate_limited", "quota_exhausted", "key_invalid", "client_error", "transient"];
async function loadUsage() {
  const period = $("u-period").value, by = $("u-by").value, step = period === "hour" ? 3600 : 86400;
  const count = period === "hour" ? 24 : 30, now = Math.floor(Date.now() / 1000);
  const first = Math.floor(now / step) * step - (count - 1) * step;
  const q = new URLSearchParams({period, by, since: String(first)});
  if ($("u-subject").value.trim()) q.set(by, $("u-subject").value.trim());
  if ($("u-model").value.trim()) q.set("model", $("u-model").value.trim());
  const rows = (await api("/admin/api/usage?" + q)).usage;
  const buckets = Array.from({length: count}, (_, i) => ({start: first + i * step, req: 0, fail: 0, tok: 0}));
  const classes = Object.fromEntries(FAILS.map((f) => [f, 0])), top = {};
  for (const r of rows) {
    const b = buckets[Math.floor((r.start - first) / step)];
    const fails = FAILS.reduce((n, f) => n + (r[f] || 0), 0);
    if (b) { b.req += r.requests; b.fail += fails; b.tok += r.input_tokens + r.output_tokens; }
    for (const f of FAILS) classes[f] += r[f] || 0;
    if (by === "key" && r.rate_limited) top[r.key] = (top[r.key] || 0) + r.rate_limited;
  }
  const label = (t) => period === "hour" ? new Date(t * 1000).getHours() + "h" : new Date(t * 1000).getDate() + "";
  $("chart-requests").innerHTML = bars(buckets, [["req", "req"], ["fail", "fail"]], label);
  $("chart-tokens").innerHTML = bars(buckets, [["tok", "tok"]], label);
  $("u-classes").innerHTML = FAILS.map((f) => `${f}: <b>${classes[f]}</b>`).join(" · ");
  const ranked = Object.entries(top).sort((a, b) => b[1] - a[1]).slice(0, 10);
  $("u-top").innerHTML = ranked.length ? "<ol>" + ranked.map(([k, n]) => `<li><code>${esc(k)}</code>: ${n}</li>`).join("") + "</ol>" : "none";
}
function bars(buckets, series, label) {
  const W = 600, H = 180, pad = 18, max = Math.max(1, ...buckets.map((b) => b[series[0][0]]));
  const w = (W - 2 * pad) / buckets.length;
  let out = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="chart"><text x="2" y="10">${max}</text>`;
  buckets.forEach((b, i) => {
    series.forEach(([field, cls], j) => {
      const h = (H - 2 * pad) * b[field] / max, x = pad + i * w + j * w * 0.2;
      if (b[field]) out += `<rect class="${cls}" data-value="${b[field]}" x="${x.toFixed(1)}" y="${(H - pad - h).toFixed(1)}" width="${(w * 0.7).toFixed(1)}" height="${h.toFixed(1)}"><title>${b[field]}</title></rect>`;
    });
    if (i % Math.ceil(buckets.length / 12) === 0) out += `<text x="${(pad + i * w).toFixed(1)}" y="${H - 4}">${label(b.start)}</text>`;
  });
  return out + "</svg>";
}

// -- error log ----------------------------------------------------------------------------------------------
async function loadErrors(before) {
  const q = new URLSearchParams({limit: "50"});
  for (const [id, p] of [["e-key", "key"], ["e-model", "model"], ["e-class", "class"]]) if ($(id).value.trim()) q.set(p, $(id).value.trim());
  if (before) q.set("before", before);
  const r = await api("/admin/api/errors?" + q);
  const since = $("e-since").value ? Date.now() / 1000 - Number($("e-since").value) : 0;
  const rows = r.errors.filter((e) => e.at >= since);
  $("errors").tBodies[0].innerHTML = rows.map((e) => `<tr><td>${when(e.at)}</td><td><code>${esc(e.key_id)}</code></td><td>${esc(e.model)}</td>
    <td class="err">${esc(e.class)}</td><td>${esc(e.status)}</td><td>${esc(e.reason)}</td></tr>`).join("") || `<tr><td colspan="6">no errors</td></tr>`;
  $("e-next").disabled = !r.next_before; $("e-next").dataset.before = r.next_before || "";
}

// -- settings -----------------------------------------------------------------------------------------------
async function loadSettings() {
  const s = (await api("/admin/api/settings")).settings;
  $("settings").tBodies[0].innerHTML = Object.entries(s).map(([k, v]) => `<tr><th>${esc(k)}</th><td><code>${esc(JSON.stringify(v))}</code></td></tr>`).join("");
}

// -- wiring -------------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await api("/admin/login", {method: "POST", body: {token: $("login-token").value}}); $("login-token").value = ""; await start(); }
    catch (e) { $("login-error").textContent = e.message; }
  });
  $("logout").addEventListener("click", async () => { await api("/admin/logout", {method: "POST"}).catch(() => {}); showLogin("Logged out."); });
  $("tabs").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-tab]"); if (!b) return;
    tab = b.dataset.tab;
    for (const x of document.querySelectorAll("#tabs button")) x.classList.toggle("on", x === b);
    for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + tab;
    flash(""); refresh();
  });
  $("keys").addEventListener("click", keyAction);
  $("add-keys").addEventListener("click", addKeys);
  $("key-form").addEventListener("submit", saveKey);
  $("k-cancel").addEventListener("click", () => keyForm(null));
  $("export").addEventListener("click", exportKeys);
  $("f-state").addEventListener("change", drawPool); $("f-model").addEventListener("input", drawPool);
  $("token-form").addEventListener("submit", saveToken);
  $("t-cancel").addEventListener("click", () => tokenForm(null));
  $("tokens").addEventListener("click", tokenAction);
  for (const id of ["u-period", "u-by", "u-subject", "u-model"]) $(id).addEventListener("change", refresh);
  for (const id of ["e-since", "e-key", "e-model", "e-class"]) $(id).addEventListener("change", () => { errorPages = [null]; refresh(); });
  $("e-first").addEventListener("click", () => { errorPages = [null]; refresh(); });
  $("e-next").addEventListener("click", () => { errorPages.push($("e-next").dataset.before); refresh(); });
  // The cookie is HttpOnly: ask the server whether the session is still good.
  api("/admin/api/settings").then(start, () => showLogin());
});
