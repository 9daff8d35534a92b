// makemore serve: the page. Plain JavaScript, no framework, no network but this server's JSON API.
"use strict";

const $ = (id) => document.getElementById(id);
let runs = [];

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error("the server cannot be reached (is makemore serve still running?)");
  }
  let data = null;
  try { data = await response.json(); } catch (err) { /* not JSON */ }
  if (!response.ok) throw new Error((data && data.error) || `HTTP ${response.status}`);
  return data;
}

function currentRun() { return runs[Number($("run-select").value)] || runs[0]; }

function fillLabels(select, labels, first) {
  select.replaceChildren(new Option(first, ""), ...labels.map((l) => new Option(l, l)));
  select.disabled = labels.length === 0;
}

// --- tabs -----------------------------------------------------------------------------------
const VIEWS = ["generate", "score", "explore"];
function showView(name) {
  for (const view of VIEWS) {
    $(`view-${view}`).hidden = view !== name;
    $(`tab-${view}`).setAttribute("aria-selected", String(view === name));
  }
  if (name === "explore") explore();
}

// --- generate ---------------------------------------------------------------------------------
const list = (text) => text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
const integer = (id) => Number.parseInt($(id).value || "0", 10);
const number = (id) => Number.parseFloat($(id).value);

function generateRequest() {
  const body = {
    run: currentRun().id, n: integer("n"), temperature: number("temperature"), top_k: integer("top-k"),
    top_p: number("top-p"), min_len: integer("min-len"), max_len: integer("max-len"),
    new_only: $("new-only").checked, unique: $("unique").checked,
  };
  if ($("seed").value !== "") body.seed = integer("seed");
  for (const [id, field] of [["prefix", "prefix"], ["suffix", "suffix"], ["exclude-chars", "exclude_chars"],
    ["regex", "regex"], ["similar-to", "similar_to"]]) {
    if ($(id).value) body[field] = $(id).value;
  }
  if (list($("contains").value).length) body.contains = list($("contains").value);
  if (list($("not-contains").value).length) body.not_contains = list($("not-contains").value);
  if ($("label").value) body.label = [$("label").value];
  return body;
}

function resultItem(r) {
  const li = document.createElement("li");
  li.className = "result";
  const item = Object.assign(document.createElement("span"), {className: "item", textContent: r.item});
  const nll = Object.assign(document.createElement("span"), {
    className: "nll", textContent: r.nll === null ? "∞" : r.nll.toFixed(3), title: "mean NLL per character",
  });
  const mark = Object.assign(document.createElement("span"), {
    className: "mark " + (r.known === null ? "unknown" : r.known ? "known" : "new"),
    textContent: r.known === null ? "?" : r.known ? "in training data" : "new",
  });
  li.append(item, nll, mark);
  if (r.distance !== null) li.append(Object.assign(document.createElement("span"), {
    className: "distance", textContent: `distance ${r.distance}`,
  }));
  return li;
}

async function generate(event) {
  event.preventDefault();
  const button = $("generate-button");
  button.disabled = true;
  showError("");  // what an earlier request said no longer holds
  $("warning").hidden = true;
  try {
    const data = await api("/api/generate", generateRequest());
    $("results").replaceChildren(...data.items.map(resultItem));
    $("shown-seed").textContent = String(data.seed);
    $("seed").value = String(data.seed);
    $("warning").textContent = data.warning || "";
    $("warning").hidden = !data.warning;
  } catch (err) {
    $("results").replaceChildren();
    showError(err.message);
  } finally {
    button.disabled = false;
  }
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
function describe(info) {
  const nll = info.nll ? `dev ${fmt(info.nll.dev)}, test ${fmt(info.nll.test)}` : `not available (${info.note})`;
  const config = Object.entries(info.model_config).map(([k, v]) => `${k}=${v}`).join(", ");
  const rows = [
    ["model", `${info.model} (${config})`], ["parameters", info.parameters.toLocaleString("en")],
    ["vocabulary", `${info.vocab.length} characters: ${info.vocab}`],
    ["data", `${info.data.input}: ${info.data.items.toLocaleString("en")} items (train/dev/test ` +
      `${info.data.split_sizes.join("/")}), longest ${info.data.longest_item}`],
    ["trained", `${info.step.toLocaleString("en")} steps, batch ${info.train.batch_size}, lr ${info.train.lr}`],
    ["NLL", nll],
  ];
  if (info.labels.length) rows.splice(3, 0, ["labels", info.labels.join(", ")]);
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

// --- start ------------------------------------------------------------------------------------
function runChanged() {
  const run = currentRun();
  fillLabels($("label"), run.labels, "any");
  fillLabels($("score-label"), run.labels, "auto");
  if (!$("view-explore").hidden) explore();
}

async function start() {
  for (const view of VIEWS) $(`tab-${view}`).addEventListener("click", () => showView(view));
  $("generate-form").addEventListener("submit", generate);
  $("score-form").addEventListener("submit", score);
  $("copy-all").addEventListener("click", copyAll);
  $("new-seed").addEventListener("click", () => {
    const seed = crypto.getRandomValues(new Uint32Array(1))[0];
    $("seed").value = String(seed);
    $("shown-seed").textContent = String(seed);
  });
  $("run-select").addEventListener("change", runChanged);
  try {
    runs = (await api("/api/runs")).runs;
  } catch (err) {
    showError(err.message);
    return;
  }
  $("run-select").replaceChildren(...runs.map((r) => new Option(
    `${r.name} (${r.model}${r.dev_loss === null ? "" : `, dev ${r.dev_loss.toFixed(3)}`})`, String(r.id))));
  runChanged();
}

start();
