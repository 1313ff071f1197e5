// Clinician review page: keyboard first, plain DOM (text is only ever set with textContent).
// Every key means the same wherever the focus is (only the note and the name field take typing).
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
const REVIEWER_COOKIE = "review_reviewer";  // cookies ignore ports: the name outlives this server's port
let config = null;
let state = null;
let item = null;
let index = 0;
let busy = false;
let atEnd = false;
let confirmAccept = false;  // "a" pressed once on a row whose boxes differ from the LLM's labels

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

function countsText() {
  const c = state.counts;
  return `${state.decided} decided (${c.accept} accepted, ${c.correct} corrected, ${c.reject} rejected, ` +
    `${c.unsure} unsure)` + (state.skipped ? `, ${state.skipped} skipped` : "");
}

function showProgress() {
  if (!state) return;
  const where = atEnd ? "End of the queue" : `Row ${index + 1} of ${state.total}`;
  $("progress").textContent = `${where} · ${countsText()}`;
  $("position").textContent = `${index + 1} of ${state.total}`;
}

// ---------------------------------------------------------------------------------- reviewer name

function savedName() {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(`${REVIEWER_COOKIE}=`));
  return hit ? decodeURIComponent(hit.slice(REVIEWER_COOKIE.length + 1)) : "";
}

function keepName(name) {
  document.cookie = `${REVIEWER_COOKIE}=${encodeURIComponent(name)}; Max-Age=31536000; Path=/; SameSite=Strict`;
}

async function useName(name) {
  const result = await api("/api/reviewer", { reviewer: name });
  config.reviewer = result.reviewer;
  state = result.state;
  if (!config.reviewer_fixed) keepName(result.reviewer);
  showWhere();
}

function askName(message = "") {
  $("who").hidden = false;
  $("who-status").textContent = message;
  $("who-name").value = savedName();
  $("who-name").focus();
  return new Promise((resolve) => {
    $("who-form").onsubmit = async (event) => {
      event.preventDefault();
      try {
        await useName($("who-name").value.trim());
        $("who").hidden = true;
        resolve();
      } catch (error) {
        $("who-status").textContent = `error: ${error.message}`;
      }
    };
  });
}

async function ensureName() {
  if (config.reviewer) return;
  const saved = savedName();
  if (saved) {
    try { await useName(saved); return; } catch (error) { return askName(`error: ${error.message}`); }
  }
  return askName();
}

function showWhere() {
  $("where").textContent = `· ${config.dataset} of ${config.run} · ${config.reviewer || "?"} · ${config.order} order`;
  $("rename").hidden = config.reviewer_fixed;
}

// ---------------------------------------------------------------------------------- guideline

function buildGuideline() {
  for (const rule of config.rules) {
    const li = document.createElement("li");
    li.textContent = rule.text;
    if (rule.source === "review") li.className = "review-rule";
    $("rules").append(li);
  }
  for (const category of config.categories) {
    const dt = document.createElement("dt");
    dt.textContent = category.name;
    if (category.key) {
      const kbd = document.createElement("kbd");
      kbd.textContent = category.key;
      dt.append(" ", kbd);
    }
    const dd = document.createElement("dd");
    dd.textContent = category.definition;
    $("definitions").append(dt, dd);
  }
}

// ---------------------------------------------------------------------------------- labels

function buildLabels() {
  const list = $("label-list");
  for (const category of config.categories) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = category.id;
    box.id = `label-${category.id}`;
    box.addEventListener("change", () => { toggle(category.id, box.checked); $("sentence").focus(); });
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
const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));
const changed = () => !sameSet(selected(), item.labels);

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

// ---------------------------------------------------------------------------------- the row

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

function silverFacts() {
  fact("Evidence", item.evidence || "—");
  if (item.note_id !== null && item.note_id !== undefined) fact("Note", `${item.note_id}, sentence ${item.sentence_index}`);
  if (item.consistency) {
    const c = item.consistency;
    fact("Consistency", `agreement ${c.agreement.toFixed(2)}; majority: ${names(c.majority_labels)}`,
      c.silver_agrees ? "accept" : "disagree");
  } else fact("Consistency", "not sampled");
}

function bronzeFacts() {
  fact("Category", nameOf(item.category));
  for (const [key, value] of Object.entries(item.attributes || {})) fact(key.replaceAll("_", " "), String(value));
  if (item.phi) {
    fact("PHI scan", item.phi.status + (item.phi.reasons.length ? `: ${item.phi.reasons.join("; ")}` : ""), item.phi.status);
  } else fact("PHI scan", "not scanned");
}

function decisionText(decision) {
  if (decision) return `Your decision: ${decision.decision}` +
    (decision.decision === "correct" ? ` (${names(decision.labels)})` : "");
  return item.skipped ? "Skipped; not decided yet." : "Not decided yet.";
}

function render() {
  $("why").textContent = `Why here: ${item.why}`;
  $("context-before").textContent = (item.context_before || []).join(" ");
  $("context-after").textContent = (item.context_after || []).join(" ");
  sentenceWithEvidence(item.text, item.evidence);
  $("facts").replaceChildren();
  fact(config.dataset === "bronze" ? "Labels (intended)" : "LLM labels", names(item.labels));
  if (config.dataset === "silver") silverFacts(); else bronzeFacts();
  if (item.check) fact("Verifier", item.check.verdict + (item.check.reason ? `: ${item.check.reason}` : ""), item.check.verdict);
  else fact("Verifier", "not checked");

  const decision = item.decision;
  const labels = decision && decision.decision === "correct" ? decision.labels : item.labels;
  for (const box of boxes()) box.checked = labels.includes(box.value);
  $("phi").checked = decision ? decision.phi_flag : false;
  $("note").value = decision ? decision.note : "";
  $("current-decision").textContent = decisionText(decision);
  document.body.dataset.rowId = item.row_id;
  document.body.dataset.index = String(index);
  markChanges();
  showProgress();
}

function showEnd(on) {
  atEnd = on;
  document.body.dataset.view = on ? "end" : "row";
  $("end").hidden = !on;
  $("row").hidden = on;
  $("decide").hidden = on;
  if (on) {
    const open = state.total - state.decided;
    $("end-summary").textContent = `${countsText()} of ${state.total} rows.` +
      (open ? ` ${open} not decided yet: g takes you to the first.` : " Every row is decided.");
  }
  showProgress();
}

async function load(to) {
  clearConfirm();
  if (to >= state.total) { showEnd(true); return; }
  index = Math.max(0, to);
  item = await api(`/api/item/${index}`);
  showEnd(false);
  render();
}

// ---------------------------------------------------------------------------------- actions

async function run(task) {
  if (busy) return;
  busy = true;
  try { await task(); } catch (error) { say(`Not saved: ${error.message}`, true); } finally { busy = false; }
}

function clearConfirm() {
  confirmAccept = false;
  $("confirm").hidden = true;
}

function askConfirm() {
  confirmAccept = true;
  $("confirm").hidden = false;
  $("confirm").textContent = `Your labels (${names(selected())}) differ from the LLM's (${names(item.labels)}). ` +
    "Enter saves yours as a correction; a again accepts the LLM's labels and drops your change.";
  say("");
}

function accept() {
  if (changed() && !confirmAccept) { askConfirm(); return; }
  const confirmed = confirmAccept;
  clearConfirm();
  return decide("accept", confirmed);
}

function decide(decision, discardChanges = false) {
  return run(async () => {
    const labels = selected();
    if (decision === "correct") {
      if (!labels.length) throw new Error("choose at least one label, or none");
      if (sameSet(labels, item.labels)) decision = "accept";
    }
    const result = await api("/api/decide", {
      index, row_id: item.row_id, decision, labels, discard_changes: discardChanges,
      phi_flag: $("phi").checked, note: $("note").value,
    });
    state = result.state;
    const at = index + 1;
    await load(index + 1);
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

function next() {
  return run(async () => {
    if (!atEnd && item && !item.decision && !item.skipped) {
      state = (await api("/api/skip", { index, row_id: item.row_id })).state;
      say(`Skipped row ${index + 1}.`);
    } else say("");
    await load(atEnd ? state.total : index + 1);
  });
}

function previous() { return go(atEnd ? state.total - 1 : index - 1); }
function firstUndecided() { return go(state.first_undecided ?? (atEnd ? state.total : index)); }

function togglePhi() {
  $("phi").checked = !$("phi").checked;
  say($("phi").checked ? "PHI flag on." : "PHI flag off.");
}

function typing(target) { return target.id === "note" || target.id === "who-name"; }

const END_KEYS = new Set(["g", "ArrowLeft", "k", "u"]);

function action(key) {
  const category = config.categories.find((c) => c.key === key);
  if (category) return () => toggle(category.id, !$(`label-${category.id}`).checked);
  return {
    a: accept, r: () => decide("reject"), d: () => decide("unsure"), Enter: () => decide("correct"), u: undo,
    ArrowRight: next, j: next, ArrowLeft: previous, k: previous, g: firstUndecided, p: togglePhi,
    n: () => $("note").focus(), " ": () => {},
  }[key];
}

function onKey(event) {
  if (typing(event.target)) {
    if (event.key === "Escape" && event.target.id === "note") { $("sentence").focus(); event.preventDefault(); }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey || !state || (!item && !atEnd)) return;
  const todo = action(event.key);
  if (!todo) return;
  event.preventDefault();  // a focused button or box never adds its own meaning to a key
  if (atEnd && !END_KEYS.has(event.key)) return;
  if (event.key !== "a") clearConfirm();
  todo();
}

function click(id, task) {
  $(id).addEventListener("click", () => {
    $("sentence").focus();  // a click leaves no focus behind that a later key could fire
    if (id !== "accept") clearConfirm();
    task();
  });
}

async function start() {
  config = await api("/api/config");
  showWhere();
  buildGuideline();
  buildLabels();
  await ensureName();
  state = await api("/api/state");
  if (!state.total) { $("progress").textContent = "Nothing to review."; return; }
  const first = state.first_open;
  await load(first === null ? state.total : first);
  if (first !== null && first > 0) say(`Resumed at row ${first + 1}, the first undecided.`);
  document.addEventListener("keydown", onKey);
  click("accept", accept);
  click("reject", () => decide("reject"));
  click("unsure", () => decide("unsure"));
  click("correct", () => decide("correct"));
  click("undo", undo);
  click("prev", previous);
  click("next", next);
  $("rename").addEventListener("click", async () => {
    await askName();
    state = await api("/api/state");
    await load(state.first_open ?? state.total);
  });
  $("sentence").focus();
  document.body.dataset.ready = "1";
}

start().catch((error) => say(`Cannot start: ${error.message}`, true));
