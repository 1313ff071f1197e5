// Clinician review page: keyboard first, plain DOM (text is only ever set with textContent).
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
let config = null;
let state = null;
let item = null;
let index = 0;
let busy = false;

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
  };
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store", ...options });
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : { error: await response.text() };
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function say(message, error = false) {
  const status = $("status");
  status.textContent = message;
  status.className = error ? "error" : "";
}

function showProgress() {
  if (!state) return;
  const c = state.counts;
  $("progress").textContent = `Row ${index + 1} of ${state.total} · ${state.decided} decided ` +
    `(${c.accept} accepted, ${c.correct} corrected, ${c.reject} rejected)`;
  $("position").textContent = `${index + 1} of ${state.total}`;
}

function buildLabels() {
  const list = $("label-list");
  for (const category of config.categories) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = category.id;
    box.id = `label-${category.id}`;
    box.addEventListener("change", () => toggle(category.id, box.checked));
    label.htmlFor = box.id;
    label.title = category.definition;
    label.append(box, " ", category.name);
    if (category.key) {
      const kbd = document.createElement("kbd");
      kbd.textContent = category.key;
      label.append(" ", kbd);
    }
    list.append(label);
  }
}

function boxes() { return Array.from(document.querySelectorAll("#label-list input")); }
function selected() { return boxes().filter((b) => b.checked).map((b) => b.value); }
const noneId = () => config.categories.find((c) => c.exclusive).id;

function toggle(id, checked) {
  for (const box of boxes()) {
    if (box.value === id) box.checked = checked;
    else if (checked && (id === noneId() || box.value === noneId())) box.checked = false;  // "none" is exclusive
  }
  markChanges();
}

function markChanges() {
  const shown = new Set(item ? item.labels : []);
  for (const box of boxes()) {
    box.parentElement.classList.toggle("shown", shown.has(box.value));
    box.parentElement.classList.toggle("changed", box.checked !== shown.has(box.value));
  }
}

function sentenceWithEvidence(text, evidence) {
  const target = $("sentence");
  target.replaceChildren();
  const at = evidence ? text.toLowerCase().indexOf(evidence.toLowerCase()) : -1;
  if (at < 0) { target.textContent = text; return; }
  const mark = document.createElement("mark");
  mark.textContent = text.slice(at, at + evidence.length);
  mark.title = "the model's evidence";
  target.append(text.slice(0, at), mark, text.slice(at + evidence.length));
}

function fact(term, value, cls) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  if (cls) dd.className = cls;
  $("facts").append(dt, dd);
}

const nameOf = (id) => (config.categories.find((c) => c.id === id) || { name: id }).name;
const names = (ids) => (ids && ids.length ? ids.map(nameOf).join(", ") : "—");

function render() {
  $("context-before").textContent = (item.context_before || []).join(" ");
  $("context-after").textContent = (item.context_after || []).join(" ");
  sentenceWithEvidence(item.text, item.evidence);
  $("facts").replaceChildren();
  fact(config.dataset === "bronze" ? "Labels (intended)" : "LLM labels", names(item.labels));
  if (config.dataset === "silver") {
    fact("Evidence", item.evidence || "—");
    if (item.note_id !== null && item.note_id !== undefined) fact("Note", `${item.note_id}, sentence ${item.sentence_index}`);
    if (item.consistency) {
      const c = item.consistency;
      fact("Consistency", `agreement ${c.agreement.toFixed(2)}; majority: ${names(c.majority_labels)}`,
        c.silver_agrees ? "accept" : "disagree");
    } else fact("Consistency", "not sampled");
  } else {
    fact("Category", nameOf(item.category));
    for (const [key, value] of Object.entries(item.attributes || {})) fact(key.replaceAll("_", " "), String(value));
    if (item.phi) {
      fact("PHI scan", item.phi.status + (item.phi.reasons.length ? `: ${item.phi.reasons.join("; ")}` : ""), item.phi.status);
    } else fact("PHI scan", "not scanned");
  }
  if (item.check) fact("Verifier", item.check.verdict + (item.check.reason ? `: ${item.check.reason}` : ""), item.check.verdict);
  else fact("Verifier", "not checked");
  if (item.reasons.length) fact("Why here", item.reasons.join("; "));

  const decision = item.decision;
  const labels = decision && decision.decision === "correct" ? decision.labels : item.labels;
  for (const box of boxes()) box.checked = labels.includes(box.value);
  $("phi").checked = decision ? decision.phi_flag : false;
  $("note").value = decision ? decision.note : "";
  $("current-decision").textContent = decision
    ? `Your decision: ${decision.decision}${decision.decision === "correct" ? ` (${names(decision.labels)})` : ""}`
    : "Not decided yet.";
  document.body.dataset.rowId = item.row_id;
  document.body.dataset.index = String(index);
  markChanges();
  showProgress();
}

async function load(to) {
  index = Math.max(0, Math.min(to, state.total - 1));
  item = await api(`/api/item/${index}`);
  render();
}

async function run(task) {
  if (busy) return;
  busy = true;
  try { await task(); } catch (error) { say(`Not saved: ${error.message}`, true); } finally { busy = false; }
}

function decide(decision) {
  return run(async () => {
    const labels = selected();
    if (decision === "correct") {
      if (!labels.length) throw new Error("choose at least one label, or none");
      const same = labels.length === item.labels.length && labels.every((l) => item.labels.includes(l));
      if (same) decision = "accept";
    }
    const result = await api("/api/decide", {
      index, row_id: item.row_id, decision, labels, phi_flag: $("phi").checked, note: $("note").value,
    });
    state = result.state;
    const at = index + 1;
    if (index + 1 < state.total) await load(index + 1); else await load(index);
    say(`Saved: ${decision} on row ${at}.` + (state.decided === state.total ? " Every row is decided." : ""));
  });
}

function undo() {
  return run(async () => {
    const result = await api("/api/undo", {});
    state = result.state;
    if (result.undone === null) { say("Nothing to undo."); showProgress(); return; }
    await load(result.index);
    say(`Undone: ${result.undone} on row ${result.index + 1}.`);
  });
}

function go(to) { return run(async () => { await load(to); say(""); }); }

function onKey(event) {
  const target = event.target;
  if (target.id === "note") {
    if (event.key === "Escape") { target.blur(); $("sentence").focus(); event.preventDefault(); }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if ((event.key === "Enter" || event.key === " ") && target.tagName === "BUTTON") return;  // the button's own action
  const category = config.categories.find((c) => c.key === event.key);
  const actions = {
    a: () => decide("accept"), r: () => decide("reject"), Enter: () => decide("correct"), u: undo,
    ArrowRight: () => go(index + 1), j: () => go(index + 1), ArrowLeft: () => go(index - 1), k: () => go(index - 1),
    g: () => go(state.first_undecided ?? index),
    p: () => { $("phi").checked = !$("phi").checked; say($("phi").checked ? "PHI flag on." : "PHI flag off."); },
    n: () => $("note").focus(),
  };
  if (category) {
    const box = $(`label-${category.id}`);
    toggle(category.id, !box.checked);
  } else if (actions[event.key]) {
    actions[event.key]();
  } else return;
  event.preventDefault();
}

async function start() {
  config = await api("/api/config");
  $("where").textContent = `· ${config.dataset} of ${config.run} · ${config.reviewer} · ${config.order} order`;
  buildLabels();
  state = await api("/api/state");
  if (!state.total) { $("progress").textContent = "Nothing to review."; return; }
  const first = state.first_undecided;
  await load(first === null ? 0 : first);
  say(first === null ? "Every row is decided." : (first > 0 ? `Resumed at row ${first + 1}, the first undecided.` : ""));
  document.addEventListener("keydown", onKey);
  $("accept").addEventListener("click", () => decide("accept"));
  $("reject").addEventListener("click", () => decide("reject"));
  $("correct").addEventListener("click", () => decide("correct"));
  $("undo").addEventListener("click", undo);
  $("prev").addEventListener("click", () => go(index - 1));
  $("next").addEventListener("click", () => go(index + 1));
  $("sentence").focus();
  document.body.dataset.ready = "1";
}

start().catch((error) => say(`Cannot start: ${error.message}`, true));
