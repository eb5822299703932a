// The callmesh dashboard: leads (searched, filtered, sorted, paged), a lead's calls with their
// analysis and conversation, the live feed (the newest events replayed, then live), charts of the
// metrics summary, and interview sessions. Everything a caller said is put on the page as text
// (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 25;
const REPLAY = 50;
const state = {
  source: null,
  pages: [""],      // page tokens of the pages seen so far; the last is the current one
  next: "",
  lead: null,
  analyses: [],
  names: new Map(), // lead id -> what to call the lead
  asking: new Set(),
  charts: {},
};

// ---------------------------------------------------------------- helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function api(path, options = {}) {
  const headers = Object.assign({ "Authorization": "Bearer " + $("token").value.trim() }, options.headers || {});
  return fetch(path, Object.assign({}, options, { headers })).then(async (r) => {
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const error = new Error((body.error && body.error.message) || r.statusText);
      error.status = r.status;
      throw error;
    }
    return body;
  });
}

function showError(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? String(error.message || error) : "";
}

function words(name) { return (name || "").replace(/_/g, " "); }

function duration(secs) {
  if (secs == null) return "—";
  const s = Math.round(Number(secs));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}

function percent(rate) { return rate == null ? "—" : `${Math.round(rate * 100)}%`; }

function ago(seconds) {
  if (!seconds) return "";
  const delta = Math.max(0, Date.now() / 1000 - seconds);
  if (delta < 60) return "just now";
  if (delta < 3600) return `${Math.floor(delta / 60)} min ago`;
  if (delta < 86400) return `${Math.floor(delta / 3600)} h ago`;
  return new Date(seconds * 1000).toLocaleDateString();
}

function timeElement(seconds) {
  if (!seconds) return el("time", { text: "" });
  const at = new Date(seconds * 1000);
  const time = el("time", { text: ago(seconds), title: at.toLocaleString() });
  time.setAttribute("datetime", at.toISOString());
  return time;
}

function leadLabel(lead) { return lead.name || lead.phone_number || "unknown caller"; }

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// ---------------------------------------------------------------- leads

function leadQuery(pageToken) {
  const params = new URLSearchParams({ org_id: $("org").value.trim(), page_size: String(PAGE_SIZE) });
  const q = $("lead-search").value.trim();
  if (q) params.set("q", q);
  if ($("lead-tier").value) params.set("tier", $("lead-tier").value);
  if ($("lead-status").value) params.set("status", $("lead-status").value);
  params.set("sort", $("lead-sort").value);
  if (pageToken) params.set("page_token", pageToken);
  return `/api/leads?${params}`;
}

async function loadLeads() {
  const token = state.pages[state.pages.length - 1];
  const { leads, next_page_token } = await api(leadQuery(token));
  state.next = next_page_token || "";
  const body = $("leads");
  body.replaceChildren();
  for (const lead of leads) {
    state.names.set(lead.id, leadLabel(lead));
    const tier = lead.tier || "";
    const open = el("button", { type: "button", class: "link", text: leadLabel(lead) });
    open.setAttribute("aria-label", `Open ${leadLabel(lead)}`);
    open.addEventListener("click", (event) => { event.stopPropagation(); openLead(lead).catch(showError); });
    const nameCell = el("td", { class: "name" }, open);
    if (lead.name) nameCell.append(el("div", { class: "muted", text: lead.phone_number }));
    const tr = el("tr", { class: "lead", "data-lead": lead.id },
      nameCell,
      el("td", { text: String(lead.score) }),
      el("td", { class: tier ? `tier-${tier}` : "", text: tier || "—" }),
      el("td", { text: words(lead.status) }),
      el("td", {}, timeElement(lead.last_contact_at)));
    if (state.lead && state.lead.id === lead.id) tr.classList.add("selected");
    tr.addEventListener("click", () => openLead(lead).catch(showError));
    body.append(tr);
  }
  $("leads-empty").hidden = leads.length > 0;
  $("leads-prev").disabled = state.pages.length <= 1;
  $("leads-next").disabled = !state.next;
  $("leads-page").textContent = `page ${state.pages.length}`;
}

function reloadLeadsFromStart() {
  state.pages = [""];
  loadLeads().catch(showError);
}

// ---------------------------------------------------------------- one lead

async function openLead(lead) {
  state.lead = lead;
  for (const row of $("leads").querySelectorAll("tr.lead")) {
    row.classList.toggle("selected", row.dataset.lead === lead.id);
  }
  $("conversation-title").textContent = leadLabel(lead);
  $("lead-card").hidden = false;
  $("lead-phone").textContent = lead.phone_number;
  $("lead-status-text").textContent = `${words(lead.status)}, score ${lead.score}${lead.tier ? " (" + lead.tier + ")" : ""}`;
  // Where the name came from, and what shows it (the agent's evidence names its data item).
  const evidence = lead.name_evidence || "";
  $("lead-name-source").textContent = {
    person: "Name set by a person.",
    agent: evidence ? `Name ${evidence}` : "Name collected by the agent.",
    caller: evidence ? `Name from the caller's own words: “${evidence}”` : "Name from the caller's own words.",
  }[lead.name_source] || "";
  await Promise.all([loadAnalyses(lead), loadMessages(lead)]);
}

async function loadAnalyses(lead, keep) {
  const { analyses } = await api(`/api/leads/${encodeURIComponent(lead.id)}/analyses`);
  if (!state.lead || state.lead.id !== lead.id) return;
  state.analyses = analyses;
  $("analysis-empty").hidden = analyses.length > 0;
  $("analysis-body").hidden = analyses.length === 0;
  const pick = $("analysis-pick");
  pick.replaceChildren();
  analyses.forEach((a, index) => {
    const when = a.created_at ? new Date(a.created_at).toLocaleString() : "";
    pick.append(el("option", { value: String(index), text: `${when} · version ${a.version}` }));
  });
  const chosen = keep ? Math.max(0, analyses.findIndex((a) => a.conversation_id === keep)) : 0;
  pick.value = String(chosen);
  if (analyses.length) renderAnalysis(analyses[chosen]);
}

function renderAnalysis(a) {
  $("analysis-summary").textContent = a.summary || "No summary.";
  $("analysis-score").textContent = `${a.lead_score} (${a.tier || "unscored"})`;
  $("analysis-score").className = a.tier ? `tier-${a.tier}` : "";
  $("analysis-sentiment").textContent = `${a.sentiment} (${Number(a.sentiment_score).toFixed(2)})`;
  $("analysis-outcome").textContent = a.outcome_rationale ? `${a.outcome}: ${a.outcome_rationale}` : a.outcome;
  const analyzer = { rules: "rules", llm: "LLM", llm_fallback: "rules (the LLM failed)" }[a.analyzer] || a.analyzer;
  $("analysis-analyzer").textContent = `${analyzer}, version ${a.version}`;

  const factors = $("factors");
  factors.replaceChildren();
  const widest = Math.max(1, ...a.score_factors.map((f) => Math.abs(f.contribution)));
  for (const factor of a.score_factors) {
    const c = factor.contribution;
    const fill = el("span", { class: c >= 0 ? "plus" : "minus" });
    fill.style.width = `${(Math.abs(c) / widest) * 50}%`;
    const bar = el("div", { class: "bar" }, fill);
    bar.setAttribute("aria-hidden", "true");
    const li = el("li", { class: "factor", "data-factor": factor.name },
      el("span", { class: "factor-name", text: words(factor.name) }),
      bar,
      el("span", { class: "points", text: c > 0 ? `+${c}` : String(c) }));
    if (factor.detail) li.append(el("span", { class: "detail", text: factor.detail }));
    factors.append(li);
  }

  const intents = $("intents");
  intents.replaceChildren();
  if (!a.intents.length) intents.append(el("li", { class: "muted", text: "No intent stood out." }));
  for (const intent of a.intents) {
    const li = el("li", { class: "intent", "data-intent": intent.name },
      el("strong", { text: words(intent.name) }),
      document.createTextNode(` · ${Math.round(intent.confidence * 100)}% sure`));
    for (const sentence of intent.evidence) li.append(el("p", { class: "evidence", text: `“${sentence}”` }));
    intents.append(li);
  }

  const actions = $("actions");
  actions.replaceChildren();
  if (!a.action_items.length) actions.append(el("li", { class: "muted", text: "Nothing to do." }));
  for (const item of a.action_items) actions.append(el("li", { text: item }));
  $("analysis-keywords").textContent = a.keywords.length ? `Keywords: ${a.keywords.join(", ")}` : "";
}

async function rerun() {
  const a = state.analyses[Number($("analysis-pick").value)];
  if (!a || !state.lead) return;
  $("rerun").disabled = true;
  try {
    await api(`/api/conversations/${encodeURIComponent(a.conversation_id)}/analysis/run`, {
      method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    await loadAnalyses(state.lead, a.conversation_id);
  } finally {
    $("rerun").disabled = false;
  }
}

async function loadMessages(lead) {
  const { messages, human_control } = await api(`/api/conversations/${encodeURIComponent(lead.id)}/messages`);
  if (!state.lead || state.lead.id !== lead.id) return;
  $("control-state").textContent = human_control ? "a human has this conversation" : "the AI is answering";
  const list = $("messages");
  list.replaceChildren();
  for (const m of messages) {
    const meta = el("div", { class: "meta", text: `${m.role} · ${m.channel} · ${new Date(m.occurred_at * 1000).toLocaleString()}` });
    list.append(el("li", { class: m.role }, meta, document.createTextNode(m.content)));
  }
}

async function control(action) {
  if (!state.lead) return;
  await api(`/api/conversations/${encodeURIComponent(state.lead.id)}/${action}`, {
    method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  await loadMessages(state.lead);
}

function selectTab(tab) {
  for (const t of document.querySelectorAll('.tabs [role="tab"]')) {
    const selected = t === tab;
    t.setAttribute("aria-selected", String(selected));
    t.tabIndex = selected ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !selected;
  }
  tab.focus();
}

// ---------------------------------------------------------------- live feed

/// What to call the lead of an event: its name when known (asked of the API once), else a
/// number from the event, else "a caller".
function who(event) {
  const p = event.payload || {};
  if (event.lead_id && state.names.has(event.lead_id)) return state.names.get(event.lead_id);
  if (event.lead_id && !state.asking.has(event.lead_id)) {
    state.asking.add(event.lead_id);
    api(`/api/leads/${encodeURIComponent(event.lead_id)}`).then(({ lead }) => {
      state.names.set(lead.id, leadLabel(lead));
      for (const span of document.querySelectorAll(`#feed [data-who="${CSS.escape(lead.id)}"]`)) {
        span.textContent = leadLabel(lead);
      }
    }).catch(() => {});
  }
  return p.name || p.from || p.to || "a caller";
}

function describe(type, event) {
  const p = event.payload || {};
  const tier = p.tier ? ` (${p.tier})` : "";
  const hot = p.tier === "hot";
  const quote = (text) => (text ? `: “${text}”` : "");
  switch (type) {
    case "call_ended": return { what: p.status === "failed" ? "call failed" : "call ended",
      text: `after ${duration(p.duration_secs)}, score ${p.score ?? "—"}${tier}${p.summary ? ". " + p.summary : ""}`, hot };
    case "analysis_completed": return { what: "call analysed",
      text: `score ${p.score ?? "—"}${tier}, ${p.sentiment || "neutral"}, by ${p.analyzer === "llm" ? "the LLM" : "rules"} (version ${p.version ?? 1})`, hot };
    case "lead_updated": return { what: "lead scored", text: `now ${p.score ?? "—"}${tier}`, hot };
    case "sms_received": return { what: "texted", text: quote(p.body).replace(/^: /, "") };
    case "sms_sent": return { what: "was texted", text: quote(p.body).replace(/^: /, "") };
    case "sms_status": return { what: "text", text: p.status || "" };
    case "call_started": return { what: `${p.direction || "outbound"} call started`, text: "" };
    case "call_status": return { what: "call", text: p.status || "" };
    case "call_failed": return { what: "call failed", text: p.reason || p.status || "" };
    case "human_takeover": return { what: "needs a human", alert: true,
      text: `${p.operator || "an operator"} took the conversation over${p.note ? ": " + p.note : ""}` };
    case "human_released": return { what: "back with the AI", text: `${p.operator || "an operator"} handed back` };
    case "recording_available": return { what: "recording ready", text: "" };
    case "conversation_event": return { what: "live call event", text: words(p.type || "") };
    case "crm_delivery_failed": return { what: "CRM did not take the call", alert: true,
      text: `after ${p.attempts ?? "several"} attempts${p.error ? ": " + p.error : ""}` };
    default: return { what: words(type), text: "" };
  }
}

function addToFeed(type, event) {
  const { what, text, hot, alert } = describe(type, event);
  const whoSpan = el("span", { class: "who", text: who(event) });
  if (event.lead_id) whoSpan.dataset.who = event.lead_id;
  const li = el("li", { "data-type": type, "data-id": String(event.id) },
    whoSpan, document.createTextNode(" "), el("span", { class: "what", text: what }),
    document.createTextNode(text ? ` — ${text} ` : " "), timeElement(event.occurred_at));
  if (hot) li.classList.add("hot");
  if (alert) li.classList.add("alert");
  $("feed").prepend(li);
  while ($("feed").children.length > 200) $("feed").lastChild.remove();
}

const EVENTS = ["call_started", "call_ended", "call_status", "call_failed", "conversation_event", "sms_received",
  "sms_sent", "sms_status", "recording_available", "analysis_completed", "lead_updated", "human_takeover",
  "human_released", "crm_delivery_failed"];
const refreshLeads = debounce(() => loadLeads().catch(() => {}), 300);
const refreshCharts = debounce(() => loadCharts().catch(() => {}), 2000);

function openStream(org, token) {
  if (state.source) state.source.close();
  $("feed").replaceChildren();
  // EventSource cannot send headers: the token goes in the query. `replay` fills the feed with
  // the newest events first; after a drop the browser resumes from the last id by itself.
  const query = new URLSearchParams({ token, replay: String(REPLAY) });
  const source = new EventSource(`/api/stream/organization/${encodeURIComponent(org)}?${query}`);
  state.source = source;
  source.onopen = () => { $("status").textContent = "live"; $("status").className = "live"; };
  source.onerror = () => { $("status").textContent = "reconnecting…"; $("status").className = ""; };
  for (const type of EVENTS) {
    source.addEventListener(type, (e) => {
      const event = JSON.parse(e.data);
      if (type === "lead_updated" && event.lead_id && event.payload && event.payload.name) {
        state.names.set(event.lead_id, event.payload.name);
      }
      addToFeed(type, event);
      if (["call_ended", "analysis_completed", "sms_received", "lead_updated"].includes(type)) refreshLeads();
      if (type === "call_ended") refreshCharts();
      if (state.lead && event.lead_id === state.lead.id) {
        loadMessages(state.lead).catch(() => {});
        if (type === "analysis_completed") loadAnalyses(state.lead).catch(() => {});
      }
    });
  }
  source.addEventListener("reset", () => { $("feed").replaceChildren(); refreshLeads(); });
}

// ---------------------------------------------------------------- charts

const COLORS = { blue: "#2563eb", green: "#16a34a", amber: "#d97706", red: "#dc2626", slate: "#64748b" };

function drawChart(id, config) {
  const canvas = $(id);
  config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false,
    plugins: { legend: { display: config.data.datasets.length > 1 } } }, config.options || {});
  if (state.charts[id]) state.charts[id].destroy();
  state.charts[id] = new Chart(canvas, config);
  // How many points the chart holds, for a test or a screen reader to read.
  canvas.dataset.points = String(config.data.labels.length);
}

async function loadCharts() {
  if (typeof Chart === "undefined") return;
  const days = Number($("period").value);
  const start = new Date();
  start.setUTCHours(0, 0, 0, 0);
  start.setUTCDate(start.getUTCDate() - (days - 1));
  const params = new URLSearchParams({ org_id: $("org").value.trim(), since: String(Math.floor(start / 1000)) });
  const summary = await api(`/api/metrics/summary?${params}`);
  const daily = summary.daily || [];
  const labels = daily.map((d) => d.day.slice(5));
  $("totals").textContent = `${summary.calls} calls · average ${duration(summary.average_call_duration_secs)}`
    + ` · AI success ${percent(summary.ai_success_rate)} · human takeover ${percent(summary.human_takeover_rate)}`;
  drawChart("chart-calls", { type: "bar", data: { labels,
    datasets: [{ label: "conversations", data: daily.map((d) => d.calls), backgroundColor: COLORS.blue }] },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
  drawChart("chart-duration", { type: "line", data: { labels,
    datasets: [{ label: "seconds", data: daily.map((d) => d.average_call_duration_secs), borderColor: COLORS.slate,
      backgroundColor: COLORS.slate, spanGaps: true }] },
    options: { scales: { y: { beginAtZero: true } } } });
  const asPercent = (rate) => (rate == null ? null : Math.round(rate * 1000) / 10);
  drawChart("chart-rates", { type: "line", data: { labels, datasets: [
    { label: "AI success %", data: daily.map((d) => asPercent(d.ai_success_rate)), borderColor: COLORS.green, backgroundColor: COLORS.green, spanGaps: true },
    { label: "human takeover %", data: daily.map((d) => asPercent(d.human_takeover_rate)), borderColor: COLORS.amber, backgroundColor: COLORS.amber, spanGaps: true },
  ] }, options: { scales: { y: { min: 0, max: 100 } } } });
  const tiers = ["hot", "warm", "cold", "unscored"];
  const byTier = summary.lead_conversion_by_tier || {};
  drawChart("chart-tiers", { type: "bar", data: { labels: tiers, datasets: [
    { label: "leads", data: tiers.map((t) => (byTier[t] ? byTier[t].leads : 0)), backgroundColor: COLORS.blue, yAxisID: "y" },
    { label: "converted %", data: tiers.map((t) => (byTier[t] ? asPercent(byTier[t].rate) : null)), backgroundColor: COLORS.green, yAxisID: "y1" },
  ] }, options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } },
    y1: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false } } } } });
}

// ---------------------------------------------------------------- interviews

async function loadInterviews() {
  const job = $("job-id").value.trim();
  const rows = $("interview-rows");
  if (!job) return;
  localStorage.setItem("callmesh.job", job);
  let answer;
  try {
    answer = await api(`/api/interviews?${new URLSearchParams({ job_id: job })}`);
  } catch (error) {
    rows.replaceChildren();
    $("interviews-note").textContent = error.status === 403 || error.status === 401
      ? "Interview sessions are the admin's: connect with the admin token." : error.message;
    return;
  }
  $("interviews-note").textContent = answer.sessions.length ? "" : "No sessions for this job yet.";
  rows.replaceChildren();
  for (const session of answer.sessions) {
    const e = session.latest_evaluation || {};
    const score = (n) => (session.latest_evaluation ? String(n) : "—");
    rows.append(el("tr", { class: "session", "data-session": session.id },
      el("td", { text: session.candidate_name }), el("td", { text: session.job_role }),
      el("td", { text: session.status }), el("td", { text: score(e.overall_score) }),
      el("td", { text: score(e.domain_score) }), el("td", { text: score(e.behavioral_score) }),
      el("td", { text: score(e.communication_score) }), el("td", { text: e.system_recommendation || "—" })));
  }
}

function showView(name) {
  for (const button of document.querySelectorAll(".views .view")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === name));
  }
  $("sales").hidden = name !== "sales";
  $("interviews").hidden = name !== "interviews";
  if (name === "interviews") loadInterviews().catch(showError);
}

// ---------------------------------------------------------------- start

function connect() {
  const org = $("org").value.trim();
  const token = $("token").value.trim();
  localStorage.setItem("callmesh.org", org);
  localStorage.setItem("callmesh.token", token);
  showError(null);
  state.lead = null;
  state.names.clear();
  state.asking.clear();
  $("lead-card").hidden = true;
  $("conversation-title").textContent = "Choose a lead";
  openStream(org, token);
  reloadLeadsFromStart();
  loadCharts().catch(showError);
}

function start() {
  const params = new URLSearchParams(location.search);
  $("org").value = params.get("org") || localStorage.getItem("callmesh.org") || "";
  $("token").value = params.get("token") || localStorage.getItem("callmesh.token") || "";
  $("job-id").value = localStorage.getItem("callmesh.job") || "";
  // Keep the token out of the address bar and the history once it is read.
  if (params.has("token")) history.replaceState(null, "", location.pathname);

  $("connect-form").addEventListener("submit", (e) => { e.preventDefault(); connect(); });
  $("lead-filters").addEventListener("submit", (e) => e.preventDefault());
  $("lead-search").addEventListener("input", debounce(reloadLeadsFromStart, 250));
  for (const id of ["lead-tier", "lead-status", "lead-sort"]) $(id).addEventListener("change", reloadLeadsFromStart);
  $("leads-next").addEventListener("click", () => { state.pages.push(state.next); loadLeads().catch(showError); });
  $("leads-prev").addEventListener("click", () => { state.pages.pop(); loadLeads().catch(showError); });
  $("takeover").addEventListener("click", () => control("takeover").catch(showError));
  $("release").addEventListener("click", () => control("release").catch(showError));
  $("rerun").addEventListener("click", () => rerun().catch(showError));
  $("analysis-pick").addEventListener("change", () => renderAnalysis(state.analyses[Number($("analysis-pick").value)]));
  $("period").addEventListener("change", () => loadCharts().catch(showError));
  $("interview-form").addEventListener("submit", (e) => { e.preventDefault(); loadInterviews().catch(showError); });
  for (const button of document.querySelectorAll(".views .view")) {
    button.addEventListener("click", () => showView(button.dataset.view));
  }
  const tabs = [...document.querySelectorAll('.tabs [role="tab"]')];
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        e.preventDefault();
        selectTab(tabs[(index + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length]);
      }
    });
  });
  if ($("org").value && $("token").value) connect();
}

start();
