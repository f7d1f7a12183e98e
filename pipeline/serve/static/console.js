// recloop console: plain JavaScript over API v1. Live parts use server-sent events read with
// fetch() (so the API key travels in a header, never in a URL).
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { view: null, user: null, userStream: null, overviewStream: null, doc: null, catalogueTimer: null, expTimer: null };

// ------------------------------------------------------------------ helpers
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}
function headers(extra = {}) {
  const key = localStorage.getItem("recloop.key") || "";
  return key ? { "X-API-Key": key, ...extra } : extra;
}
async function api(path, opts = {}) {
  const resp = await fetch(path, { ...opts, headers: headers(opts.headers || {}) });
  const text = await resp.text();
  const body = text ? JSON.parse(text) : null;
  if (!resp.ok) throw Object.assign(new Error((body && body.detail) || resp.statusText), { status: resp.status, body });
  return body;
}
const fmt = (x, d = 1) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");
const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Server-sent events over fetch, reconnecting until `ctl` is aborted.
async function stream(path, onEvent, ctl) {
  while (!ctl.signal.aborted) {
    try {
      const resp = await fetch(path, { headers: headers(), signal: ctl.signal });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = "message", data = "";
          for (const line of chunk.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) onEvent(event, JSON.parse(data));
        }
      }
    } catch (err) {
      if (ctl.signal.aborted) return;
      onEvent("problem", { detail: String(err.message || err) });
    }
    await sleep(2000);
  }
}

function spark(svg, values) {
  const w = svg.clientWidth || 200, h = 40;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const vals = values.map((v) => (v === null || v === undefined ? 0 : v));
  const max = Math.max(1e-9, ...vals);
  const step = vals.length > 1 ? w / (vals.length - 1) : w;
  const pts = vals.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
  const ns = "http://www.w3.org/2000/svg";
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts.join(" "));
  svg.replaceChildren(line);
}

// ------------------------------------------------------------------ overview
const history = [];
function renderOverview(p) {
  if (!p) return;
  history.push(p);
  while (history.length > 300) history.shift();
  const byType = p.events_per_s_by_type || {};
  const total = p.events_per_s ?? Object.values(byType).reduce((a, b) => a + b, 0);
  $("#ov-events").textContent = fmt(total);
  $("#ov-by-type").textContent = Object.entries(byType).map(([k, v]) => `${k} ${fmt(v)}`).join(" · ") || "per type: needs worker metrics URLs";
  $("#ov-p50").textContent = fmt(p.event_to_list_p50_ms, 0);
  $("#ov-p99").textContent = fmt(p.event_to_list_p99_ms, 0);
  $("#ov-lag").textContent = p.consumer_lag ?? "–";
  $("#ov-loop").textContent = fmt(p.event_loop_lag_ms, 0);
  $("#ov-workers").textContent = p.workers_alive ?? "–";
  $("#ov-group").textContent = `group ${p.group_state ?? "?"}; metrics answering: ${p.workers_metrics_answering ?? "–"}`;
  $("#ov-lists").textContent = fmt(p.lists_per_s);
  $("#ov-active").textContent = `${p.active_users_1m ?? "–"} users active in the last minute`;
  $("#ov-dlq").textContent = fmt(p.dead_letters_per_s, 2);
  const reasons = Object.entries(p.dead_letters_by_reason || {}).filter(([, v]) => v > 0);
  $("#ov-dlq-reasons").textContent = reasons.map(([k, v]) => `${k} ${v}`).join(" · ") || "none so far";
  spark($("#sp-events"), history.map((h) => h.events_per_s));
  spark($("#sp-p99"), history.map((h) => h.event_to_list_p99_ms));
  spark($("#sp-lag"), history.map((h) => h.consumer_lag));
  spark($("#sp-loop"), history.map((h) => h.event_loop_lag_ms));
  spark($("#sp-lists"), history.map((h) => h.lists_per_s));
  spark($("#sp-dlq"), history.map((h) => h.dead_letters_per_s));
  $("#overview-status").textContent = `updated ${time(p.ts)}${p.kafka_ok ? "" : " · Kafka not answering"}`;
}
async function startOverview() {
  if (state.overviewStream) return;
  state.overviewStream = new AbortController();
  try {
    const body = await api("/v1/overview");
    history.length = 0;
    for (const p of body.history.slice(0, -1)) history.push(p);
    renderOverview(body.latest);
  } catch (err) { $("#overview-status").textContent = "overview: " + err.message; }
  stream("/v1/overview/stream", (ev, data) => {
    if (ev === "overview") renderOverview(data);
    else if (ev === "problem") $("#overview-status").textContent = "reconnecting: " + data.detail;
  }, state.overviewStream);
}

// ------------------------------------------------------------------ user view
async function act(kind, entry) {
  const user = state.user;
  const info = (state.doc && state.doc.items[entry.item_id]) || {};
  const duration = 600;
  let path = "/v1/events", body;
  if (kind === "watch") body = { type: "watch", user_id: user, item_id: entry.item_id, watch_seconds: duration, duration_seconds: duration };
  else if (kind === "click") body = { type: "click", user_id: user, item_id: entry.item_id };
  else if (kind === "skip") body = { type: "skip", user_id: user, item_id: entry.item_id, watch_seconds: 2, duration_seconds: duration };
  else if (kind === "not_interested") { path = "/v1/controls"; body = { type: "not_interested", user_id: user, item_id: entry.item_id }; }
  else if (kind === "mute") { path = "/v1/controls"; body = { type: "mute", user_id: user, category: (info.categories || [])[0] }; }
  else if (kind === "unmute") { path = "/v1/controls"; body = { type: "unmute", user_id: user, category: entry.category }; }
  $("#user-status").textContent = `sending ${kind} ${entry.item_id || entry.category}…`;
  try {
    const res = await api(path, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
    $("#user-status").textContent = `${kind} accepted (${res.ids[0].slice(0, 8)}); waiting for the new list…`;
  } catch (err) { $("#user-status").textContent = `${kind} refused: ${err.message}`; }
}

function catChips(cats) { return (cats || []).map((c) => el("span", { class: "cat" }, c)); }
// The new-item slot's reasons (pipeline/lists/new_items.py) get a label of their own.
const SLOT_REASON = /^(live now|new from a creator you watch|new in .+|new this week)$/;
function reasonCell(reason) {
  return SLOT_REASON.test(reason || "") ? el("span", { class: "slot", title: "new-item slot" }, reason) : reason;
}

function renderUser(doc) {
  if (doc.unknown) {
    $("#user-panel").hidden = true;
    $("#user-status").textContent = `recloop keeps nothing about ${doc.user_id} (yet): send an event from the Explore list`;
    renderExplore(doc.user_id);
    $("#user-panel").hidden = false;
    $("#user-list tbody").replaceChildren();
    return;
  }
  const previous = new Set(((state.doc && state.doc.list && state.doc.list.items) || []).map((e) => e.item_id));
  state.doc = doc;
  $("#user-panel").hidden = false;
  const list = doc.list;
  $("#list-meta").textContent = list
    ? `generated ${time(list.generated_ts)} · ${list.personalized ? "personalised" : "not personalised"} · model ${list.model_version}`
    : "no list yet";
  const rows = ((list && list.items) || []).map((entry, i) => {
    const info = doc.items[entry.item_id] || { categories: [], title: null };
    const buttons = [["watch", "watch fully"], ["click", "click"], ["skip", "skip"], ["not_interested", "not interested"], ["mute", "mute category"]]
      .map(([kind, label]) => el("button", { type: "button", dataset: { action: kind }, onclick: () => act(kind, entry) }, label));
    return el("tr", { class: "rec" + (previous.size && !previous.has(entry.item_id) ? " fresh" : ""), dataset: { item: entry.item_id, category: (info.categories || [])[0] || "" } },
      el("td", {}, String(i + 1)),
      el("td", {}, el("div", {}, info.title || entry.item_id), el("div", { class: "small" }, entry.item_id)),
      el("td", {}, catChips(info.categories)),
      el("td", {}, fmt(entry.score, 3)),
      el("td", { class: "small" }, reasonCell(entry.reason)),
      el("td", { class: "acts" }, buttons));
  });
  $("#user-list tbody").replaceChildren(...rows);
  const exp = doc.experiment ? `${doc.experiment.name} / ${doc.experiment.variant}` : "none";
  const facts = [["user", doc.user_id], ["personalised", String(doc.personalized)], ["experiment arm", exp],
    ...Object.entries(doc.segments).map(([k, v]) => ["segment " + k, v])];
  $("#user-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const c = doc.controls;
  const muted = c.muted_categories.map((cat) => el("span", {}, el("span", { class: "cat" }, cat),
    el("button", { type: "button", dataset: { action: "unmute", category: cat }, onclick: () => act("unmute", { category: cat }) }, "unmute"), " "));
  $("#user-controls").replaceChildren(
    el("div", {}, `personalization ${c.personalization}`),
    el("div", {}, "muted categories: ", muted.length ? muted : "none"),
    el("div", { class: "small" }, `muted creators: ${c.muted_creators.join(", ") || "none"} · muted items: ${c.muted_items.join(", ") || "none"} · not interested: ${Object.keys(c.not_interested || {}).join(", ") || "none"}`));
  const aff = Object.entries(doc.signals.category_affinity || {}).sort((a, b) => b[1] - a[1]);
  const amax = Math.max(1e-9, ...aff.map(([, v]) => Math.abs(v)));
  $("#user-affinity").replaceChildren(...aff.map(([cat, v]) => el("div", {},
    el("span", { class: "bar" + (v < 0 ? " neg" : ""), style: `width:${Math.round(80 * Math.abs(v) / amax)}px` }), ` ${cat} ${fmt(v, 2)}`)));
  $("#user-history tbody").replaceChildren(...doc.history.map((h) => el("tr", {},
    el("td", {}, time(h.ts)), el("td", {}, h.type), el("td", {}, (doc.items[h.item_id] || {}).title || h.item_id),
    el("td", {}, catChips((doc.items[h.item_id] || {}).categories)), el("td", {}, h.completion === null ? "" : pct(h.completion)))));
  $("#user-features tbody").replaceChildren(...Object.entries(doc.features).filter(([k]) => !["affinity", "top_categories"].includes(k))
    .map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v))));
  $("#user-status").textContent = list ? `list updated ${time(list.generated_ts)}${list.trigger_event_id ? " after " + list.trigger_event_id.slice(0, 8) : " (background refresh)"}` : "";
  renderExplore(doc.user_id);
}

let exploreCache = { ts: 0, items: [] };
async function renderExplore(user) {
  if (Date.now() - exploreCache.ts > 10000) {
    try { exploreCache = { ts: Date.now(), items: (await api("/v1/items?limit=500")).items }; } catch (err) { return; }
  }
  const listed = new Set(((state.doc && state.doc.list && state.doc.list.items) || []).map((e) => e.item_id));
  const seen = new Set(((state.doc && state.doc.history) || []).map((h) => h.item_id));
  const byCat = new Map();
  for (const item of exploreCache.items) {
    const cat = item.categories[0] || "uncategorised";
    if (listed.has(item.item_id) || seen.has(item.item_id)) continue;
    if (!byCat.has(cat)) byCat.set(cat, []);
    if (byCat.get(cat).length < 3) byCat.get(cat).push(item);
  }
  const rows = [...byCat.entries()].sort().map(([cat, items]) => el("div", { class: "explore-cat" }, el("b", {}, cat),
    items.map((item) => el("span", { class: "explore-item", dataset: { item: item.item_id, category: cat } },
      el("button", { type: "button", dataset: { action: "watch" }, title: "watch fully as " + user, onclick: () => act("watch", item) }, "▶ " + (item.title || item.item_id))))));
  $("#explore").replaceChildren(...rows);
}

function openUser(user) {
  if (!user) return;
  $("#user-id").value = user;
  if (state.userStream) state.userStream.abort();
  state.user = user;
  state.doc = null;
  location.hash = "#user/" + encodeURIComponent(user);
  $("#user-status").textContent = `loading ${user}…`;
  state.userStream = new AbortController();
  stream(`/v1/users/${encodeURIComponent(user)}/stream`, (ev, data) => {
    if (ev === "user" && data.user_id === state.user) renderUser(data);
    else if (ev === "problem") $("#user-status").textContent = "reconnecting: " + data.detail;
  }, state.userStream);
}

async function loadRecentUsers() {
  try {
    const body = await api("/v1/users?limit=8");
    $("#recent-users").replaceChildren(...body.users.map((u) => el("button", { type: "button", onclick: () => openUser(u.user_id) }, u.user_id)));
  } catch (err) { $("#recent-users").textContent = err.message; }
}

// ------------------------------------------------------------------ experiments
function ciChart(rows) {
  const ns = "http://www.w3.org/2000/svg";
  const w = 460, rowH = 26, h = rows.length * rowH + 30;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart"); svg.setAttribute("viewBox", `0 0 ${w} ${h}`); svg.setAttribute("width", w);
  const vals = rows.flatMap((r) => [r.lo, r.hi, r.v]).filter((x) => x !== null && x !== undefined);
  const lim = Math.max(0.05, ...vals.map(Math.abs));
  const x = (v) => 130 + ((v + lim) / (2 * lim)) * (w - 150);
  const add = (tag, attrs, text) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text) n.textContent = text; svg.append(n); };
  add("line", { x1: x(0), x2: x(0), y1: 0, y2: h - 20, stroke: "#999", "stroke-dasharray": "3 3" });
  add("text", { x: x(0) - 4, y: h - 6 }, "0");
  add("text", { x: x(-lim), y: h - 6 }, (-100 * lim).toFixed(0) + "%");
  add("text", { x: x(lim) - 30, y: h - 6 }, "+" + (100 * lim).toFixed(0) + "%");
  rows.forEach((r, i) => {
    const y = i * rowH + 16;
    add("text", { x: 0, y: y + 4 }, r.label);
    if (r.v === null || r.v === undefined) { add("text", { x: 130, y: y + 4 }, "not enough data"); return; }
    if (r.lo !== null && r.hi !== null) add("line", { x1: x(r.lo), x2: x(r.hi), y1: y, y2: y, stroke: "#2f6fde", "stroke-width": 2 });
    add("circle", { cx: x(r.v), cy: y, r: 4, fill: r.v >= 0 ? "#1f9d55" : "#d64545" });
  });
  return svg;
}
const METRIC_LABELS = { click_through: "click-through", completion_rate: "completion", skip_rate: "skip rate", events_per_user: "events / user" };
const metricLabel = (m) => METRIC_LABELS[m] || m.replace(/^return_/, "return ");
const metricValue = (m, x) => (x === null || x === undefined ? "–" : m === "events_per_user" ? x.toFixed(2) : pct(x));
const signed = (m, x) => (x === null || x === undefined ? "–" : m === "events_per_user" ? (x >= 0 ? "+" : "") + x.toFixed(2) : (x >= 0 ? "+" : "") + (100 * x).toFixed(1) + " pts");
function srmNote(exp) {
  const s = exp.srm;
  const text = `users per arm ${Object.entries(exp.users).map(([k, v]) => `${k} ${v}`).join(", ")}; sample ratio chi² ${s.chi2.toFixed(2)}, p=${s.p_value.toPrecision(2)}`;
  if (!s.mismatch) return el("p", { class: "small srm-ok" }, text + ": matches the declared shares");
  return el("p", { class: "srm-mismatch" }, "Sample ratio mismatch: " + text + ". Assignment or exposure is broken; do not trust this experiment's metrics.");
}
async function loadExperiments() {
  try {
    const body = await api("/v1/experiments");
    if (!body.experiments.length) { $("#experiments").replaceChildren(el("p", {}, "No experiments declared (RECLOOP_EXPERIMENTS_FILE).")); return; }
    $("#experiments").replaceChildren(...body.experiments.map((exp) => {
      const metrics = exp.variants.length ? Object.keys(exp.variants[0].metrics) : [];
      const head = el("tr", {}, ...["variant", "share", "users", "lists shown", "actions", ...metrics.map(metricLabel)].map((t) => el("th", {}, t)));
      const rows = exp.variants.map((v) => el("tr", {}, el("td", {}, v.variant), el("td", {}, pct(v.share)), el("td", {}, String(v.users)),
        el("td", {}, String(v.exposures)), el("td", {}, String(v.actions)), ...metrics.map((m) => el("td", {}, metricValue(m, v.metrics[m].value)))));
      const others = exp.variants.filter((v) => v.variant !== exp.control);
      const cmpHead = el("tr", {}, ...["variant", "metric", "control", "variant value", "difference (95% CI)", "lift (95% CI)", "p", "users (control / variant)"].map((t) => el("th", {}, t)));
      const control = exp.variants.find((v) => v.variant === exp.control);
      const cmpRows = others.flatMap((v) => metrics.map((m) => {
        const c = (v.comparisons || {})[m] || {};
        const diff = c.diff === null || c.diff === undefined ? "–" : `${signed(m, c.diff)} [${signed(m, c.diff_low)}, ${signed(m, c.diff_high)}]`;
        const lift = c.lift === null || c.lift === undefined ? "–" : `${pct(c.lift)} [${pct(c.lift_low)}, ${pct(c.lift_high)}]`;
        const sig = c.diff_low !== null && c.diff_low !== undefined && (c.diff_low > 0 || c.diff_high < 0);
        return el("tr", {}, el("td", {}, v.variant), el("td", {}, metricLabel(m)), el("td", {}, metricValue(m, c.control)), el("td", {}, metricValue(m, c.treatment)),
          el("td", { class: sig ? (c.diff > 0 ? "up" : "down") : "" }, diff), el("td", {}, lift),
          el("td", {}, c.p_value === null || c.p_value === undefined ? "–" : c.p_value.toPrecision(2)),
          el("td", {}, `${control ? control.metrics[m].users : "–"} / ${v.metrics[m].users}`));
      }));
      const chartRows = others.flatMap((v) => metrics.map((m) => {
        const c = (v.comparisons || {})[m];
        return { label: `${v.variant} ${metricLabel(m)}`, v: c ? c.lift : null, lo: c ? c.lift_low : null, hi: c ? c.lift_high : null };
      }));
      return el("div", { class: "experiment" }, el("h2", {}, `${exp.experiment} `, el("span", { class: "small" }, `control: ${exp.control}; attribution ${exp.attribution_seconds}s; ${exp.method}`)),
        srmNote(exp),
        el("table", {}, el("thead", {}, head), el("tbody", {}, rows)),
        el("h3", {}, "against control, per user (95% confidence intervals)"),
        el("table", { class: "compact comparisons" }, el("thead", {}, cmpHead), el("tbody", {}, cmpRows)),
        el("h3", {}, "lift against control with 95% confidence interval"), ciChart(chartRows));
    }));
    $("#experiments-status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) { $("#experiments-status").textContent = err.message; }
}

// ------------------------------------------------------------------ catalogue
async function showItem(itemId) {
  try {
    const it = await api("/v1/items/" + encodeURIComponent(itemId));
    const s = it.stats || {};
    const window = [it.available_from_ts && "from " + new Date(it.available_from_ts).toLocaleString(),
      it.available_until_ts && "until " + new Date(it.available_until_ts).toLocaleString()].filter(Boolean).join(" ");
    const toggle = el("button", { id: "availability-toggle", onclick: () => setAvailability(it.item_id, !it.available) },
      it.available ? "withdraw" : "restore");
    $("#item-detail").replaceChildren(el("dl", {}, ...[
      ["item", it.item_id], ["title", it.title || "–"], ["categories", it.categories.join(", ")], ["creator", it.creator_id || "–"],
      ["availability", (it.available ? "available" : "withdrawn") + (window ? " (" + window + ")" : "")],
      ["global trending rank", it.trending_rank ?? "–"], ["interactions", fmt(s.interactions, 0)], ["watches", fmt(s.watches, 0)],
      ["skips", fmt(s.skips, 0)], ["skip rate", pct(s.skip_rate)], ["mean completion", pct(s.mean_completion)], ["popularity", fmt(s.popularity, 2)],
    ].flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])), toggle, el("span", { id: "availability-status", class: "small" }, ""));
  } catch (err) { $("#item-detail").textContent = err.message; }
}
// Withdraw or restore through the API (write key): the workers take the item out of every
// list within seconds; the API stops serving it at once.
async function setAvailability(itemId, available) {
  try {
    await api("/v1/items/" + encodeURIComponent(itemId) + "/availability", {
      method: "PUT", body: JSON.stringify({ available }), headers: { "Content-Type": "application/json" } });
    for (let i = 0; i < 20; i++) {
      await sleep(250);
      const it = await api("/v1/items/" + encodeURIComponent(itemId));
      if (it.available === available) break;
    }
    await showItem(itemId);
    $("#availability-status").textContent = available ? " restored" : " withdrawn";
  } catch (err) { $("#availability-status").textContent = " " + err.message; }
}
async function loadCatalogue() {
  try {
    const seg = $("#segment").value || "global";
    const trending = await api("/v1/trending?n=30&segment=" + encodeURIComponent(seg));
    const current = $("#segment").value;
    $("#segment").replaceChildren(...trending.segments.map((s) => el("option", s === (current || "global") ? { value: s, selected: "" } : { value: s }, s)));
    $("#trending tbody").replaceChildren(...trending.items.map((t) => el("tr", { onclick: () => showItem(t.item_id) },
      el("td", {}, String(t.rank)), el("td", {}, t.title || t.item_id), el("td", {}, catChips(t.categories)))));
    const cat = $("#category").value;
    const items = await api("/v1/items?limit=40" + (cat ? "&category=" + encodeURIComponent(cat) : ""));
    $("#category").replaceChildren(el("option", { value: "" }, "all"), ...Object.entries(items.categories).map(([c, n]) =>
      el("option", c === cat ? { value: c, selected: "" } : { value: c }, `${c} (${n})`)));
    $("#items tbody").replaceChildren(...items.items.map((it) => el("tr", { onclick: () => showItem(it.item_id) },
      el("td", {}, (it.title || it.item_id) + (it.available === false ? " (withdrawn)" : "")), el("td", {}, catChips(it.categories)),
      el("td", {}, it.stats && it.stats.interactions !== undefined ? `${fmt(it.stats.interactions, 0)} interactions` : "stats after next snapshot"))));
  } catch (err) { $("#item-detail").textContent = err.message; }
}

// ------------------------------------------------------------------ navigation
function show(view) {
  state.view = view;
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
  clearInterval(state.catalogueTimer); clearInterval(state.expTimer);
  if (view === "user") loadRecentUsers();
  if (view === "experiments") { loadExperiments(); state.expTimer = setInterval(loadExperiments, 5000); }
  if (view === "catalogue") { loadCatalogue(); state.catalogueTimer = setInterval(loadCatalogue, 10000); }
}
function route() {
  const hash = location.hash.slice(1);
  const [view, arg] = hash.split("/");
  show(["overview", "user", "experiments", "catalogue"].includes(view) ? view : "overview");
  if (view === "user" && arg && decodeURIComponent(arg) !== state.user) openUser(decodeURIComponent(arg));
}

$("#api-key").value = localStorage.getItem("recloop.key") || "";
$("#api-key").addEventListener("change", (e) => { localStorage.setItem("recloop.key", e.target.value); location.reload(); });
$("#user-form").addEventListener("submit", (e) => { e.preventDefault(); openUser($("#user-id").value.trim()); });
$("#segment").addEventListener("change", loadCatalogue);
$("#category").addEventListener("change", loadCatalogue);
window.addEventListener("hashchange", route);
startOverview();
route();
