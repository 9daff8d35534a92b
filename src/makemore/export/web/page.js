// makemore export: the offline page of one model. Plain JavaScript, no framework, no network: the model is the
// JSON in #makemore-bundle (runtime.js's makemoreLoad), the items come from sampler.js (makemoreGenerate,
// makemoreScore), and the generate form is built from #makemore-page's `generate` list: the same field
// descriptions makemore serve's GET /api/options gives (SampleConfig's declarations), so an option is declared
// once for the CLI, the server's page and this one.
//
// Test hook, window.makemore:
//   nextLogProbs(prefixes, label) -> Float32Array[]: per prefix (a string of the model's characters, read as it
//     is, after the label's start token or the boundary) the natural-log probabilities of each next token id
//     (model.vocab names the ids);
//   generate(options) -> makemoreGenerate's {items, stats, warning, seed}; options are the JSON API's fields;
//   score(item, label) -> the mean NLL per character, its end included (makemore score's number);
//   model: the loaded model; timings: {load_ms, first_ms, shown_at_ms}: reading the bundle and building the
//     model, generating the first list, and when it was shown (since the navigation started).
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const started = performance.now();
  let page;
  let model;
  try {
    page = JSON.parse($("makemore-page").textContent);
    model = makemoreLoad(JSON.parse($("makemore-bundle").textContent));
  } catch (err) {
    showError(`this page cannot load its model: ${err.message}`);
    return;
  }
  const timings = {load_ms: performance.now() - started, first_ms: null, shown_at_ms: null};
  window.makemore = {
    model,
    timings,
    nextLogProbs: (prefixes, label) => model.nextLogProbs(prefixes, label),
    generate: (options) => makemoreGenerate(model, options),
    score: (item, label) => makemoreScore(model, item, label),
  };

  function showError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  // --- the controls (as makemore serve's page builds them) ---------------------------------------------------
  // An entry: name (the JSON field), label, help, kind ("int" | "float" | "str" | "bool" | "list"), optional,
  // default (the page's), least, most (null: none), run_length (most is the model's length limit), max_length,
  // placeholder, choices, choices_from ("labels": the model's labels).
  const controlId = (name) => name.replace(/_/g, "-");  // n, top-k, min-len, new-only, similar-to, label ...
  const lengthLimit = model.maxLength === null ? page.length_limit : Math.min(page.length_limit, model.maxLength);
  let controls = [];

  function fillLabels(select, first) {
    select.replaceChildren(new Option(first, ""), ...model.labels.map((l) => new Option(l, l)));
  }

  function controlElement(spec) {
    let input;
    if (spec.choices_from === "labels") {
      input = document.createElement("select");
      fillLabels(input, "any");  // "any": the labels as often as in training
    } else if (spec.choices.length) {
      input = document.createElement("select");
      const blank = spec.optional || spec.default === "" || spec.default === null;
      input.replaceChildren(...(blank ? ["", ...spec.choices] : spec.choices)
        .map((c) => new Option(c === "" ? (spec.placeholder || "default") : c, c)));
      input.value = spec.default === null ? "" : String(spec.default);
    } else {
      input = document.createElement("input");
      if (spec.kind === "bool") {
        input.type = "checkbox";
        input.checked = spec.default === true;
      } else {
        if (spec.kind === "int" || spec.kind === "float") {
          input.type = "number";
          if (spec.least !== null) input.min = String(spec.least);
          const most = spec.run_length ? lengthLimit : spec.most;
          if (most !== null) input.max = String(most);
          input.step = spec.kind === "float" ? "any" : "1";
        } else if (spec.max_length !== null && spec.kind === "str") {
          input.maxLength = spec.max_length;
        }
        // a box with a placeholder starts empty: the placeholder says what empty (the default) is
        const start = spec.default === null || spec.placeholder ? "" : spec.default;
        input.value = Array.isArray(start) ? start.join(", ") : String(start);
        if (spec.placeholder) input.placeholder = spec.placeholder;
      }
    }
    input.id = controlId(spec.name);
    input.name = spec.name;
    input.title = spec.kind === "list" && input.tagName === "INPUT" ? `${spec.help} (comma-separated)` : spec.help;
    return input;
  }

  function buildControls(specs) {
    const grid = $("generate-controls");
    const checks = $("generate-checks");
    controls = specs.map((spec) => {
      const input = controlElement(spec);
      const label = Object.assign(document.createElement("label"), {className: "control", title: input.title});
      if (spec.kind === "bool" && input.tagName === "INPUT") {
        label.append(input, ` ${spec.label}`);
        checks.insertBefore(label, $("capitalise-box"));
      } else {
        label.append(`${spec.label} `, input);
        grid.insertBefore(label, checks);
      }
      label.hidden = spec.choices_from === "labels" && !model.labels.length;  // a model trained without labels
      return [spec, input];
    });
  }

  // One control's value for makemoreGenerate, or undefined: the default (an empty box, "any"). The limits of
  // the server's page hold here too (most, the length limit, max_length), so a list stays quick to make.
  const list = (text) => text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  function controlValue(spec, input) {
    const name = spec.name;
    if (spec.kind === "bool" && input.type === "checkbox") return input.checked;
    if (input.tagName === "SELECT") return input.value === "" ? undefined : spec.kind === "list" ? [input.value] : input.value;
    if (spec.kind === "list" || spec.kind === "str") {
      const values = spec.kind === "list" ? list(input.value) : [input.value];
      if (spec.max_length !== null && values.some((s) => Array.from(s).length > spec.max_length)) {
        throw new Error(`${name}: at most ${spec.max_length} characters`);
      }
      if (spec.kind === "list") return values.length ? values : undefined;
      return input.value === "" ? undefined : input.value;
    }
    if (input.validity && input.validity.badInput) throw new Error(`${name}: not a number`);
    const text = input.value.trim();
    if (text === "") return undefined;
    if (name === "seed" && /^[0-9]+$/.test(text)) return BigInt(text);  // exact past 2**53: up to 2**64 - 1
    const value = Number(text);
    if (!Number.isFinite(value)) throw new Error(`${name}: not a number`);
    const most = spec.run_length ? lengthLimit : spec.most;
    if (spec.kind === "int" && Number.isInteger(value) && most !== null && value > most) {
      throw new Error(`${name}: at most ${most} on this page, got ${value}`);
    }
    return value;
  }

  function generateOptions() {
    const options = {};
    for (const [spec, input] of controls) {
      const value = controlValue(spec, input);
      if (value !== undefined) options[spec.name] = value;
    }
    return options;
  }

  // --- results -------------------------------------------------------------------------------------------
  // A case-folded model's items shown with capitals: each word's first letter (copied as shown).
  const shown = (item) => ($("capitalise").checked && model.meta.casefold
    ? item.replace(/(^|[\s-])(\p{Ll})/gu, (_, before, letter) => before + letter.toLocaleUpperCase()) : item);

  function resultItem(r) {
    const li = Object.assign(document.createElement("li"), {className: "result"});
    const item = Object.assign(document.createElement("span"), {className: "item", textContent: shown(r.item)});
    item.dataset.item = r.item;
    const nll = Number.isFinite(r.nll) ? r.nll.toFixed(3) : "∞";
    li.append(item, Object.assign(document.createElement("span"), {className: "nll", textContent: nll,
      title: "mean NLL per character"}));
    if (r.label !== null && model.labels.length > 1) {
      li.append(Object.assign(document.createElement("span"), {className: "label", textContent: r.label}));
    }
    if (r.known !== false) {  // new items go unmarked: only those of the training data (or unknown) stand out
      li.classList.add(r.known ? "known" : "unknown");
      li.append(Object.assign(document.createElement("span"), {
        className: "mark " + (r.known ? "known" : "unknown"),
        textContent: r.known ? "in training data" : "?",
        title: r.known ? "this item is in the model's training data" : "this file does not carry the training data",
      }));
    }
    if (r.distance !== null) {
      li.append(Object.assign(document.createElement("span"), {className: "distance", textContent: `distance ${r.distance}`}));
    }
    return li;
  }

  function showCapitals() {
    for (const e of document.querySelectorAll("#results .item")) e.textContent = shown(e.dataset.item);
  }

  // Generates at once (the sampler is synchronous), after the busy button has been painted.
  function generate(event) {
    if (event) event.preventDefault();
    const button = $("generate-button");
    button.setAttribute("aria-busy", "true");
    showError("");
    $("warning").hidden = true;
    setTimeout(() => {
      try {
        const t0 = performance.now();
        const result = makemoreGenerate(model, generateOptions());
        const ms = performance.now() - t0;
        $("results").replaceChildren(...result.items.map(resultItem));
        if (timings.first_ms === null) Object.assign(timings, {first_ms: ms, shown_at_ms: performance.now()});
        $("shown-seed").textContent = String(result.seed);
        $("reuse-seed").hidden = false;
        $("timing").textContent = `${result.items.length} in ${Math.round(ms)} ms`;
        $("warning").textContent = result.warning || "";
        $("warning").hidden = !result.warning;
      } catch (err) {
        $("results").replaceChildren();
        showError(err.message);
      } finally {
        button.removeAttribute("aria-busy");
      }
    }, 0);
  }

  const itemsText = () => [...document.querySelectorAll("#results .item")].map((e) => e.textContent).join("\n") + "\n";

  async function copyAll() {
    const text = itemsText();
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {  // no clipboard API here: the old way
      const area = Object.assign(document.createElement("textarea"), {value: text});
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    $("copy-all").textContent = "Copied";
    setTimeout(() => { $("copy-all").textContent = "Copy all"; }, 1200);
  }

  // The items as a text file, one a line (a blob made here: nothing is fetched).
  function download() {
    const url = URL.createObjectURL(new Blob([itemsText()], {type: "text/plain;charset=utf-8"}));
    const link = Object.assign(document.createElement("a"), {href: url, download: `${page.name || "items"}.txt`});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // --- score ---------------------------------------------------------------------------------------------
  function score(event) {
    event.preventDefault();
    showError("");
    const label = $("score-label").value;
    try {
      const nll = makemoreScore(model, $("score-input").value, label || null);
      $("score-nll").textContent = Number.isFinite(nll) ? nll.toFixed(4) : "∞";
      $("score-as").textContent = label ? `(as ${label})` : model.labels.length ? "(under its most probable label)" : "";
    } catch (err) {
      $("score-nll").textContent = "";
      $("score-as").textContent = "";
      showError(err.message);
    }
  }

  // --- start ---------------------------------------------------------------------------------------------
  function start() {
    const info = [model.family || page.family, `${page.weights} weights`];
    if (typeof model.meta.dev_nll === "number") info.push(`dev NLL ${model.meta.dev_nll.toFixed(3)}`);
    if (model.labels.length) info.push(`labels ${model.labels.join(", ")}`);
    $("about").textContent = info.join(" · ");
    buildControls(page.generate);
    fillLabels($("score-label"), "auto");
    $("score-label").hidden = !model.labels.length;
    $("capitalise-box").hidden = !model.meta.casefold;
    $("generate-form").addEventListener("submit", generate);
    $("score-form").addEventListener("submit", score);
    $("copy-all").addEventListener("click", copyAll);
    $("download").addEventListener("click", download);
    $("capitalise").addEventListener("change", showCapitals);
    $("reuse-seed").addEventListener("click", () => {
      if ($("seed")) $("seed").value = $("shown-seed").textContent;
    });
    generate();  // the page opens with items, not empty
  }

  start();
})();
