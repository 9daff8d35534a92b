// Prints next-token log-probabilities for the parity tests in Python.
// Usage: node next_log_probs.mjs REQUEST.json, where REQUEST.json is
//   {"module": "names.mjs", "prefixes": ["", "a", ...], "label": "LABEL" or null}: the module's nextLogProbs;
//   or {"runtime": "runtime.js", "bundle": "bundle.json", "simd": false, ...}: runtime.js loaded alone
//   (makemoreLoad(bundle, {simd})), its model's nextLogProbs.
// stdout: {"rows": n, "vocab": V, "engine": "wasm-simd" | "js", "data": base64 of the n * V float32 values}
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { loadRuntime } from "./load_runtime.mjs";

const request = JSON.parse(readFileSync(process.argv[2], "utf-8"));
let model;
if (request.module) {
  model = (await import(pathToFileURL(request.module).href)).model;
} else {
  const { makemoreLoad } = loadRuntime(request.runtime);
  model = makemoreLoad(JSON.parse(readFileSync(request.bundle, "utf-8")), { simd: request.simd !== false });
}
const rows = model.nextLogProbs(request.prefixes, request.label ?? undefined);
const V = model.vocabSize;
const all = new Float32Array(rows.length * V);
rows.forEach((row, i) => {
  if (!(row instanceof Float32Array) || row.length !== V) throw new Error(`row ${i} is not ${V} float32 values`);
  all.set(row, i * V);
});
const data = Buffer.from(all.buffer).toString("base64");
process.stdout.write(JSON.stringify({ rows: rows.length, vocab: V, engine: model.engine, data }));
