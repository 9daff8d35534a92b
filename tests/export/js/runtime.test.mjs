// Unit tests of src/makemore/export/web/runtime.js alone, on hand-made bundles whose outputs are known
// exactly: node --test tests/export/js/ (the Python tests run it too: tests/export/test_runtime_js.py).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import test from "node:test";
import { loadRuntime } from "./load_runtime.mjs";

const RUNTIME = fileURLToPath(new URL("../../../src/makemore/export/web/runtime.js", import.meta.url));
const { makemoreLoad, makemoreHash64 } = loadRuntime(RUNTIME);

const b64 = (typed) => Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength).toString("base64");
const f32 = (shape, values) => ({ shape, dtype: "float32", data: b64(Float32Array.from(values)) });

function fnvReference(text) {  // FNV-1a 64 with BigInt arithmetic, byte by byte
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & ((1n << 64n) - 1n);
  return h;
}

function logSoftmax(row) {
  const max = Math.max(...row);
  const shift = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
  return row.map((x) => x - shift);
}

function bundle(graph, tensors, { chars = ["a", "b"], labels = [] } = {}) {
  return { format: "makemore-bundle", version: 1, family: "test", config: {}, weights: "float32", max_length: null,
    vocab: { chars, labels }, graph, tensors, meta: { casefold: false, known: null } };
}

// A bigram: logits = W[previous token], V = 3 (boundary, a, b).
const W = [0.5, -1, 2, 0, 0.25, -0.75, 3, 1, -2];
const bigram = (tensor) => bundle({ kind: "window", block_size: 1, layers: [{ op: "embed", weight: "W" }] }, { W: tensor });

test("makemoreHash64 is FNV-1a 64 of the UTF-8 bytes", () => {
  assert.equal(makemoreHash64(""), 0xcbf29ce484222325n);  // the published test vectors
  assert.equal(makemoreHash64("a"), 0xaf63dc4c8601ec8cn);
  assert.equal(makemoreHash64("foobar"), 0x85944171f73967e8n);
  for (const text of ["é", "ab-é c", "😀x", "x".repeat(300)]) assert.equal(makemoreHash64(text), fnvReference(text));
});

test("a window model's log-probabilities are log_softmax of the row of its context", () => {
  for (const simd of [true, false]) {
    const model = makemoreLoad(bigram(f32([3, 3], W)), { simd });
    assert.deepEqual([model.vocabSize, model.numChars, model.maxLength], [3, 3, null]);
    assert.deepEqual(model.vocab, ["", "a", "b"]);
    let state = model.start(Int32Array.of(0, 0));
    state = model.push(state, Int32Array.of(1, 2));  // rows read "a" and "b"
    const lp = model.logProbs(state);
    const expect = [...logSoftmax(W.slice(3, 6)), ...logSoftmax(W.slice(6, 9))];
    expect.forEach((v, i) => assert.ok(Math.abs(lp[i] - v) < 1e-6, `${i}: ${lp[i]} vs ${v}`));
    state = model.keep(state, Int32Array.of(1));  // only the row that read "b"
    assert.deepEqual(Array.from(model.logProbs(state)), Array.from(lp.slice(3, 6)));
  }
});

test("float16 and int8 tensors decode to the exact values they store", () => {
  // the float16 bits of W (every value exact in float16): the same model as float32
  const halves = Uint16Array.from([0x3800, 0xbc00, 0x4000, 0x0000, 0x3400, 0xba00, 0x4200, 0x3c00, 0xc000]);
  const m16 = makemoreLoad(bigram({ shape: [3, 3], dtype: "float16", data: b64(halves) }));
  const m32 = makemoreLoad(bigram(f32([3, 3], W)));
  const s = [m16, m32].map((m) => m.logProbs(m.push(m.start(Int32Array.of(0, 0, 0)), Int32Array.of(0, 1, 2))));
  assert.deepEqual(Array.from(s[0]), Array.from(s[1]));
  // int8: row r is q[r] * scale[r]
  const q = Int8Array.from([127, -2, 0, 0, 0, 0, -127, 64, 1]);
  const scale = Float32Array.from([0.5, 0, 0.125]);
  const m8 = makemoreLoad(bigram({ shape: [3, 3], dtype: "int8", data: b64(q), scale: b64(scale) }));
  const lp = m8.logProbs(m8.start(Int32Array.of(0, 1, 2)));
  const rows = [[63.5, -1, 0], [0, 0, 0], [-15.875, 8, 0.125]].flatMap(logSoftmax);
  rows.forEach((v, i) => assert.ok(Math.abs(lp[i] - v) < 1e-5, `${i}: ${lp[i]} vs ${v}`));
});

test("the WebAssembly and JavaScript matrix products agree on sizes that need padding", () => {
  // embed (V=3, E=3) -> flatten 2 -> linear (3 outputs from 6) over a window of 2
  const rnd = (n, seed) => Array.from({ length: n }, (_, i) => Math.sin(seed * 100 + i * 7.3));
  const graph = { kind: "window", block_size: 2, layers: [
    { op: "embed", weight: "E" }, { op: "flatten", n: 2 }, { op: "tanh" }, { op: "linear", weight: "L", bias: "b" }] };
  const b = bundle(graph, { E: f32([3, 3], rnd(9, 1)), L: f32([3, 6], rnd(18, 2)), b: f32([3], rnd(3, 3)) });
  const [fast, plain] = [true, false].map((simd) => makemoreLoad(b, { simd }));
  assert.equal(plain.engine, "js");
  const prefixes = ["", "a", "ab", "ba", "bb", "aab", "b", "abab", "bbba"];
  const x = fast.nextLogProbs(prefixes);
  const y = plain.nextLogProbs(prefixes);
  x.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - y[i][j]) < 1e-5)));
  // the window is the last two tokens, 0-padded at the start: "ab" and "aab" read the same context
  assert.deepEqual(Array.from(x[2]), Array.from(x[5]));
  assert.notDeepEqual(Array.from(x[1]), Array.from(x[2]));
});

test("a count model's table is read by the context as a number in base V", () => {
  // order 3, V = 3: row id = 3 * older + newer
  const table = Array.from({ length: 27 }, (_, i) => Math.log(1 + ((i * 5) % 7)));
  const graph = { kind: "window", block_size: 2, layers: [{ op: "table", weight: "table" }] };
  const model = makemoreLoad(bundle(graph, { table: f32([9, 3], table) }));
  const [empty, a, ba] = model.nextLogProbs(["", "a", "ba"]);
  const row = (id) => logSoftmax(table.slice(3 * id, 3 * id + 3));
  [[empty, 0], [a, 1], [ba, 3 * 2 + 1]].forEach(([got, id]) =>
    row(id).forEach((v, j) => assert.ok(Math.abs(got[j] - v) < 1e-6)));
});

test("labels start items with their token; bad input is an Error naming it", () => {
  const V = 5;  // boundary, a, b, <hi>, <lo>
  const E = Array.from({ length: V * V }, (_, i) => (i % 7) / 3);
  const model = makemoreLoad(bundle({ kind: "window", block_size: 1, layers: [{ op: "embed", weight: "W" }] },
    { W: f32([V, V], E) }, { labels: ["hi", "lo"] }));
  assert.deepEqual(model.labels, ["hi", "lo"]);
  assert.deepEqual(model.vocab, ["", "a", "b", "<hi>", "<lo>"]);
  const [lo] = model.nextLogProbs([""], "lo");
  assert.deepEqual(Array.from(lo), Array.from(model.logProbs(model.start(Int32Array.of(4)))));
  assert.throws(() => model.nextLogProbs(["x"]), /character "x" is not in the model's vocabulary/);
  assert.throws(() => model.nextLogProbs([""], "mid"), /unknown label "mid"/);
  assert.throws(() => model.push(model.start(Int32Array.of(0)), Int32Array.of(9)), /token 9/);
  assert.throws(() => makemoreLoad({ format: "other" }), /not a makemore bundle/);
  assert.throws(() => makemoreLoad({ ...bundle({}, {}), version: 2 }), /version 2/);
});
