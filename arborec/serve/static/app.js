// The arborec page: look up a user, draw long/short-term interest sunbursts, list recommendations, post events.
"use strict";

const $ = (id) => document.getElementById(id);

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function getJSON(url, options = {}) {
  const key = $("api-key").value;  // reads need a key with the read scope (unless the server has public reads)
  const headers = { ...(options.headers || {}), ...(key ? { "X-API-Key": key } : {}) };
  const response = await fetch(url, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = body.errors ? body.errors.map((e) => `${e.where}: ${e.problem}`).join("; ") : body.detail;
    throw new Error(`${response.status}: ${detail || response.statusText}`);
  }
  return body;
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];

// One colour per top-level interest (the same in both charts), lighter at finer levels.
function nodeColours(nodes) {
  const byId = new Map(nodes.map((n) => [`${n.level}:${n.node}`, n]));
  return nodes.map((n) => {
    let top = n;
    while (top.level > 1) top = byId.get(`${top.level - 1}:${top.parent}`) || { level: 1, node: top.parent };
    const base = PALETTE[top.node % PALETTE.length];
    const alpha = Math.round(255 * (1 - 0.22 * (n.level - 1))).toString(16).padStart(2, "0");
    return base + alpha;
  });
}

// Sunburst traces: leaves carry the shares, inner nodes 0 ("remainder": a parent is the sum of its children).
function sunburstTrace(nodes, term, nLevels) {
  const kept = nodes.filter((n) => n[term] > 0);
  return {
    marker: { colors: nodeColours(nodes).filter((_, i) => nodes[i][term] > 0), line: { color: "#fff", width: 1 } },
    type: "sunburst", branchvalues: "remainder", maxdepth: nLevels,
    ids: kept.map((n) => `${n.level}:${n.node}`),
    parents: kept.map((n) => (n.level > 1 ? `${n.level - 1}:${n.parent}` : "")),
    labels: kept.map((n) => n.label),
    values: kept.map((n) => (n.level === nLevels ? n[term] : 0)),
    hovertemplate: "%{label}<br>%{percentRoot:.0%} of events<extra></extra>",
    insidetextorientation: "radial",
  };
}

function drawProfile(profile) {
  const nLevels = profile.levels.length;
  const layout = { margin: { t: 10, l: 0, r: 0, b: 10 }, paper_bgcolor: "rgba(0,0,0,0)" };
  for (const term of ["long", "short"]) {
    const target = $(`sunburst-${term}`);
    if (!profile.nodes.length) {
      Plotly.purge(target);
      target.textContent = "no events yet";
      target.dataset.empty = "1";
      continue;
    }
    if (target.dataset.empty) {  // clear the message only: plotly keeps its own DOM inside the div
      target.textContent = "";
      delete target.dataset.empty;
    }
    Plotly.react(target, [sunburstTrace(profile.nodes, term, nLevels)], layout, { displayModeBar: false });
  }
  $("short-caption").textContent = `Short term (last ${profile.short_window} events)`;
  $("profile-note").textContent = profile.known
    ? `${profile.n_events} events` + (profile.segment !== null ? `, segment ${profile.segment}: ${profile.segment_label}` : "")
    : "unknown user (cold start)";
}

function drawRecommendations(recs) {
  $("strategy").textContent = recs.known ? "" : `cold start: ${recs.strategy}`;
  const list = $("rec-list");
  list.replaceChildren();
  for (const r of recs.items) {
    const li = document.createElement("li");
    li.dataset.item = r.item;
    const parts = [
      ["title", r.title || r.item],
      ["path", r.path.join(" › ")],
      ["reason", r.reason || ""],
      ["because", r.because ? `because you liked: ${r.because}` : ""],
    ];
    for (const [cls, text] of parts) {
      if (!text) continue;
      const div = document.createElement("div");
      div.className = cls;
      div.textContent = text;
      li.appendChild(div);
    }
    li.addEventListener("click", () => { $("event-item").value = r.item; });
    list.appendChild(li);
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
    const [profile, recs] = await Promise.all([
      getJSON(`/users/${u}/interests`),
      getJSON(`/users/${u}/recommendations?${params}`),
    ]);
    drawProfile(profile);
    drawRecommendations(recs);
    setStatus(`user ${user}: ${recs.items.length} recommendations`);
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
    await lookUp();
  } catch (err) {
    setStatus(err.message, true);
  }
}

$("lookup").addEventListener("submit", (e) => { e.preventDefault(); lookUp(); });
$("event-form").addEventListener("submit", (e) => { e.preventDefault(); postEvent(); });
const initial = new URLSearchParams(location.search).get("user");
if (initial) { $("user").value = initial; lookUp(); }
