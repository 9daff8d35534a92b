// The exports of a module written by `makemore export RUN -o FILE.mjs` (src/makemore/export/js.py):
//   MAKEMORE_TEST_MODULE=names.mjs node --test tests/export/js/module.test.mjs
// (tests/export/test_runtime_js.py writes a module of a small trained run and runs this.)
// Skipped when MAKEMORE_TEST_MODULE is not set.
import assert from "node:assert/strict";
import test from "node:test";
import { pathToFileURL } from "node:url";

const path = process.env.MAKEMORE_TEST_MODULE;
const mod = path ? await import(pathToFileURL(path).href) : null;
const opts = { skip: path ? false : "MAKEMORE_TEST_MODULE is not set" };

test("generate returns the asked number of strings of the model's characters, the same for a seed", opts, () => {
  const items = mod.generate({ n: 12, seed: 7 });
  assert.ok(Array.isArray(items));
  assert.equal(items.length, 12);
  const chars = new Set(mod.info.chars);
  for (const item of items) {
    assert.equal(typeof item, "string");
    assert.ok(Array.from(item).every((c) => chars.has(c)), item);
    if (mod.info.maxLength !== null) assert.ok(Array.from(item).length <= mod.info.maxLength);
  }
  assert.deepEqual(mod.generate({ n: 12, seed: 7 }), items);
  assert.deepEqual(mod.generate({ n: 12, seed: 7 }), mod.default.generate({ n: 12, seed: 7 }));
});

test("generate keeps the constraints it is given", opts, () => {
  const last = mod.info.chars[mod.info.chars.length - 1];
  const items = mod.generate({ n: 5, seed: 3, prefix: mod.info.chars[0], suffix: last, max_len: 6 });
  for (const item of items) {
    assert.ok(item.startsWith(mod.info.chars[0]) && item.endsWith(last) && Array.from(item).length <= 6, item);
  }
  assert.throws(() => mod.generate({ n: -1 }), /^Error: n: /);
});

test("generateDetailed gives each item's score, label and whether it is known", opts, () => {
  const result = mod.generateDetailed({ n: 4, seed: 1 });
  assert.deepEqual(result.items.map((r) => r.item), mod.generate({ n: 4, seed: 1 }));
  for (const r of result.items) {
    assert.ok(Number.isFinite(r.nll) && r.nll > 0);
    assert.equal(typeof r.known, "boolean");
    assert.ok(mod.info.labels.length ? mod.info.labels.includes(r.label) : r.label == null);
    const label = mod.info.labels.length ? r.label : undefined;
    if (!mod.info.labels.length) assert.ok(Math.abs(mod.score(r.item, label) - r.nll) < 1e-9);
  }
  assert.equal(typeof result.stats, "object");
});

test("score is the mean NLL per character, its end included", opts, () => {
  const item = mod.generate({ n: 1, seed: 5 })[0];
  const label = mod.info.labels[0];
  const tokens = [...Array.from(item).map((c) => mod.info.vocab.indexOf(c)), 0];
  const prefixes = tokens.map((_, i) => Array.from(item).slice(0, i).join(""));
  const rows = mod.nextLogProbs(prefixes, label);
  const nll = -rows.reduce((s, row, i) => s + row[tokens[i]], 0) / tokens.length;
  assert.ok(Math.abs(mod.score(item, label) - nll) < 1e-5, `${mod.score(item, label)} vs ${nll}`);
});

test("info describes the model; nextLogProbs rows are distributions over info.vocab", opts, () => {
  for (const key of ["name", "family", "weights", "labels", "chars", "vocab", "maxLength", "casefold", "devNll"]) {
    assert.ok(key in mod.info, key);
  }
  const rows = mod.nextLogProbs(["", mod.info.chars[0]]);
  assert.equal(rows.length, 2);
  for (const row of rows) {
    assert.equal(row.length, mod.info.vocab.length);
    const total = row.reduce((s, v) => s + Math.exp(v), 0);
    assert.ok(Math.abs(total - 1) < 1e-5, String(total));
  }
});
