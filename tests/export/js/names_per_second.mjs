// How fast a makemore module generates: node names_per_second.mjs MODULE.mjs [SECONDS]
// or the runtime alone on a bundle: node names_per_second.mjs BUNDLE.json [SECONDS] [--no-simd]
// Prints one JSON line:
//   load_ms: importing the module (decoding the weights, building the model);
//   runtime_*: the runtime alone (the module's `model`): rows of 256 started together, each next token
//     drawn from its probabilities with a fixed pseudo-random sequence, ended rows dropped with keep();
//   first20_ms, generate_names_per_s: the module's generate() (the sampler, no constraints).
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadRuntime } from "./load_runtime.mjs";

const [path, secondsArg, flag] = process.argv.slice(2);
const seconds = Number(secondsArg || 3);
let t0 = performance.now();
let mod;
if (path.endsWith(".json")) {
  const { makemoreLoad } = loadRuntime(fileURLToPath(new URL("../../../src/makemore/export/web/runtime.js", import.meta.url)));
  mod = { model: makemoreLoad(JSON.parse(readFileSync(path, "utf-8")), { simd: flag !== "--no-simd" }) };
} else {
  mod = await import(pathToFileURL(path).href);
}
const out = { engine: mod.model.engine, load_ms: performance.now() - t0 };

function runtimeLoop(m, maxLength = 50) {
  const V = m.vocabSize;
  let names = 0;
  let tokens = 0;
  let x = 12345;
  const rand = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    let rows = 256;
    let state = m.start(new Int32Array(rows));
    for (let t = 0; rows > 0; t++) {
      const lp = m.logProbs(state);
      const next = new Int32Array(rows);
      const going = [];
      for (let r = 0; r < rows; r++) {
        let u = rand();
        let v = 0;
        for (; v < m.numChars - 1; v++) {
          u -= Math.exp(lp[r * V + v]);
          if (u <= 0) break;
        }
        next[r] = t === maxLength ? 0 : v;
        tokens++;
        if (next[r] === 0) names++;
        else going.push(r);
      }
      if (going.length < rows && going.length) state = m.keep(state, Int32Array.from(going));
      rows = going.length;
      if (rows) state = m.push(state, Int32Array.from(going, (r) => next[r]));
    }
  }
  const s = (performance.now() - start) / 1000;
  return { runtime_names_per_s: names / s, runtime_tokens_per_s: tokens / s, runtime_mean_length: tokens / names - 1 };
}

Object.assign(out, runtimeLoop(mod.model));
if (!mod.generate) {
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}
t0 = performance.now();
mod.generate({ n: 20, seed: 1 });
out.first20_ms = performance.now() - t0;
let n = 0;
t0 = performance.now();
while (performance.now() - t0 < seconds * 1000) n += mod.generate({ n: 200, seed: n + 1 }).length;
out.generate_names_per_s = n / ((performance.now() - t0) / 1000);
process.stdout.write(JSON.stringify(out) + "\n");
