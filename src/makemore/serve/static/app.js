// makemore serve: the page. Plain JavaScript, no framework, no network but this server's JSON API.
"use strict";

const $ = (id) => document.getElementById(id);
let runs = [];

// What another script of the page (the studio's) adds: each is called when set. result(li, r): a
// generated item's row is made; view(name): a view is shown; runChanged(run): another run is chosen;
// ready: a promise the page waits for before it lists the runs and generates (the studio's state).
const hooks = {result: null, view: null, runChanged: null, ready: null};

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

// A GET (no body) or a POST of `body` (an object, or JSON text already written); [the answer, its JSON text].
async function request(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
  let response;
  let text = "";
  try {
    response = await fetch(path, options);
    text = await response.text();
  } catch (err) {
    throw new Error("the server cannot be reached (is makemore serve still running?)");
  }
  let data = null;
  try { data = JSON.parse(text); } catch (err) { /* not JSON */ }
  if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}`);
  return [data, text];
}

async function api(path, body) { return (await request(path, body))[0]; }

// The chosen run (ids are the server's: a studio's runs come and go, so an id is not a position).
function currentRun() { return runs.find((r) => String(r.id) === $("run-select").value) || runs[0]; }

function fillLabels(select, labels, first) {
  select.replaceChildren(new Option(first, ""), ...labels.map((l) => new Option(l, l)));
  select.disabled = labels.length === 0;
}

// --- tabs -----------------------------------------------------------------------------------
// One tab (#tab-NAME) per view (#view-NAME): the page's nav lists them (the studio's page has more).
const VIEWS = [...document.querySelectorAll("nav .tab")].map((tab) => tab.id.replace(/^tab-/, ""));
function showView(name) {
  for (const view of VIEWS) {
    $(`view-${view}`).hidden = view !== name;
    $(`tab-${view}`).setAttribute("aria-selected", String(view === name));
  }
  if (name === "explore" && runs.length) explore();
  if (hooks.view) hooks.view(name);
}

// --- generate ---------------------------------------------------------------------------------
const list = (text) => text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);

// The generate form's controls, built at start-up from GET /api/options (SampleConfig's declarations):
// one per entry, [the entry, its element]. An entry: name (the JSON field), label, help, kind
// ("int" | "float" | "str" | "bool" | "list"), optional, default (the page's), least, most (null: none),
// run_length (most is the run's length_limit), max_length, placeholder, choices, choices_from ("labels").
let controls = [];

const controlId = (name) => name.replace(/_/g, "-");  // n, top-k, min-len, new-only, similar-to, label ...

// One control's element: a <select> of its choices (or of the run's labels), a check box, a number box
// or a text box (a list: comma-separated), with the entry's limits, starting value and placeholder.
function controlElement(spec) {
  const {kind} = spec;
  let input;
  if (spec.choices_from === "labels") {
    input = document.createElement("select");
    fillLabels(input, [], "any");  // filled when a run is chosen; "any" sends nothing
  } else if (spec.choices.length) {
    input = document.createElement("select");
    const choices = spec.optional || spec.default === "" || spec.default === null ? ["", ...spec.choices] : spec.choices;
    input.replaceChildren(...choices.map((c) => new Option(c === "" ? (spec.placeholder || "default") : c, c)));
    input.value = spec.default === null ? "" : String(spec.default);
  } else {
    input = document.createElement("input");
    if (kind === "bool") {
      input.type = "checkbox";
      input.checked = spec.default === true;
    } else if (kind === "int" || kind === "float") {
      input.type = "number";
      if (spec.least !== null) input.min = String(spec.least);
      if (spec.most !== null) input.max = String(spec.most);
      input.step = kind === "float" ? "any" : "1";
    } else if (spec.max_length !== null && kind === "str") {
      input.maxLength = spec.max_length;
    }
    if (kind !== "bool") {
      // A box with a placeholder starts empty: the placeholder says what empty (the server's default) is.
      const start = spec.default === null || spec.default === undefined || spec.placeholder ? "" : spec.default;
      input.value = Array.isArray(start) ? start.join(", ") : String(start);
    }
  }
  input.id = controlId(spec.name);
  input.name = spec.name;
  if (spec.placeholder && input.tagName === "INPUT") input.placeholder = spec.placeholder;
  const help = kind === "list" && input.tagName === "INPUT" ? `${spec.help} (comma-separated)` : spec.help;
  if (help) input.title = help;
  input.dataset.initial = controlValue(input);  // a shared link names only the controls changed from it
  return input;
}

// Each control in a <label> with its text: the check boxes together in .checks (before "capitalised").
function buildControls(specs) {
  const grid = $("generate-controls");
  const checks = $("generate-checks");
  for (const old of grid.querySelectorAll("label.control")) old.remove();  // built once, but never twice
  controls = specs.map((spec) => {
    const input = controlElement(spec);
    const label = Object.assign(document.createElement("label"), {className: "control"});
    if (input.title) label.title = input.title;
    if (spec.kind === "bool" && input.tagName === "INPUT") {
      label.append(input, ` ${spec.label}`);
      checks.insertBefore(label, $("capitalise-box"));
    } else {
      label.append(`${spec.label} `, input);
      grid.insertBefore(label, checks);
    }
    return [spec, input];
  });
}

// The chosen run's limits and labels: run_length controls go up to its length_limit.
function controlsForRun(run) {
  for (const [spec, input] of controls) {
    if (spec.choices_from === "labels") fillLabels(input, run.labels, "any");
    if (spec.run_length && Number.isInteger(run.length_limit)) {
      input.max = String(spec.most === null ? run.length_limit : Math.min(spec.most, run.length_limit));
    }
  }
}

// The JSON text of one control's value, or null: it sends nothing (an empty box, "any": the server's
// default, no limit; an empty seed: the server draws one).
function controlJSON(spec, input) {
  if (spec.kind === "bool" && input.type === "checkbox") return input.checked ? "true" : "false";
  if (input.tagName === "SELECT") {
    if (input.value === "") return null;
    return JSON.stringify(spec.kind === "list" ? [input.value] : input.value);
  }
  if (spec.kind === "list") {
    const values = list(input.value);
    return values.length ? JSON.stringify(values) : null;
  }
  if (spec.kind === "int" || spec.kind === "float") {
    if (input.validity.badInput) throw new Error(`${spec.name}: not a number`);
    const text = input.value.trim();
    if (text === "") return null;
    // An integer's digits as typed: exact past 2**53 (a seed goes up to 2**64 - 1); the server checks it.
    if (spec.kind === "int" && /^-?[0-9]+$/.test(text)) return text.replace(/^(-?)0+(?=[0-9])/, "$1");
    const number = Number(text);
    if (!Number.isFinite(number)) throw new Error(`${spec.name}: not a number`);
    return JSON.stringify(number);
  }
  return input.value === "" ? null : JSON.stringify(input.value);
}

// The JSON text of a generate request and the seed typed ("" when none: the server draws one).
function generateRequest() {
  const fields = [`"run":${JSON.stringify(currentRun().id)}`];
  for (const [spec, input] of controls) {
    const value = controlJSON(spec, input);
    if (value !== null) fields.push(`${JSON.stringify(spec.name)}:${value}`);
  }
  const seed = $("seed") ? $("seed").value.trim() : "";
  return [`{${fields.join(",")}}`, seed];
}

// A case-folded run's items shown with capitals: each word's first letter (copied as shown).
const shown = (item) => ($("capitalise").checked && currentRun().casefolded
  ? item.replace(/(^|[\s-])(\p{Ll})/gu, (_, before, letter) => before + letter.toLocaleUpperCase()) : item);

function showCapitals() {
  for (const e of document.querySelectorAll("#results .item")) e.textContent = shown(e.dataset.item);
}

function resultItem(r) {
  const li = document.createElement("li");
  li.className = "result";
  const item = Object.assign(document.createElement("span"), {className: "item", textContent: shown(r.item)});
  item.dataset.item = r.item;
  const nll = Object.assign(document.createElement("span"), {
    className: "nll", textContent: r.nll === null ? "∞" : r.nll.toFixed(3), title: "mean NLL per character",
  });
  li.append(item, nll);
  if (r.known !== false) {  // new items go unmarked: only those of the training data (or unknown) stand out
    li.classList.add(r.known ? "known" : "unknown");
    li.append(Object.assign(document.createElement("span"), {
      className: "mark " + (r.known ? "known" : "unknown"),
      textContent: r.known ? "in training data" : "?",
      title: r.known ? "this item is in the run's training data" : "the training data could not be read",
    }));
  }
  if (r.distance !== null) li.append(Object.assign(document.createElement("span"), {
    className: "distance", textContent: `distance ${r.distance}`,
  }));
  if (hooks.result) hooks.result(li, r);
  return li;
}

// Each press gets a new seed (the server draws it) unless one is typed; the latest press wins (an
// earlier answer is dropped).
let pressed = 0;
async function generate(event) {
  if (event) event.preventDefault();
  if (!runs.length) return;  // a studio with no trained run yet
  const press = ++pressed;
  $("generate-button").setAttribute("aria-busy", "true");
  showError("");  // what an earlier request said no longer holds
  $("warning").hidden = true;
  try {
    const [body, seed] = generateRequest();
    const [data, text] = await request("/api/generate", body);
    if (press !== pressed) return;
    const echoed = /"seed": ?([0-9]+)/.exec(text);  // its digits: a seed past 2**53 stays exact
    $("results").replaceChildren(...data.items.map(resultItem));
    $("shown-seed").textContent = echoed ? echoed[1] : seed;
    $("reuse-seed").hidden = false;
    $("warning").textContent = data.warning || "";
    $("warning").hidden = !data.warning;
    share(echoed ? echoed[1] : seed);
  } catch (err) {
    if (press !== pressed) return;
    $("results").replaceChildren();
    showError(err.message);
  } finally {
    if (press === pressed) $("generate-button").removeAttribute("aria-busy");
  }
}

// --- share: the generate request in the page's address -------------------------------------------
// A control's value as the address holds it: a check box "true"/"false", else what the box shows.
const controlValue = (input) => (input.type === "checkbox" ? String(input.checked) : input.value);

function setControlValue(input, value) {
  if (input.type === "checkbox") input.checked = value === "true";
  else input.value = value;
}

// After each generate, the address holds the run, each control changed from its start value and the
// seed the server used (so a link makes the same items); ?token= stays (the page's own access).
function share(seed) {
  const query = new URLSearchParams();
  const token = new URLSearchParams(location.search).get("token");
  if (token !== null) query.set("token", token);
  query.set("run", String(currentRun().id));
  for (const [spec, input] of controls) {
    const value = spec.name === "seed" ? seed : controlValue(input);
    if (value !== input.dataset.initial) query.set(spec.name, value);
  }
  history.replaceState(history.state, "", `${location.pathname}?${query}`);
}

// The run and the controls named in the address (a shared link): whether the address named a run.
function restoreFromURL() {
  const query = new URLSearchParams(location.search);
  const run = runs.find((r) => String(r.id) === query.get("run"));
  if (run) $("run-select").value = String(run.id);
  runChanged();  // the run's labels and limits first: a label named in the link is then one of them
  for (const [spec, input] of controls) {
    if (query.has(spec.name)) setControlValue(input, query.get(spec.name));
  }
  return run !== undefined;
}

async function copyAll() {
  const text = [...document.querySelectorAll("#results .item")].map((e) => e.textContent).join("\n") + "\n";
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {  // no clipboard API (a plain-http page in some browsers): the old way
    const area = Object.assign(document.createElement("textarea"), {value: text});
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  $("copy-all").textContent = "Copied";
  setTimeout(() => { $("copy-all").textContent = "Copy all"; }, 1200);
}

// --- score ------------------------------------------------------------------------------------
function cell(c) {
  const div = document.createElement("div");
  div.className = "cell";
  div.dataset.prob = String(c.prob);
  div.style.background = `hsl(${Math.round(120 * Math.sqrt(c.prob))}, 75%, 78%)`;  // red unlikely, green likely
  div.title = `context ${c.context}  →  ${c.char}: p = ${c.prob.toFixed(4)} (log p ${c.logprob === null ? "-∞" : c.logprob.toFixed(3)})`;
  div.append(Object.assign(document.createElement("span"), {className: "char", textContent: c.char}),
    Object.assign(document.createElement("span"), {className: "prob", textContent: c.prob.toFixed(3)}));
  return div;
}

async function score(event) {
  event.preventDefault();
  const body = {run: currentRun().id, text: $("score-input").value, label: $("score-label").value || null};
  showError("");
  try {
    const data = await api("/api/score", body);
    $("score-nll").textContent = data.nll === null ? "∞" : data.nll.toFixed(4);
    $("score-as").textContent = data.label ? `(as ${data.label})` : "";
    $("strip").replaceChildren(...data.chars.map(cell));
    $("classes").replaceChildren(...(data.classes || []).map((c) => Object.assign(document.createElement("li"), {
      className: "class", textContent: `${c.label} ${c.p.toFixed(4)}`,
    })));
  } catch (err) {
    $("strip").replaceChildren();
    $("classes").replaceChildren();
    $("score-nll").textContent = "";
    showError(err.message);
  }
}

// --- explore ----------------------------------------------------------------------------------
const count = (x) => x.toLocaleString("en");

// What the run learned from: a count model counted (no parameters, steps, batch or learning rate).
function training(info) {
  if (info.trains_by_gradient) {
    return [["parameters", count(info.parameters)],
      ["trained", `${count(info.step)} steps, batch ${info.train.batch_size}, lr ${info.train.lr}`]];
  }
  const counted = info.counted ? `${count(info.counted.examples)} next characters in ` +
    `${count(info.counted.contexts)} distinct contexts (the training split)` : `not available (${info.note})`;
  return [["counted", counted]];
}

function describe(info) {
  const nll = info.nll ? `dev ${fmt(info.nll.dev)}, test ${fmt(info.nll.test)}` : `not available (${info.note})`;
  const config = Object.entries(info.model_config).map(([k, v]) => `${k}=${v}`).join(", ");
  const rows = [
    ["model", `${info.model} (${config})`],
    ["vocabulary", `${info.vocab.length} characters: ${info.vocab}`],
    ...(info.labels.length ? [["labels", info.labels.join(", ")]] : []),
    ["data", `${info.data.input}: ${count(info.data.items)} items (train/dev/test ` +
      `${info.data.split_sizes.join("/")}), longest ${info.data.longest_item}`],
    ...training(info),
    ["NLL", nll],
  ];
  $("description").replaceChildren(...rows.flatMap(([k, v]) => [
    Object.assign(document.createElement("dt"), {textContent: k}),
    Object.assign(document.createElement("dd"), {textContent: v}),
  ]));
}
const fmt = (x) => (x === null || x === undefined ? "—" : x.toFixed(4));

function showPlot(kind, run) {
  const img = $(`${kind}-plot`);
  const note = $(`${kind}-note`);
  const url = `/api/plot/${kind}?run=${run}`;
  note.textContent = "";
  img.hidden = false;
  img.onerror = async () => {  // the server says why as JSON
    img.hidden = true;
    try { await api(url); } catch (err) { note.textContent = err.message; }
  };
  img.src = url;
}

async function explore() {
  const run = currentRun().id;
  showError("");
  try {
    describe(await api(`/api/info?run=${run}`));
  } catch (err) {
    showError(err.message);
  }
  showPlot("bigram", run);
  showPlot("loss", run);
}

// --- sample quality (in Explore) -----------------------------------------------------------------
// Its controls are built from GET /api/options too ("metrics": EvalConfig's declarations): [the entry,
// its element]; their ids are prefixed "metrics-" (the generate form has its own "seed").
let metricControls = [];

function buildMetricControls(specs) {
  metricControls = specs.map((spec) => {
    const input = controlElement(spec);
    input.id = `metrics-${controlId(spec.name)}`;
    return [spec, input];
  });
  $("metrics-controls").replaceChildren(...metricControls.map(([spec, input]) => {
    const label = Object.assign(document.createElement("label"), {className: "control", title: input.title});
    label.append(`${spec.label} `, input);
    return label;
  }));
}

// What GET /api/metrics answers, as rows: shares of the items, distances, their mean NLL.
const METRIC_ROWS = [
  ["unique", "unique", "share of the items that are distinct"],
  ["in_train", "in train", "share of the items that are training items"],
  ["in_dev", "in dev", "share of the items that are dev items"],
  ["in_test", "in test", "share of the items that are test items"],
  ["new", "new", "share of the items in none of the splits"],
  ["length_tv", "length TV", "total variation distance 0.5 Σ|p − q| between their lengths and the training items'"],
  ["char_tv", "character TV", "total variation distance between their characters and the training items'"],
  ["mean_nll", "mean NLL", "per character, item ends included, as the splits' NLL"],
];

// The latest press wins (an earlier answer is dropped), as for generate.
let measured = 0;
async function measure(event) {
  event.preventDefault();
  const press = ++measured;
  showError("");
  $("metrics").replaceChildren();
  $("metrics-button").setAttribute("aria-busy", "true");
  try {
    const query = [`run=${currentRun().id}`];
    for (const [spec, input] of metricControls) {
      const value = controlJSON(spec, input);
      if (value !== null) query.push(`${encodeURIComponent(spec.name)}=${encodeURIComponent(value)}`);
    }
    const m = await api(`/api/metrics?${query.join("&")}`);
    if (press !== measured) return;
    const rows = [["samples", `${count(m.num)} generated with seed ${m.seed}`, "temperature 1, no constraints"],
      ...METRIC_ROWS.map(([key, name, help]) => [name, fmt(m[key]), help])];
    $("metrics").replaceChildren(...rows.flatMap(([k, v, help]) => [
      Object.assign(document.createElement("dt"), {textContent: k, title: help}),
      Object.assign(document.createElement("dd"), {textContent: v, title: help}),
    ]));
  } catch (err) {
    if (press === measured) showError(err.message);
  } finally {
    if (press === measured) $("metrics-button").removeAttribute("aria-busy");
  }
}

// --- start ------------------------------------------------------------------------------------
function runChanged() {
  const run = currentRun();
  if (!run) return;
  controlsForRun(run);
  fillLabels($("score-label"), run.labels, "auto");
  $("capitalise-box").hidden = !run.casefolded;
  showCapitals();
  measured++;  // the metrics shown, or on their way, are another run's
  $("metrics").replaceChildren();
  $("metrics-button").removeAttribute("aria-busy");
  if (!$("view-explore").hidden) explore();
  if (hooks.runChanged) hooks.runChanged(run);
}

// The run select lists `served` (GET /api/runs's runs), keeping the chosen run when it is still there.
function listRuns(served) {
  const chosen = $("run-select").value;
  runs = served;
  $("run-select").replaceChildren(...runs.map((r) => new Option(
    `${r.name} (${r.model}${r.dev_loss === null ? "" : `, dev ${r.dev_loss.toFixed(3)}`})`, String(r.id))));
  if (runs.some((r) => String(r.id) === chosen)) $("run-select").value = chosen;
  if (!runs.length) $("results").replaceChildren();  // the studio's last run deleted: its items go too
  for (const id of ["generate-button", "score-button", "metrics-button", "download-generator"]) {
    $(id).disabled = runs.length === 0;
  }
}

// The runs asked again (the studio's change as they train, are renamed or deleted).
async function reloadRuns() {
  const before = $("run-select").value;
  listRuns((await api("/api/runs")).runs);
  if ($("run-select").value !== before) runChanged();
}

// The selected run as one HTML page that generates offline (makemore export --format html)
async function downloadGenerator() {
  const run = currentRun();
  const button = $("download-generator");
  button.disabled = true;
  try {
    const response = await fetch(`/api/export?run=${run.id}&format=html&weights=float16`);
    if (!response.ok) throw new Error((await response.json()).error);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = `${run.name}.html`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  } catch (err) {
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

async function start() {
  for (const view of VIEWS) $(`tab-${view}`).addEventListener("click", () => showView(view));
  $("generate-form").addEventListener("submit", generate);
  $("score-form").addEventListener("submit", score);
  $("metrics-form").addEventListener("submit", measure);
  $("copy-all").addEventListener("click", copyAll);
  $("download-generator").addEventListener("click", downloadGenerator);
  $("reuse-seed").addEventListener("click", () => {
    if ($("seed")) $("seed").value = $("shown-seed").textContent;
  });
  $("run-select").addEventListener("change", runChanged);
  $("capitalise").addEventListener("change", showCapitals);
  try {
    const [options, served] = await Promise.all([api("/api/options"), api("/api/runs")]);
    buildControls(options.generate);  // before the runs are listed: a listed run has its form
    buildMetricControls(options.metrics);
    if (hooks.ready) await hooks.ready;
    listRuns(served.runs);
  } catch (err) {
    showError(err.message);
    return;
  }
  restoreFromURL();
  generate();  // the page opens with items, not empty (those of a shared link's request)
}

start();
