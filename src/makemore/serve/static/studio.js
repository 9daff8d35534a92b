// makemore studio: the views the studio adds to makemore serve's page (app.js, loaded first: its
// request/api/showError/showView/reloadRuns/currentRun and its hooks). Plain JavaScript, no framework;
// it talks only to this server's JSON API (/api/studio/... and serve's routes).
"use strict";

const studio = {state: null, jobs: [], favourites: new Map(), shownList: null, events: null};
const JSON_LIMIT = 60000;  // pasted text over this many bytes goes as an upload (JSON bodies are small)
const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};
const button = (text, onclick, props = {}) => el("button", {type: "button", textContent: text, onclick, ...props});
const studioPath = (...parts) => `/api/studio/${parts.map(encodeURIComponent).join("/")}`;

function notice(message) {
  $("notice").textContent = message || "";
  $("notice").hidden = !message;
}

// Seconds as "2 min 30 s".
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m ? `${m} min${s % 60 ? ` ${s % 60} s` : ""}` : `${s} s`;
}

// A date the server wrote (seconds since 1970, or ISO text) as local date and time.
function when(value) {
  if (value === null || value === undefined) return "";
  const date = new Date(typeof value === "number" ? value * 1000 : value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

// A POST of a JSON body (a state-changing request: the server takes JSON only).
const post = (path, body = {}) => api(path, body);

// --- state: lists, runs, jobs ------------------------------------------------------------------------
// The studio's state asked again and shown; serve's runs too unless `withRuns` is false (app.js lists
// them itself at start).
async function refreshState(withRuns = true) {
  const state = await api("/api/studio/state");
  studio.state = state;
  renderLists();
  renderTrainForm();
  renderRuns();
  renderJobs(state.jobs);
  renderCompareChoices();
  if (withRuns) await reloadRuns();
  return state;
}

const studioRun = (id) => (studio.state ? studio.state.runs.find((r) => r.id === id) : undefined);
// The studio's run behind serve's run `serveId` (the one generate, score and explore use).
const runOfServed = (serveId) => (studio.state ? studio.state.runs.find((r) => r.serve_id === serveId) : undefined);

// --- bring a list -------------------------------------------------------------------------------------
const TABULAR = new Set(["csv", "tsv"]);

// The header's names, as suggestions for the column boxes (the server reads the file; this only helps).
function suggestColumns(firstLine) {
  const format = $("list-format").value;
  // the delimiter as the CSV reader picks it: the first of , ; tab | in the header line
  const delimiter = format === "tsv" ? "\t" : [",", ";", "\t", "|"].find((d) => firstLine.includes(d)) || ",";
  const names = TABULAR.has(format) ? firstLine.split(delimiter)
    .map((s) => s.trim().replace(/^"(.*)"$/, "$1")).filter((s) => s) : [];
  $("columns").replaceChildren(...names.map((name) => el("option", {value: name})));
}

async function firstLineOfInput() {
  const file = $("list-file").files[0];
  const text = file ? await file.slice(0, 65536).text() : $("list-text").value;
  return text.split(/\r?\n/, 1)[0] || "";
}

async function formatChanged() {
  for (const label of document.querySelectorAll("#list-form label.column")) {
    label.hidden = !TABULAR.has($("list-format").value);
  }
  suggestColumns(await firstLineOfInput());
}

function listFields() {
  const tabular = TABULAR.has($("list-format").value);
  return {
    name: $("list-name").value.trim() || ($("list-file").files[0] ? $("list-file").files[0].name : "pasted list"),
    format: $("list-format").value,
    item_column: tabular ? $("item-column").value.trim() : "",
    label_column: tabular ? $("label-column").value.trim() : "",
  };
}

// A file (or a long paste, as a file) goes as multipart with the X-Makemore header the server asks of
// uploads; a short paste as JSON.
async function sendList() {
  const fields = listFields();
  const file = $("list-file").files[0];
  const text = $("list-text").value;
  const blob = file || new Blob([text], {type: "text/plain"});
  const limit = studio.state ? studio.state.limits.upload_bytes : Infinity;
  if (blob.size > limit) throw new Error(`the list is ${count(blob.size)} bytes; the most is ${count(limit)}`);
  if (!file && blob.size <= JSON_LIMIT) {
    if (!text.trim()) throw new Error("paste a list or choose a file first");
    return (await post("/api/studio/lists", {...fields, text})).list;
  }
  const form = new FormData();
  form.append("file", blob, file ? file.name : "pasted.txt");
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  let response;
  try {
    response = await fetch("/api/studio/lists/upload", {method: "POST", headers: {"X-Makemore": "1"}, body: form});
  } catch (err) {
    throw new Error("the server cannot be reached (is makemore studio still running?)");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}`);
  return data.list;
}

async function addList(event) {
  event.preventDefault();
  showError("");
  $("list-add").disabled = true;
  try {
    const added = await sendList();
    studio.shownList = added.id;
    $("list-text").value = "";
    $("list-file").value = "";
    await refreshState();
    $("train-list").value = added.id;
    notice(`added the list ${added.name}`);
  } catch (err) {
    showError(err.message);
  } finally {
    $("list-add").disabled = false;
  }
}

function summaryFacts(s) {
  const rows = [["items", count(s.items)], ["distinct", count(s.distinct)], ["duplicates", count(s.duplicates)],
    ["alphabet", `${[...s.alphabet].length} characters: ${s.alphabet}`]];
  if (s.lengths) rows.push(["lengths", `${s.lengths.min} to ${s.lengths.max}, mean ${s.lengths.mean.toFixed(1)}`]);
  if (s.labels) rows.push(["labels", Object.entries(s.labels).map(([k, v]) => `${k} ${count(v)}`).join(", ")]);
  if (s.columns) rows.push(["columns", s.columns.join(", ")]);
  return rows;
}

function showSummary(list) {
  const box = $("list-summary");
  box.hidden = !list;
  if (!list) return;
  const s = list.summary;
  $("summary-title").textContent = `${list.name} (${list.format})`;
  $("summary-verdict").textContent = s.error ? s.error
    : s.trainable ? "ready to train" : "training would refuse this list: see the lines below";
  $("summary-verdict").className = s.trainable && !s.error ? "ok" : "bad";
  $("summary-facts").replaceChildren(...summaryFacts(s).flatMap(([k, v]) => [el("dt", {textContent: k}),
    el("dd", {textContent: v})]));
  const counts = s.lengths ? s.lengths.counts : [];
  const most = Math.max(1, ...counts);
  $("summary-lengths").replaceChildren(...counts.map((n, i) => el("span", {
    className: "bar", title: `${count(n)} items of ${i + 1} characters`, style: `height: ${(100 * n) / most}%`,
  })));
  const refused = s.refused || [];
  $("summary-refused-box").hidden = refused.length === 0;
  $("summary-refused").replaceChildren(...refused.map((r) => el("li", {
    className: "refused", textContent: `line ${r.line}: ${r.reason}`,
  })));
}

async function deleteList(list) {
  showError("");
  try {
    await post(studioPath("lists", list.id, "delete"), {});
    if (studio.shownList === list.id) studio.shownList = null;
    await refreshState();
  } catch (err) {
    showError(err.message);
  }
}

function renderLists() {
  const lists = studio.state.lists;
  $("lists").tBodies[0].replaceChildren(...lists.map((list) => {
    const row = el("tr", {className: "list-row"});
    row.dataset.list = list.id;
    const train = button("Train", () => { $("train-list").value = list.id; showView("train"); });
    const show = button("Summary", () => { studio.shownList = list.id; showSummary(list); });
    row.append(el("td", {textContent: list.name}), el("td", {textContent: count(list.summary.items)}),
      el("td", {textContent: list.format}), el("td", {textContent: when(list.created)}),
      el("td", {className: "row-actions"}, show, train, button("Delete", () => deleteList(list))));
    return row;
  }));
  showSummary(lists.find((l) => l.id === studio.shownList));
}

// --- train --------------------------------------------------------------------------------------------
function renderTrainForm() {
  const {lists, models, time} = studio.state;
  const chosen = $("train-list").value;
  $("train-list").replaceChildren(...lists.map((l) => Object.assign(new Option(l.summary.trainable
    ? `${l.name} (${count(l.summary.items)} items)` : `${l.name} (training would refuse it)`, l.id),
  {disabled: !l.summary.trainable})));
  if (lists.some((l) => l.id === chosen)) $("train-list").value = chosen;
  if (!$("train-model").options.length) {
    $("train-model").replaceChildren(...models.map((m) => Object.assign(new Option(m.label, m.name), {
      title: m.description,
    })));
    const slider = $("train-time");
    Object.assign(slider, {min: String(time.least), max: String(time.most), value: String(time.default)});
    slider.step = String(time.least >= 30 ? 30 : 1);
    $("list-limits").textContent = `at most ${count(studio.state.limits.upload_bytes)} bytes and ` +
      `${count(studio.state.limits.upload_lines)} lines`;
  }
  timeChanged();
  modelChanged();
  $("train-start").disabled = lists.length === 0;
}

function timeChanged() { $("train-time-shown").textContent = duration(Number($("train-time").value)); }

function modelChanged() {
  const option = $("train-model").selectedOptions[0];
  $("train-model-help").textContent = option ? option.title : "";
}

async function startTraining(event) {
  event.preventDefault();
  showError("");
  const body = {list: $("train-list").value, time: Number($("train-time").value), model: $("train-model").value};
  if ($("train-name").value.trim()) body.name = $("train-name").value.trim();
  $("train-start").disabled = true;
  try {
    const answer = await post("/api/studio/train", body);
    studio.followed = answer.job.id;
    $("train-name").value = "";
    await refreshState();
  } catch (err) {
    showError(err.message);
  } finally {
    $("train-start").disabled = false;
  }
}

async function cancelJob(job) {
  showError("");
  try {
    await post(studioPath("jobs", job.id, "cancel"), {});
  } catch (err) {
    showError(err.message);
  }
}

const ACTIVE = new Set(["queued", "running"]);

// The job the progress panel follows: the one started from this page, else the running one, else the latest.
function followedJob(jobs) {
  return jobs.find((j) => j.id === studio.followed) || jobs.find((j) => j.status === "running") ||
    [...jobs].sort((a, b) => String(b.created).localeCompare(String(a.created)))[0];
}

function renderJobs(jobs) {
  const before = new Map(studio.jobs.map((j) => [j.id, j.status]));
  studio.jobs = jobs;
  $("jobs").tBodies[0].replaceChildren(...jobs.map((job) => {
    const row = el("tr", {className: `job-row ${job.status}`});
    row.dataset.job = job.id;
    const status = job.status === "queued" ? `queued (${job.position} ahead)` : job.status;
    row.append(el("td", {textContent: job.name}), el("td", {textContent: listName(job.list)}),
      el("td", {textContent: job.model}), el("td", {textContent: duration(job.time)}),
      el("td", {textContent: status, title: job.error || ""}),
      el("td", {}, ...(ACTIVE.has(job.status) ? [button("Cancel", () => cancelJob(job))] : [])));
    return row;
  }));
  showProgress(followedJob(jobs));
  return jobs.some((j) => before.get(j.id) !== j.status);
}

function listName(id) {
  const list = studio.state && studio.state.lists.find((l) => l.id === id);
  return list ? list.name : "(deleted)";
}

function showProgress(job) {
  $("progress").hidden = !job;
  if (!job) return;
  $("progress-title").textContent = `${job.name} (${job.model}, ${duration(job.time)})`;
  $("progress-status").textContent = job.status;
  $("progress-step").textContent = job.steps ? `${count(job.step)} of ${count(job.steps)}` : count(job.step || 0);
  $("progress-left").textContent = job.status === "running" ? `${duration(job.left_s)} left`
    : `${duration(job.elapsed_s)} trained`;
  $("progress-cancel").hidden = !ACTIVE.has(job.status);
  $("progress-cancel").onclick = () => cancelJob(job);
  $("progress-error").textContent = job.error || "";
  $("progress-error").hidden = !job.error;
  drawCurve($("curve"), job.curve || []);
}

// The train and dev losses by step: two lines over the same axes (nulls skipped).
function drawCurve(canvas, curve) {
  canvas.dataset.points = String(curve.length);  // the server thins a long curve: fewer points, same span
  canvas.dataset.lastStep = String(curve.length ? curve[curve.length - 1][0] : 0);
  const g = canvas.getContext("2d");
  const {width, height} = canvas;
  const pad = {left: 48, right: 12, top: 12, bottom: 28};
  g.clearRect(0, 0, width, height);
  const values = curve.flatMap(([, train, dev]) => [train, dev]).filter((v) => v !== null && Number.isFinite(v));
  if (!values.length) return;
  const lastStep = Math.max(1, ...curve.map(([step]) => step));
  const low = Math.min(...values);
  const high = Math.max(...values);
  const span = high - low || 1;
  const x = (step) => pad.left + ((width - pad.left - pad.right) * step) / lastStep;
  const y = (v) => height - pad.bottom - ((height - pad.top - pad.bottom) * (v - low)) / span;
  g.strokeStyle = "#d8dce3";
  g.fillStyle = "#5d6675";
  g.font = "12px system-ui, sans-serif";
  g.strokeRect(pad.left, pad.top, width - pad.left - pad.right, height - pad.top - pad.bottom);
  g.fillText(high.toFixed(2), 4, pad.top + 10);
  g.fillText(low.toFixed(2), 4, height - pad.bottom);
  g.fillText(`step ${count(lastStep)}`, width - pad.right - 80, height - 8);
  for (const [column, colour] of [[1, "#2f5bd3"], [2, "#d9822b"]]) {
    const points = curve.filter((row) => row[column] !== null && Number.isFinite(row[column]));
    g.strokeStyle = colour;
    g.fillStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    points.forEach((row, i) => (i ? g.lineTo(x(row[0]), y(row[column])) : g.moveTo(x(row[0]), y(row[column]))));
    g.stroke();
    if (points.length === 1) g.fillRect(x(points[0][0]) - 2, y(points[0][column]) - 2, 4, 4);
  }
}

// Jobs pushed by the server (server-sent events); a job whose status changed may have made (or
// stopped) a run that generates, so the studio's state and the runs are asked again.
function listenToJobs() {
  const source = new EventSource("/api/studio/events");
  studio.events = source;
  source.addEventListener("jobs", (event) => {
    if (renderJobs(JSON.parse(event.data))) refreshState().catch((err) => showError(err.message));
  });
}

// --- runs ---------------------------------------------------------------------------------------------
const RESUMABLE = new Set(["cancelled", "failed", "interrupted"]);

function openRun(run) {
  $("run-select").value = String(run.serve_id);
  runChanged();
  showView("generate");
  generate();
}

// An inline question in the run's row (no pop-up): `controls` replace its buttons until answered; the
// table is not redrawn meanwhile (a job that ends would take the question away).
function askInRow(row, ...controls) {
  studio.asking = true;
  row.querySelector(".row-actions").replaceChildren(...controls);
}

function answered() {
  studio.asking = false;
  renderRuns();
}

function renameRun(row, run) {
  const input = el("input", {className: "rename", value: run.name, maxLength: 100, ariaLabel: "new name"});
  const save = async () => {
    showError("");
    try {
      await post(studioPath("runs", run.id, "rename"), {name: input.value.trim()});
      studio.asking = false;
      await refreshState();
    } catch (err) {
      showError(err.message);
    }
  };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") save(); });
  askInRow(row, input, button("Save", save, {className: "save"}), button("Keep", answered));
  input.focus();
}

function deleteRun(row, run) {
  const really = async () => {
    showError("");
    try {
      await post(studioPath("runs", run.id, "delete"), {confirm: run.id});
      studio.asking = false;
      studio.favourites.delete(run.id);
      await refreshState();
      notice(`deleted the run ${run.name}`);
    } catch (err) {
      showError(err.message);
    }
  };
  askInRow(row, el("span", {className: "ask", textContent: `Delete ${run.name} and its files?`}),
    button("Delete for good", really, {className: "danger confirm"}), button("Keep", answered));
}

async function resumeRun(run) {
  showError("");
  try {
    studio.followed = (await post(studioPath("runs", run.id, "resume"), {})).job.id;
    await refreshState();
    showView("train");
  } catch (err) {
    showError(err.message);
  }
}

function runActions(row, run) {
  const actions = [];
  if (run.serve_id !== null) {
    actions.push(button("Open", () => openRun(run), {className: "open"}));
    actions.push(el("a", {
      className: "export button", textContent: "Export", download: `${run.name}.html`,
      href: `/api/export?run=${run.serve_id}&format=html&weights=float16`,
      title: "one HTML file that generates with this run in any browser, offline",
    }));
  }
  actions.push(button("Rename", () => renameRun(row, run), {className: "rename"}));
  if (RESUMABLE.has(run.status) && run.serve_id !== null) {
    actions.push(button("Resume", () => resumeRun(run), {className: "resume"}));
  }
  const training = studio.jobs.some((j) => j.run === run.id && ACTIVE.has(j.status));
  actions.push(button("Delete", () => deleteRun(row, run), {className: "delete", disabled: training}));
  return actions;
}

function renderRuns() {
  if (studio.asking) return;
  $("runs").tBodies[0].replaceChildren(...studio.state.runs.map((run) => {
    const row = el("tr", {className: "run-row"});
    row.dataset.run = run.id;
    row.append(el("td", {className: "name", textContent: run.name}), el("td", {textContent: run.list_name || ""}),
      el("td", {className: "model", textContent: run.auto ? `auto: ${run.auto.summary}` : run.model,
        title: run.auto ? run.auto.reason : ""}),
      el("td", {className: "nll", textContent: fmt(run.dev_nll)}),
      el("td", {textContent: duration(run.train_seconds)}), el("td", {textContent: when(run.created)}),
      el("td", {className: "status", textContent: run.status}));
    row.append(el("td", {className: "row-actions"}, ...runActions(row, run)));
    return row;
  }));
}

// --- favourites -------------------------------------------------------------------------------------
// The starred items of each studio run, item -> {item, score, label}, read when the run is first shown.
async function favouritesOf(run) {
  if (!studio.favourites.has(run.id)) {
    const list = await api(studioPath("runs", run.id, "favourites"));
    studio.favourites.set(run.id, new Map(list.map((f) => [f.item, f])));
  }
  return studio.favourites.get(run.id);
}

function paintStar(star, on) {
  star.setAttribute("aria-pressed", String(on));
  star.textContent = on ? "★" : "☆";
  star.title = on ? "starred: click to drop it from the favourites" : "keep this item in the favourites";
}

// The label a generated item was asked under: the label control's one choice, else none.
function chosenLabel() {
  const control = controls.find(([spec]) => spec.choices_from === "labels");
  return control && control[1].value ? control[1].value : null;
}

async function toggleStar(star, run, r) {
  const favourites = await favouritesOf(run);
  const starred = !favourites.has(r.item);
  const body = {item: r.item, score: r.nll, label: chosenLabel(), starred};
  star.disabled = true;
  try {
    const list = await post(studioPath("runs", run.id, "favourites"), body);
    studio.favourites.set(run.id, new Map(list.map((f) => [f.item, f])));
    paintStar(star, starred);
    renderFavourites();
  } catch (err) {
    showError(err.message);
  } finally {
    star.disabled = false;
  }
}

// app.js's hook: a star before each generated item of a studio run.
hooks.result = (li, r) => {
  const run = runOfServed(currentRun().id);
  if (!run) return;
  const star = button("☆", () => toggleStar(star, run, r), {className: "star"});
  const known = studio.favourites.get(run.id);
  paintStar(star, Boolean(known && known.has(r.item)));
  if (!known) favouritesOf(run).then((f) => paintStar(star, f.has(r.item)), (err) => showError(err.message));
  li.prepend(star);
};

async function renderFavourites() {
  const run = runs.length ? runOfServed(currentRun().id) : undefined;
  $("favourites-run").textContent = run ? run.name : "no run";
  for (const kind of ["txt", "csv"]) {
    const link = $(`favourites-${kind}`);
    link.href = run ? `${studioPath("runs", run.id, "favourites")}.${kind}` : "";
    link.hidden = !run;
  }
  if (!run) return $("favourites").replaceChildren();
  const favourites = await favouritesOf(run);
  $("favourites").replaceChildren(...[...favourites.values()].map((f) => {
    const star = button("★", null, {className: "star"});
    paintStar(star, true);
    star.onclick = () => toggleStar(star, run, {item: f.item, nll: f.score});
    return el("li", {className: "favourite"}, star, el("span", {className: "item", textContent: f.item}),
      el("span", {className: "nll", textContent: f.score === null ? "" : f.score.toFixed(3)}),
      ...(f.label ? [el("span", {className: "mark", textContent: f.label})] : []));
  }));
}

// A run chosen: its favourites read, then the stars of the items shown painted.
hooks.runChanged = async (run) => {
  const studied = runOfServed(run.id);
  if (!studied) return;
  try {
    const favourites = await favouritesOf(studied);
    for (const li of document.querySelectorAll("#results li.result")) {
      const star = li.querySelector("button.star");
      if (star) paintStar(star, favourites.has(li.querySelector(".item").dataset.item));
    }
    if (!$("view-favourites").hidden) renderFavourites();
  } catch (err) {
    showError(err.message);
  }
};

// --- compare ------------------------------------------------------------------------------------------
function renderCompareChoices() {
  const ready = studio.state.runs.filter((r) => r.serve_id !== null);
  for (const [id, index] of [["compare-a", 0], ["compare-b", 1]]) {
    const chosen = $(id).value;
    $(id).replaceChildren(...ready.map((r) => new Option(r.name, r.id)));
    $(id).value = ready.some((r) => r.id === chosen) ? chosen : (ready[index] || ready[0] || {id: ""}).id;
  }
  $("compare-button").disabled = ready.length === 0;
}

// Each run's dev NLL and ten items drawn with the same seed, side by side.
async function compare(event) {
  event.preventDefault();
  showError("");
  const seed = Math.floor(Math.random() * 2 ** 31);
  try {
    const columns = await Promise.all([$("compare-a").value, $("compare-b").value].map(async (id) => {
      const run = studioRun(id);
      const data = await post("/api/generate", {run: run.serve_id, n: 10, seed});
      return el("div", {className: "compared"}, el("h3", {textContent: run.name}),
        el("p", {className: "meta", textContent: `${run.auto ? `auto: ${run.auto.summary}` : run.model} · dev NLL ${fmt(run.dev_nll)}`}),
        el("ol", {}, ...data.items.map((r) => el("li", {className: "item", textContent: r.item}))));
    }));
    $("compare-out").replaceChildren(...columns);
  } catch (err) {
    showError(err.message);
  }
}

// --- start ---------------------------------------------------------------------------------------------
hooks.view = (name) => {
  notice("");  // what the last action said belongs to the view it was done in
  if (name === "favourites") renderFavourites().catch((err) => showError(err.message));
};

// app.js waits for the studio's state before it lists the runs and generates (a star needs the run's
// studio id); an error is shown here, and the serve part of the page goes on.
hooks.ready = refreshState(false).catch((err) => {
  showError(err.message);
  return null;
});

async function startStudio() {
  $("list-form").addEventListener("submit", addList);
  $("list-format").addEventListener("change", formatChanged);
  $("list-file").addEventListener("change", formatChanged);
  $("list-text").addEventListener("change", formatChanged);
  $("train-form").addEventListener("submit", startTraining);
  $("train-time").addEventListener("input", timeChanged);
  $("train-model").addEventListener("change", modelChanged);
  $("compare-form").addEventListener("submit", compare);
  const state = await hooks.ready;
  if (!state) return;
  if (!state.runs.some((r) => r.serve_id !== null)) showView(state.lists.length ? "train" : "list");
  listenToJobs();
}

startStudio();
