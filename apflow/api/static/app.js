// apflow dashboard: plain JavaScript calling the JSON-RPC API at POST /tasks.
// Every value that comes from the API is put on the page with textContent, never as HTML.
"use strict";

const TOKEN_KEY = "apflow.token";
const LIVE_STATES = new Set(["queued", "running"]);
const WEEKDAYS = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const REFRESH_MS = 1000; // while a run of the open task is live

const state = {
  taskId: null,    // the task whose view is open
  logRunId: null,  // the run whose log is shown
  generation: 0,   // bumped whenever the view changes, to stop stale log followers
  timer: null,
};

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function $(id) { return document.getElementById(id); }

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function cell(row, text, className) {
  const td = el("td", text, className);
  row.appendChild(td);
  return td;
}

function button(text, onClick, className) {
  const b = el("button", text, className);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function show(message, info) {
  $("message").textContent = message || "";
  $("message").className = info ? "info" : "";
}

function localTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

// A time as "local" with the ISO instant on a second, quieter line.
function timeCell(row, iso) {
  const td = cell(row, localTime(iso));
  if (iso) td.appendChild(el("small", iso));
  return td;
}

function duration(run) {
  if (!run.started_at) return "—";
  const end = run.finished_at ? new Date(run.finished_at) : new Date();
  const seconds = (end - new Date(run.started_at)) / 1000;
  return seconds < 60 ? seconds.toFixed(1) + " s" : Math.round(seconds) + " s";
}

// ---------------------------------------------------------------------------
// Token and API
// ---------------------------------------------------------------------------

// `/#token=<JWT>`: taken into sessionStorage, then dropped from the address bar and history.
function takeTokenFromFragment() {
  const match = /^#token=(.+)$/.exec(window.location.hash);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", window.location.pathname + window.location.search);
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

// Display only: the server checks the token, the page just says whose it is.
function claims(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch (error) {
    return {};
  }
}

class Unauthenticated extends Error {}

async function post(body) {
  const response = await fetch("/tasks", {
    method: "POST",
    headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" },
    body: JSON.stringify(body),
    cache: "no-store",
  });
  const answer = await response.json();
  if (response.status === 401) {
    throw new Unauthenticated(answer.error ? answer.error.message : "unauthenticated");
  }
  return answer;
}

let nextId = 1;

async function rpc(method, params) {
  const answer = await post({ jsonrpc: "2.0", id: nextId++, method: method, params: params || {} });
  if (answer.error) throw new Error(method + ": " + answer.error.message);
  return answer.result;
}

// Several calls in one request (at most 100 per batch); results in the order asked.
async function batch(calls) {
  const results = [];
  for (let start = 0; start < calls.length; start += 100) {
    const chunk = calls.slice(start, start + 100).map(([method, params]) => (
      { jsonrpc: "2.0", id: nextId++, method: method, params: params }));
    const answers = await post(chunk);
    const byId = new Map(answers.map((a) => [a.id, a]));
    for (const call of chunk) {
      const a = byId.get(call.id);
      results.push(a && !a.error ? a.result : null);
    }
  }
  return results;
}

// ---------------------------------------------------------------------------
// Schedules in words
// ---------------------------------------------------------------------------

function scheduleWords(task) {
  const type = task.schedule_type;
  const expr = (task.schedule_expression || "").trim();
  if (!type) return "no schedule";
  const timed = /^(.*?)\s*(\d{1,2}:\d{2})$/.exec(expr);
  switch (type) {
    case "once": return "once at " + localTime(expr);
    case "interval": return "every " + expr + " s";
    case "daily": return "daily at " + expr;
    case "weekly": {
      if (!timed) return "weekly " + expr;
      const days = timed[1].split(",").map((d) => WEEKDAYS[Number(d)] || d);
      return "weekly on " + days.join(", ") + " at " + timed[2];
    }
    case "monthly":
      return timed ? "monthly on day " + timed[1].split(",").join(", ") + " at " + timed[2]
        : "monthly " + expr;
    case "cron":
      return expr.startsWith("@every ") ? "every " + expr.slice(7) : "cron " + expr;
    default: return type + " " + expr;
  }
}

// ---------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------

function showOnly(id) {
  for (const section of ["sign-in", "schedules", "task"]) $(section).hidden = section !== id;
  const signedIn = id !== "sign-in";
  $("sign-out").hidden = !signedIn;
  $("refresh").hidden = !signedIn;
}

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopTimers();
  state.taskId = null;
  $("whoami").textContent = "";
  showOnly("sign-in");
  show(reason || "");
}

function stopTimers() {
  state.generation += 1;
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
}

// Runs `work`, turning a refused token into the sign-in form and other errors into a message.
async function guarded(work) {
  try {
    await work();
  } catch (error) {
    if (error instanceof Unauthenticated) signOut("Signed out: " + error.message);
    else show(error.message);
  }
}

async function showSchedules() {
  stopTimers();
  state.taskId = null;
  showOnly("schedules");
  show("");
  const [scheduled, all] = await batch([
    ["tasks.scheduled.list", { enabled_only: false, limit: 1000 }],
    ["tasks.list", { limit: 1000 }],
  ]);
  // Scheduled tasks first, then the ones without a schedule.
  const seen = new Set();
  const tasks = [];
  for (const task of [...(scheduled ? scheduled.tasks : []), ...(all ? all.tasks : [])]) {
    if (!seen.has(task.id)) { seen.add(task.id); tasks.push(task); }
  }
  const lastRuns = await batch(tasks.map((t) => ["tasks.runs.list", { task_id: t.id, limit: 1 }]));
  const rows = $("task-rows");
  rows.replaceChildren();
  tasks.forEach((task, i) => rows.appendChild(taskRow(task, lastRuns[i])));
  $("no-tasks").hidden = tasks.length > 0;
}

function taskRow(task, lastRuns) {
  const row = el("tr");
  row.dataset.taskId = task.id;
  const name = cell(row);
  name.appendChild(button(task.name, () => guarded(() => openTask(task.id)), "link task-link"));
  cell(row, task.description || "");
  cell(row, task.user_id);
  const schedule = cell(row, scheduleWords(task));
  if (task.schedule_type) {
    schedule.appendChild(el("code", task.schedule_type + " " + task.schedule_expression));
  }
  cell(row, task.timezone || "");
  timeCell(row, task.next_run_at);
  const last = lastRuns && lastRuns.runs.length ? lastRuns.runs[0].state : "—";
  cell(row, last, "state-" + last);
  cell(row, task.schedule_type ? (task.schedule_enabled ? "yes" : "no") : "—");
  return row;
}

async function openTask(taskId) {
  if (state.taskId !== taskId) {
    state.logRunId = null;
    $("logs").hidden = true;
  }
  stopTimers();
  state.taskId = taskId;
  showOnly("task");
  show("");
  await renderTask();
}

async function renderTask() {
  const generation = state.generation;
  const taskId = state.taskId;
  const [task, runs, ledger] = await Promise.all([
    rpc("tasks.get", { task_id: taskId }),
    rpc("tasks.runs.list", { task_id: taskId, limit: 50 }),
    rpc("tasks.occurrences.list", { task_id: taskId, limit: 50 }),
  ]);
  if (generation !== state.generation) return; // the user moved on meanwhile
  renderTaskHeader(task);
  renderRuns(runs.runs);
  renderOccurrences(ledger.occurrences);
  if (runs.runs.some((run) => LIVE_STATES.has(run.state))) {
    state.timer = setTimeout(() => {
      if (generation === state.generation) guarded(renderTask);
    }, REFRESH_MS);
  }
}

function renderTaskHeader(task) {
  $("task-name").textContent = task.name;
  $("task-description").textContent = task.description || "";
  const facts = $("task-facts");
  facts.replaceChildren();
  const fact = (term, value) => { facts.appendChild(el("dt", term)); facts.appendChild(el("dd", value)); };
  fact("Owner", task.user_id);
  fact("Schedule", scheduleWords(task));
  if (task.schedule_type) fact("Expression", task.schedule_type + " " + task.schedule_expression);
  fact("Time zone", task.timezone || "—");
  fact("Next run", task.next_run_at ? localTime(task.next_run_at) + "  (" + task.next_run_at + ")" : "—");
  fact("Enabled", task.schedule_type ? (task.schedule_enabled ? "yes" : "no") : "—");
  fact("Runs counted", task.run_count);
  // Only what this task allows is offered.
  const scheduled = Boolean(task.schedule_type);
  $("run-now").hidden = !task.api_trigger;
  $("pause").hidden = !(scheduled && task.schedule_enabled);
  $("resume").hidden = !(scheduled && !task.schedule_enabled);
  $("skip-next").hidden = !(scheduled && task.schedule_enabled && task.next_run_at);
}

function renderRuns(runs) {
  const rows = $("run-rows");
  rows.replaceChildren();
  for (const run of runs) {
    const row = el("tr");
    row.dataset.runId = run.id;
    row.dataset.state = run.state;
    cell(row, run.id.slice(0, 8)).title = run.id;
    cell(row, run.trigger);
    cell(row, run.state, "state-" + run.state);
    timeCell(row, run.started_at);
    cell(row, duration(run));
    cell(row, run.exit_code === null ? "—" : run.exit_code);
    const actions = cell(row);
    actions.appendChild(button("Logs", () => guarded(() => showLogs(run.id))));
    if (LIVE_STATES.has(run.state)) {
      actions.appendChild(button("Cancel", () => act("tasks.runs.cancel", { run_id: run.id }, "Run cancelled")));
    }
    rows.appendChild(row);
  }
}

function renderOccurrences(occurrences) {
  const rows = $("occurrence-rows");
  rows.replaceChildren();
  for (const o of occurrences) {
    const row = el("tr");
    timeCell(row, o.scheduled_for);
    cell(row, o.outcome, "state-" + o.outcome);
    timeCell(row, o.recorded_at);
    cell(row, o.run_id ? o.run_id.slice(0, 8) : "—");
    cell(row, o.detail || "");
    cell(row, o.requested_by || "");
    rows.appendChild(row);
  }
}

// A run's log; a live run is followed (long polls with follow:true) until it finishes.
async function showLogs(runId) {
  state.logRunId = runId;
  const generation = ++state.generation; // stops any other follower
  if (state.timer) { clearTimeout(state.timer); state.timer = null; }
  $("logs").hidden = false;
  $("logs-run").textContent = runId.slice(0, 8);
  const text = $("log-text");
  text.textContent = "";
  let afterSeq = -1;
  for (;;) {
    const page = await rpc("tasks.runs.logs",
      { run_id: runId, after_seq: afterSeq, follow: true, timeout: 10 });
    if (generation !== state.generation) return;
    text.textContent += page.text;
    afterSeq = page.next_seq;
    $("logs-state").textContent = "(" + page.state + ")";
    if (page.finished && page.chunks.length === 0) break;
  }
  await renderTask(); // the run's final state in the history
}

async function act(method, params, done) {
  await guarded(async () => {
    await rpc(method, params);
    show(done, true);
    await openTask(state.taskId);
  });
}

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

async function signedIn() {
  const who = claims(token());
  $("whoami").textContent = (who.sub || "?") + (who.role ? " (" + who.role + ")" : "");
  await guarded(showSchedules);
}

function wire() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    $("token-input").value = "";
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    signedIn();
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  $("back").addEventListener("click", () => guarded(showSchedules));
  $("refresh").addEventListener("click", () => guarded(state.taskId ? renderTask : showSchedules));
  $("run-now").addEventListener("click", async () => {
    await guarded(async () => {
      const run = await rpc("tasks.run", { task_id: state.taskId });
      show("Run " + run.id.slice(0, 8) + " queued", true);
      await openTask(state.taskId);
      await showLogs(run.id);
    });
  });
  $("pause").addEventListener("click", () => act("tasks.pause", { task_id: state.taskId }, "Paused"));
  $("resume").addEventListener("click", () => act("tasks.resume", { task_id: state.taskId }, "Resumed"));
  $("skip-next").addEventListener("click",
    () => act("tasks.skip", { task_id: state.taskId, count: 1 }, "Next run skipped"));
}

function start() {
  wire();
  takeTokenFromFragment();
  if (token()) signedIn();
  else signOut("");
}

start();
