// The arborec page: look up a user, draw long/short-term interest sunbursts, list recommendations with reasons
// worded from the numbers, the user's recent events, the user segments, item search, and post events.
"use strict";

const $ = (id) => document.getElementById(id);
// Relative URLs: the page also works under a path prefix behind a proxy.
const api = (path) => path.replace(/^\//, "");

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function getJSON(url, options = {}) {
  const key = $("api-key").value;  // reads need a key with the read scope (unless the server has public reads)
  const headers = { ...(options.headers || {}), ...(key ? { "X-API-Key": key } : {}) };
  const response = await fetch(api(url), { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = body.errors ? body.errors.map((e) => `${e.where}: ${e.problem}`).join("; ") : body.detail;
    throw new Error(`${response.status}: ${detail || response.statusText}`);
  }
  return body;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A tree path as a person reads it (the same rule as arborec.profiles._explain.readable_interest).
function readablePath(path) {
  let parts = path.map((p, i) => (i === 0 ? p.split(" · ")[0] : p)).filter((p, i, a) => i === 0 || p !== a[i - 1]);
  if (parts.length > 2 && parts.slice(1).some((p) => p.includes(", "))) parts = [parts[0], parts[parts.length - 1]];
  return parts.join(" › ");
}

const pct = (x) => `${Math.round(100 * x)}%`;
const short = (text, n) => (text.length <= n ? text : `${text.slice(0, n - 1)}…`);

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];

// Colours: one hue per node of the shallowest level where the user has two or more interests (so a user with
// a single top-level interest still gets distinct colours), lighter at finer levels, the same in both charts.
function nodeColours(nodes) {
  const byId = new Map(nodes.map((n) => [`${n.level}:${n.node}`, n]));
  const present = (level) => nodes.filter((n) => n.level === level && (n.long > 0 || n.short > 0));
  const maxLevel = Math.max(...nodes.map((n) => n.level));
  let split = 1;
  while (split < maxLevel && present(split).length < 2) split += 1;
  const hue = new Map(present(split).sort((a, b) => (b.long + b.short) - (a.long + a.short))
    .map((n, i) => [`${n.level}:${n.node}`, PALETTE[i % PALETTE.length]]));
  return nodes.map((n) => {
    if (n.level < split) return "#9aa5ad";  // above the split: the one shared interest, in grey
    let anc = n;
    while (anc.level > split) anc = byId.get(`${anc.level - 1}:${anc.parent}`) || { level: split, node: -1 };
    const base = hue.get(`${anc.level}:${anc.node}`) || "#9aa5ad";
    const alpha = Math.round(255 * (1 - 0.25 * (n.level - split))).toString(16).padStart(2, "0");
    return base + alpha;
  });
}

function fullPath(n, byId) {
  const out = [n.label];
  let cur = n;
  while (cur.level > 1 && byId.has(`${cur.level - 1}:${cur.parent}`)) {
    cur = byId.get(`${cur.level - 1}:${cur.parent}`);
    out.unshift(cur.label);
  }
  return out.join(" › ");
}

// Sunburst traces: leaves carry the shares, inner nodes 0 ("remainder": a parent is the sum of its children).
// Labels are horizontal and at least 11 px; a wedge too thin for its label shows none (hover, or the table).
function sunburstTrace(nodes, term, nLevels, colours, nEvents) {
  const byId = new Map(nodes.map((n) => [`${n.level}:${n.node}`, n]));
  const keep = nodes.map((n) => n[term] > 0);
  const kept = nodes.filter((_, i) => keep[i]);
  const what = term === "long" ? "of all events" : "of the recent events";
  return {
    type: "sunburst", branchvalues: "remainder", maxdepth: nLevels,
    marker: { colors: colours.filter((_, i) => keep[i]), line: { color: "#fff", width: 1 } },
    ids: kept.map((n) => `${n.level}:${n.node}`),
    parents: kept.map((n) => (n.level > 1 ? `${n.level - 1}:${n.parent}` : "")),
    labels: kept.map((n) => short(n.label, 18)),
    customdata: kept.map((n) => fullPath(n, byId)),
    values: kept.map((n) => (n.level === nLevels ? n[term] : 0)),
    textinfo: "label", insidetextorientation: "horizontal",
    hovertemplate: `%{customdata}<br>%{percentRoot:.0%} ${what}<extra></extra>`,
  };
}

let current = { profile: null, segments: null };

function drawProfile(profile) {
  current.profile = profile;
  const nLevels = profile.levels.length;
  const layout = { margin: { t: 6, l: 0, r: 0, b: 6 }, paper_bgcolor: "rgba(0,0,0,0)",
                   uniformtext: { minsize: 11, mode: "hide" }, font: { size: 13 } };
  const colours = nodeColours(profile.nodes);
  for (const term of ["long", "short"]) {
    const target = $(`sunburst-${term}`);
    if (!profile.nodes.length) {
      Plotly.purge(target);
      target.textContent = "no events yet: the recommendations are popular items, or match an interest typed above";
      target.dataset.empty = "1";
      continue;
    }
    if (target.dataset.empty) {  // clear the message only: plotly keeps its own DOM inside the div
      target.textContent = "";
      delete target.dataset.empty;
    }
    Plotly.react(target, [sunburstTrace(profile.nodes, term, nLevels, colours, profile.n_events)], layout,
                 { displayModeBar: false, responsive: true });
  }
  const window = Math.min(profile.short_window, profile.n_events || profile.short_window);
  $("long-caption").textContent = profile.n_events ? `Long term (all ${profile.n_events} events)` : "Long term";
  $("short-caption").textContent = profile.n_events ? `Short term (last ${window} events)` : "Short term";
  $("terms").textContent = `Long term: the share of all the user's events under each interest. Short term: the ` +
    `share of their last ${profile.short_window} events.`;
  $("profile-note").textContent = profile.known
    ? `${profile.n_events} events` + (profile.segment !== null ? `, segment ${profile.segment}: ${profile.segment_label}` : "")
    : "a new visitor (no events yet)";
  drawTopInterests(profile, colours);
}

// The strongest interests as text: readable even where a wedge is too thin for a label.
function drawTopInterests(profile, colours) {
  const table = $("top-interests");
  table.replaceChildren();
  if (!profile.nodes.length) return;
  const byId = new Map(profile.nodes.map((n) => [`${n.level}:${n.node}`, n]));
  const first = profile.nodes.map((n, i) => [n, colours[i]]).filter(([n]) => n.level === 1);
  const rows = (first.length > 1 ? first : profile.nodes.map((n, i) => [n, colours[i]]).filter(([n]) => n.level === 2))
    .sort(([a], [b]) => (b.long + b.short) - (a.long + a.short)).slice(0, 6);
  const head = el("tr");
  for (const [text, cls] of [["interest", ""], ["all events", "num"], ["recent", "num"]]) head.appendChild(el("th", cls, text));
  table.appendChild(head);
  for (const [n, colour] of rows) {
    const tr = el("tr");
    const name = el("td");
    const sw = el("span", "sw");
    sw.style.background = colour;
    name.append(sw, fullPath(n, byId));
    tr.append(name, el("td", "num", pct(n.long)), el("td", "num", pct(n.short)));
    table.appendChild(tr);
  }
}

// A reason in plain words, claiming only what the shares support (the same rule as arborec.profiles.reason_text).
function reasonText(r, profile, recs) {
  const where = readablePath(r.path);
  if (!recs.known) {
    if (recs.strategy === "stated-interest") return `matches what you asked for: “${$("interest").value.trim()}”`;
    if (recs.strategy === "popular-in-segment") return "popular with users like this segment";
    return `popular in ${r.path[0]}`;
  }
  if (!r.interest || !profile) return `something new for you, in ${where}`;
  const at = readablePath(r.interest.path);
  const recent = Math.min(profile.short_window, profile.n_events);
  const nRecent = Math.round(r.interest.short_share * recent);
  const nAll = Math.round(r.interest.long_share * profile.n_events);
  if (r.interest.short_share >= 0.3 && r.interest.short_share > r.interest.long_share) {
    return `a recent interest: ${nRecent} of your last ${recent} events are in ${at}`;
  }
  if (nAll >= 3 && r.interest.long_share >= 0.1) {
    return `one of your lasting interests: ${nAll} of your ${profile.n_events} events (${pct(r.interest.long_share)}) are in ${at}`;
  }
  return `related to ${nAll || "a few"} of your events in ${at}`;
}

const STRATEGY = {
  "stated-interest": "new visitor: items matching the interest you typed",
  "popular-in-segment": "new visitor: popular with one segment of users",
  "popular-in-segments": "new visitor: popular items, one from each main interest in turn",
};

function itemEntry(r, extra = []) {
  const li = el("li");
  li.dataset.item = r.item;
  li.append(el("div", "title", r.title || r.item), el("div", "path", readablePath(r.path)));
  for (const [cls, text] of extra) if (text) li.appendChild(el("div", cls, text));
  li.appendChild(el("div", "id", `item id ${r.item}`));
  li.addEventListener("click", () => { $("event-item").value = r.item; });
  return li;
}

function drawRecommendations(recs) {
  $("strategy").textContent = recs.known ? "" : (STRATEGY[recs.strategy] || "new visitor");
  const list = $("rec-list");
  list.replaceChildren();
  for (const r of recs.items) {
    list.appendChild(itemEntry(r, [["reason", reasonText(r, current.profile, recs)],
                                   ["because", r.because ? `close to “${r.because}”, one of your recent items` : ""]]));
  }
}

function drawRecent(recent) {
  const list = $("recent-list");
  list.replaceChildren();
  $("recent-note").textContent = recent.items.length ? `newest first, ${recent.items.length} of ${recent.n_events}` : "none yet";
  for (const r of recent.items) list.appendChild(itemEntry(r));
}

function drawSegments(segs, mine) {
  current.segments = segs;
  const table = $("segment-table");
  table.replaceChildren();
  $("segments-note").textContent = segs.segments.length ? `${segs.segments.length} groups of users with similar interests` : "none fitted";
  const head = el("tr");
  for (const [text, cls] of [["#", "num"], ["users", "num"], ["what they share", ""], ["their most used items", ""]]) head.appendChild(el("th", cls, text));
  table.appendChild(head);
  for (const s of segs.segments) {
    const tr = el("tr", s.segment === mine ? "mine" : "");
    const interests = (s.interests || []).filter((i) => i.share >= 0.05).slice(0, 3)
      .map((i) => `${i.path.join(" › ")} (${pct(i.share)})`).join("; ");
    const items = (s.top_items || []).slice(0, 3).join("; ");
    tr.append(el("td", "num", String(s.segment)), el("td", "num", (s.n_users || 0).toLocaleString()),
              el("td", "", interests || s.label || ""), el("td", "", items));
    table.appendChild(tr);
  }
}

async function lookUp() {
  const user = $("user").value.trim();
  if (!user) return;
  const params = new URLSearchParams({ k: "10", explain: "true", diverse: $("diverse").checked ? "true" : "false" });
  const interest = $("interest").value.trim();
  if (interest) params.set("interest", interest);
  setStatus("loading…");
  try {
    const u = encodeURIComponent(user);
    const [profile, recs, recent, segs] = await Promise.all([
      getJSON(`/users/${u}/interests`),
      getJSON(`/users/${u}/recommendations?${params}`),
      getJSON(`/users/${u}/recent?limit=10`),
      current.segments ? Promise.resolve(current.segments) : getJSON("/segments"),
    ]);
    drawProfile(profile);
    drawRecommendations(recs);
    drawRecent(recent);
    drawSegments(segs, profile.segment);
    setStatus(`user ${user}: ${recs.items.length} recommendations`);
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function search() {
  const q = $("search").value.trim();
  const list = $("search-list");
  list.replaceChildren();
  if (!q) return;
  try {
    const found = await getJSON(`/items/search?${new URLSearchParams({ q, limit: "8" })}`);
    if (!found.items.length) list.appendChild(el("li", "hint", "no item found"));
    for (const r of found.items) list.appendChild(itemEntry(r));
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function postEvent() {
  const user = $("user").value.trim();
  const event = {
    user, item: $("event-item").value.trim(), event_type: $("event-type").value,
    timestamp: Math.floor(Date.now() / 1000),
  };
  try {
    await getJSON("/events", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Key": $("api-key").value },
      body: JSON.stringify(event),
    });
    setStatus(`posted ${event.event_type} of ${event.item}`);
    current.segments = null;  // sizes may change
    await lookUp();
  } catch (err) {
    setStatus(err.message, true);
  }
}

$("lookup").addEventListener("submit", (e) => { e.preventDefault(); lookUp(); });
$("event-form").addEventListener("submit", (e) => { e.preventDefault(); postEvent(); });
$("search-form").addEventListener("submit", (e) => { e.preventDefault(); search(); });
const initial = new URLSearchParams(location.search).get("user");
if (initial) { $("user").value = initial; lookUp(); }
