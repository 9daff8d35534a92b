// The test driver of sampler.js (tests/export/test_sampler_js.py): a small fake model that keeps runtime.js's
// contract (start / push / keep / logProbs over a fixed table), so the sampler is tested on its own.
//
// Reads one JSON object on stdin: {model: {labelled, casefold, maxLength, known: [items]}, requests: [...]},
// each request {op: "generate", options} | {op: "score", item, label} | {op: "table"} | {op: "hash", text};
// writes one JSON array: per request {ok: result} or {error: message}. A seed may be a string of digits.
//
// The fake model reads the last two tokens (so the sampler's keep() must carry each row's own history):
// log P(next | p2, p1) = log_softmax over next of the logits below, rounded to float32 as runtime.js's are.
// Vocabulary: the boundary, "a b c d e", a space, "é" (two UTF-8 bytes) and "𝔞" (two UTF-16 units);
// labelled: "hi" (items start with c, d, e, é or 𝔞) and "lo" (items start with a, b or c).
import {readFileSync} from "node:fs";

const CHARS = ["a", "b", "c", "d", "e", " ", "é", "𝔞"];
const LABELS = ["hi", "lo"];
const NO_START = {hi: ["a", "b", " "], lo: ["d", "e", " ", "é", "𝔞"]};  // characters a label never starts with

// FNV-1a 64 of the UTF-8 bytes, as runtime.js's makemoreHash64 (a stand-in: this file runs without it).
globalThis.makemoreHash64 = (text) => {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) h = BigInt.asUintN(64, (h ^ BigInt(byte)) * 0x100000001b3n);
  return h;
};

function logits(vocab, numChars, p2, p1) {
  return vocab.map((c, t) => {
    if (t >= numChars) return -3;  // a label token: the sampler must never draw it
    const label = p1 >= numChars ? LABELS[p1 - numChars] : null;
    if (label && NO_START[label].includes(c)) return -Infinity;
    if (t === 0) return p1 === 0 || p1 >= numChars ? -1 : 0.9 + 0.1 * p2;  // the end: items of a few characters
    if (c === "𝔞") return -2.5;
    return Math.sin(1.3 * t + 0.7 * p1 + 0.31 * p2 * t) + (t === p1 ? -0.8 : 0);
  });
}

function makeTable(vocab, numChars) {
  const V = vocab.length;
  const table = new Float32Array(V * V * V);  // [p2][p1][next]
  for (let p2 = 0; p2 < V; p2++) {
    for (let p1 = 0; p1 < V; p1++) {
      const x = logits(vocab, numChars, p2, p1);
      const top = Math.max(...x);
      const norm = top + Math.log(x.reduce((s, v) => s + Math.exp(v - top), 0));
      x.forEach((v, t) => { table[(p2 * V + p1) * V + t] = v - norm; });
    }
  }
  return table;
}

function fakeModel(spec) {
  const labels = spec.labelled ? LABELS : [];
  const vocab = ["", ...CHARS, ...labels.map((l) => `<${l}>`)];
  const numChars = CHARS.length + 1;
  const V = vocab.length;
  const table = makeTable(vocab, numChars);
  const hashes = [...new Set((spec.known || []).map(globalThis.makemoreHash64))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const bytes = new Uint8Array(8 * hashes.length);
  hashes.forEach((h, i) => new DataView(bytes.buffer).setBigUint64(8 * i, h, true));
  const rowsOf = (state) => state.p1.length;
  const check = (cond, what) => { if (!cond) throw new Error(`fake model: ${what}`); };
  const ints = (a, what) => check(a instanceof Int32Array, `${what} must be an Int32Array`);
  return {
    vocab, numChars, labels, vocabSize: V, maxLength: spec.maxLength ?? null, table,
    meta: {
      casefold: Boolean(spec.casefold), longest_item: 6, name: "fake", dev_nll: 1.5,
      known: spec.known === null ? null : btoa(String.fromCharCode(...bytes)), label_counts: {hi: 1, lo: 3},
    },
    start(starts) {
      ints(starts, "start tokens");
      check(starts.every((t) => t === 0 || (t >= numChars && t < V)), "a start token is 0 or a label's");
      return {p2: Int32Array.from(starts), p1: Int32Array.from(starts)};
    },
    push(state, tokens) {
      ints(tokens, "tokens");
      check(tokens.length === rowsOf(state), `push of ${tokens.length} tokens to ${rowsOf(state)} rows`);
      check(tokens.every((t) => t >= 0 && t < numChars), "only characters and the end are pushed");
      return {p2: state.p1, p1: Int32Array.from(tokens)};
    },
    keep(state, rows) {
      ints(rows, "rows");
      check(rows.every((r) => r >= 0 && r < rowsOf(state)), "keep of a row out of range");
      return {p2: rows.map((r) => state.p2[r]), p1: rows.map((r) => state.p1[r])};
    },
    logProbs(state) {
      const out = new Float32Array(rowsOf(state) * V);
      for (let b = 0; b < rowsOf(state); b++) {
        const at = (state.p2[b] * V + state.p1[b]) * V;
        out.set(table.subarray(at, at + V), b * V);
      }
      return out;
    },
  };
}

const here = new URL(".", import.meta.url);
const code = readFileSync(new URL("../../../src/makemore/export/web/sampler.js", here), "utf-8");
const {makemoreGenerate, makemoreScore} = new Function(`${code}\nreturn {makemoreGenerate, makemoreScore};`)();

const input = JSON.parse(readFileSync(0, "utf-8"));
const model = fakeModel(input.model || {});
const answer = (request) => {
  if (request.op === "generate") return makemoreGenerate(model, request.options);
  if (request.op === "score") return makemoreScore(model, request.item, request.label);
  if (request.op === "table") return {vocab: model.vocab, numChars: model.numChars, table: Array.from(model.table)};
  if (request.op === "hash") return globalThis.makemoreHash64(request.text).toString();
  throw new Error(`unknown op ${request.op}`);
};
const results = input.requests.map((request) => {
  try {
    return {ok: answer(request)};
  } catch (err) {
    return {error: err.message};
  }
});
// Infinity (an impossible item's score) as a string: JSON has no infinities
process.stdout.write(JSON.stringify(results, (k, v) => (v === Infinity ? "Infinity" : v)));
