// makemore's sampler in JavaScript: makemoreGenerate(model, options) and makemoreScore(model, item, label)
// over a model loaded by runtime.js (makemoreLoad: start / push / keep / logProbs, see the contract in
// src/makemore/export/web/). Plain JavaScript for Chromium and Node 20: no import or export, and no global
// but those two functions (the rest lives in the closure below). It mirrors src/makemore/generate/:
//  - excluded characters (and one-character not_contains) are masked out of every draw, the prefix is read
//    before anything is drawn, the end is masked below min_len (and before the first character) and forced
//    at max_len: these hold by construction;
//  - suffix, contains, longer not_contains and regex are checked on finished items and the others dropped
//    (rejection), within the server's budget: MAX_TRIES rows and TIME_LIMIT_S seconds, then a warning with
//    the items found; a request no item can meet is refused before anything is drawn (an Error whose
//    message is one line naming the field, as the JSON API's 400s), one that no draw meets stops early
//    (the rule of three, constraints.Rules.hopeless);
//  - new_only looks each item's FNV-1a 64 hash (makemoreHash64, runtime.js) up in meta.known, the sorted
//    little-endian uint64 hashes of the training items; unique drops repeats;
//  - each item's nll is its mean NLL per character, its end included (as `makemore score`); with labels,
//    under the mixture of the labels it was drawn from (sum over l of P(l) P(item | l), as the server).
// Differences from Python: regex is JavaScript's RegExp (re.search's meaning: anywhere unless anchored;
// a leading "(?i)" becomes the i flag) and is not interrupted by the time limit.
// Random numbers: xoshiro128** (Blackman and Vigna, 2018) on 32-bit integer operations, its state filled
// by splitmix64 from the 64-bit seed, so a seed gives the same items in every engine that gives the same
// log-probabilities; doubles of 53 random bits pick each token from its cumulative probabilities.
const [makemoreGenerate, makemoreScore] = (() => {
  const FIELDS = [
    "n", "seed", "temperature", "top_k", "top_p", "prefix", "suffix", "contains", "not_contains",
    "exclude_chars", "regex", "min_len", "max_len", "label", "new_only", "unique", "similar_to", "pool",
  ];
  const MAX_ITEMS = 1000000;  // generate.config.MAX_ITEMS
  const POOL_PER_ITEM = 10;  // similar_to: items generated per item returned
  const MAX_TRIES = 100000;  // rows one request draws, at most (the server's)
  const TIME_LIMIT_S = 5;  // seconds one request spends, at most (the server's)
  const GIVE_UP_BATCHES = 20;  // batches in a row whose items unique/new_only all drop
  const BATCH = 256;  // rows drawn together, at most
  const MIN_ROWS = 8;  // rows of a batch that may drop items, at least
  const COMPACT = 0.25;  // rows that ended are dropped from the model's batch once this fraction ended
  const MASK64 = (1n << 64n) - 1n;
  const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

  // --- errors and checks ---------------------------------------------------------------------------
  const fail = (field, problem) => { throw new Error(`${field}: ${problem}`); };
  // A value as Python's repr shows it in the messages of the JSON API ('abc', 12, true -> True ...).
  function repr(value) {
    if (typeof value === "string") return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
    if (value === true || value === false) return value ? "True" : "False";
    if (value === null || value === undefined) return "None";
    if (Array.isArray(value)) return `[${value.map(repr).join(", ")}]`;
    if (typeof value === "bigint") return value.toString();
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  const isInt = (v) => typeof v === "number" && Number.isInteger(v);
  const chars = (text) => Array.from(text);  // code points: what Python's len() counts

  function intField(o, name, least, note = "") {
    if (!isInt(o[name]) || o[name] < least) fail(name, `must be an integer at least ${least}${note}, got ${repr(o[name])}`);
  }
  function numberField(o, name, bounds, text) {
    const v = o[name];
    if (typeof v !== "number" || !Number.isFinite(v) || !bounds(v)) fail(name, `must be a finite number ${text}, got ${repr(v)}`);
  }
  function stringField(o, name) {
    if (typeof o[name] !== "string") fail(name, `must be a string, got ${repr(o[name])}`);
  }
  function listField(o, name) {
    const v = o[name];
    if (!Array.isArray(v)) fail(name, `must be a list of strings, got ${repr(v)}`);
    if (!v.every((s) => typeof s === "string" && s.length > 0)) fail(name, `must be non-empty strings, got ${repr(v)}`);
  }
  function noLineBreak(name, texts) {
    if (texts.some((s) => /[\n\r]/.test(s))) fail(name, "items never contain a line break");
  }

  // The seed as a BigInt from 0 to 2**64 - 1 (a number, a BigInt or a string of digits); none: a random one.
  function checkSeed(value) {
    if (value === undefined) {
      const word = new Uint32Array(1);
      if (globalThis.crypto && globalThis.crypto.getRandomValues) globalThis.crypto.getRandomValues(word);
      else word[0] = Math.floor(Math.random() * 4294967296);
      return BigInt(word[0]);
    }
    let seed = null;
    if (typeof value === "bigint") seed = value;
    else if (isInt(value) && Number.isSafeInteger(value)) seed = BigInt(value);
    else if (typeof value === "string" && /^[0-9]{1,20}$/.test(value)) seed = BigInt(value);
    if (seed === null || seed < 0n || seed > MASK64) fail("seed", `must be an integer from 0 to 2**64 - 1, got ${repr(value)}`);
    return seed;
  }

  // "elf" -> ["elf", 1]; "elf=0.7" -> ["elf", 0.7]; "a=b" -> ["a=b", 1] (what follows = is not a number).
  function parseLabel(spec) {
    const at = spec.lastIndexOf("=");
    let name = spec;
    let weight = 1;
    if (at >= 0) {
      const text = spec.slice(at + 1).trim().replace(/_/g, "");
      if (/^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf(inity)?|nan)$/i.test(text)) {
        name = spec.slice(0, at);
        const word = text.replace(/^[+-]/, "").toLowerCase();
        weight = word.startsWith("inf") ? (text[0] === "-" ? -Infinity : Infinity) : word === "nan" ? NaN : Number(text);
      }
    }
    if (!name.trim()) fail("label", `${repr(spec)}: empty label (give LABEL or LABEL=WEIGHT)`);
    if (!(Number.isFinite(weight) && weight > 0)) fail("label", `${repr(spec)}: the weight must be a positive number`);
    return [name, weight];
  }

  // The options of one request, checked and with their defaults (null: the default, as the JSON API).
  function readOptions(options) {
    if (options === undefined || options === null) options = {};
    if (typeof options !== "object" || Array.isArray(options)) throw new Error(`options: must be an object, got ${repr(options)}`);
    for (const name of Object.keys(options)) {
      if (!FIELDS.includes(name)) fail(name, `unknown field (fields: ${FIELDS.join(", ")})`);
    }
    const o = {
      n: 20, temperature: 1, top_k: 0, top_p: 1, prefix: "", suffix: "", contains: [], not_contains: [],
      exclude_chars: "", regex: "", min_len: 0, max_len: null, label: [], new_only: false, unique: false,
      similar_to: "", pool: 0,
    };
    for (const [name, value] of Object.entries(options)) if (value !== null && value !== undefined) o[name] = value;
    intField(o, "n", 0);
    if (o.n > MAX_ITEMS) fail("n", `at most ${MAX_ITEMS.toLocaleString("en")} items at a time, got ${o.n}`);
    o.seed = checkSeed(options.seed === null ? undefined : options.seed);
    numberField(o, "temperature", (v) => v >= 0, ">= 0");
    intField(o, "top_k", 0, " (0 = all)");
    numberField(o, "top_p", (v) => v > 0 && v <= 1, "> 0 and <= 1");
    intField(o, "min_len", 0);
    if (o.max_len !== null) intField(o, "max_len", 1, " (leave it out for the model's limit)");
    if (o.max_len !== null && o.min_len > o.max_len) fail("min_len", `${o.min_len} is more than max_len ${o.max_len}`);
    for (const name of ["new_only", "unique"]) {
      if (typeof o[name] !== "boolean") fail(name, `must be true or false, got ${repr(o[name])}`);
    }
    for (const name of ["prefix", "suffix", "exclude_chars", "regex", "similar_to"]) stringField(o, name);
    for (const name of ["contains", "not_contains"]) listField(o, name);
    noLineBreak("suffix", [o.suffix]);
    noLineBreak("similar_to", [o.similar_to]);
    noLineBreak("contains", o.contains);
    noLineBreak("not_contains", o.not_contains);
    if (typeof o.label === "string") o.label = [o.label];
    if (!Array.isArray(o.label) || !o.label.every((s) => typeof s === "string")) {
      fail("label", `must be label names (LABEL or LABEL=WEIGHT), got ${repr(o.label)}`);
    }
    o.labelSpecs = o.label.map(parseLabel);
    intField(o, "pool", 0, " (0 = 10 per item asked)");
    if (o.pool && !o.similar_to) fail("pool", "is the pool similar_to picks from; give similar_to too");
    if (o.pool > MAX_ITEMS || (o.pool && o.pool < o.n)) {
      fail("pool", `must be from n (${o.n}) to ${MAX_ITEMS}, got ${o.pool}`);
    }
    return o;
  }

  // A case-folded model reads what is typed in lower case (sampling.folded).
  function folded(model, o) {
    if (!(model.meta && model.meta.casefold)) return o;
    const fold = (s) => s.toLowerCase();
    const regex = o.regex && !o.regex.startsWith("(?i)") ? `(?i)${o.regex}` : o.regex;
    return {
      ...o, prefix: fold(o.prefix), suffix: fold(o.suffix), contains: o.contains.map(fold),
      not_contains: o.not_contains.map(fold), exclude_chars: fold(o.exclude_chars), similar_to: fold(o.similar_to), regex,
    };
  }

  // Python's re.search in JavaScript: a leading (?i) is the i flag; Unicode mode where the pattern allows it.
  function compileRegex(pattern) {
    if (!pattern) return null;
    const ignoreCase = pattern.startsWith("(?i)");
    const body = ignoreCase ? pattern.slice(4) : pattern;
    for (const flags of ["u", ""]) {
      try {
        return new RegExp(body, flags + (ignoreCase ? "i" : ""));
      } catch (err) {
        if (flags === "") fail("regex", `not a valid regular expression (${String(err.message).split("\n")[0]})`);
      }
    }
    return null;
  }

  // --- the model's vocabulary --------------------------------------------------------------------------
  const codes = new WeakMap();  // model -> Map(character -> token id)
  function charIds(model) {
    if (!codes.has(model)) {
      const map = new Map();
      for (let id = 1; id < model.numChars; id++) map.set(model.vocab[id], id);
      codes.set(model, map);
    }
    return codes.get(model);
  }
  // The ids of `text`'s characters; an error naming `field` at the first one the model never saw.
  function encode(model, text, field) {
    const map = charIds(model);
    return chars(text).map((c) => {
      const id = map.get(c);
      if (id === undefined) {
        const hex = c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
        fail(field, `character ${repr(c)} (U+${hex}) in ${repr(chars(text).slice(0, 40).join(""))} is not in the model's vocabulary`);
      }
      return id;
    });
  }
  const decode = (model, ids) => ids.map((id) => model.vocab[id]).join("");

  // The probability of each label (model.labels order): the weights asked, else the training prior.
  function labelMix(model, specs) {
    const labels = model.labels || [];
    if (!labels.length) {
      if (specs.length) fail("label", "this model was trained without labels");
      return new Float64Array(0);
    }
    const weights = new Float64Array(labels.length);
    for (const [name, weight] of specs) {
      const i = labels.indexOf(name);
      if (i < 0) fail("label", `unknown label ${repr(name)} (labels: ${labels.join(", ")})`);
      weights[i] += weight;
    }
    if (!specs.length) {
      const counts = (model.meta && model.meta.label_counts) || {};
      labels.forEach((name, i) => { weights[i] = Number(counts[name]) || 0; });
      if (!(weights.reduce((a, b) => a + b, 0) > 0)) weights.fill(1);  // no counts: the labels alike
    }
    const total = weights.reduce((a, b) => a + b, 0);
    return weights.map((w) => w / total);
  }

  // --- "new only": the training items' hashes --------------------------------------------------------
  const knownSets = new WeakMap();  // model -> BigUint64Array (sorted), or null: not carried
  function knownHashes(model) {
    if (!knownSets.has(model)) {
      const text = model.meta ? model.meta.known : null;
      let hashes = null;
      if (typeof text === "string") {  // (read once: tens of thousands of hashes take a few ms)
        const raw = atob(text);
        const bytes = new Uint8Array(raw.length - (raw.length % 8));
        for (let i = 0; i < bytes.length; i++) bytes[i] = raw.charCodeAt(i);
        if (LITTLE_ENDIAN) {
          hashes = new BigUint64Array(bytes.buffer);
        } else {
          const view = new DataView(bytes.buffer);
          hashes = new BigUint64Array(bytes.length >> 3);
          for (let i = 0; i < hashes.length; i++) hashes[i] = view.getBigUint64(8 * i, true);
        }
      }
      knownSets.set(model, hashes);
    }
    return knownSets.get(model);
  }
  function isKnown(hashes, item) {
    const h = BigInt.asUintN(64, makemoreHash64(item));
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {  // the first hash >= h
      const mid = (lo + hi) >> 1;
      if (hashes[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    return lo < hashes.length && hashes[lo] === h;
  }

  // --- random numbers: xoshiro128**, seeded by splitmix64 ------------------------------------------------
  const rotl = (x, k) => (x << k) | (x >>> (32 - k));
  function makeRng(seed) {
    const s = new Uint32Array(4);
    let z = seed;
    for (let i = 0; i < 2; i++) {  // two splitmix64 outputs fill the 128-bit state
      z = (z + 0x9e3779b97f4a7c15n) & MASK64;
      let x = z;
      x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
      x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & MASK64;
      x ^= x >> 31n;
      s[2 * i] = Number(x & 0xffffffffn);
      s[2 * i + 1] = Number(x >> 32n);
    }
    if (!(s[0] | s[1] | s[2] | s[3])) s[0] = 1;  // the one state xoshiro cannot leave
    const next = () => {
      const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
      const t = s[1] << 9;
      s[2] ^= s[0];
      s[3] ^= s[1];
      s[1] ^= s[2];
      s[0] ^= s[3];
      s[2] ^= t;
      s[3] = rotl(s[3], 11);
      return result;
    };
    // A double in [0, 1) with 53 random bits.
    const uniform = () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
    return {next, uniform};
  }

  // An index drawn with probability proportional to weights[i] (the last one with a weight: rounding).
  function pick(weights, total, rng) {
    let u = rng.uniform() * total;
    let last = 0;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i] > 0) {
        last = i;
        u -= weights[i];
        if (u < 0) return i;
      }
    }
    return last;
  }

  // --- one token: mask, temperature, top-k, top-p, draw (generation.filter_logits, constraints.mask_logits)
  function drawToken(row, endAllowed, plan, rng, work) {
    const V = row.length;
    const {x, w} = work;
    const banned = plan.banned;
    let best = -Infinity;
    for (let i = 0; i < V; i++) {
      x[i] = banned[i] || (i === 0 && !endAllowed) ? -Infinity : row[i];
      if (x[i] > best) best = x[i];
    }
    if (best === -Infinity) {  // nothing allowed has any probability: uniform among the allowed
      for (let i = 0; i < V; i++) x[i] = banned[i] || (i === 0 && !endAllowed) ? -Infinity : 0;
      best = 0;
    }
    if (plan.temperature === 0) {  // greedy: the most likely tokens (ties drawn alike)
      for (let i = 0; i < V; i++) x[i] = x[i] === best ? 0 : -Infinity;
    } else {
      for (let i = 0; i < V; i++) x[i] = (x[i] - best) / plan.temperature;  // the best: 0, never NaN
      if (plan.top_k > 0 && plan.top_k < V) {
        const kth = Float64Array.from(x).sort()[V - plan.top_k];
        for (let i = 0; i < V; i++) if (x[i] < kth) x[i] = -Infinity;
      }
      if (plan.top_p < 1) nucleus(x, plan.top_p);
    }
    let total = 0;
    for (let i = 0; i < V; i++) {
      w[i] = x[i] === -Infinity ? 0 : Math.exp(x[i]);
      total += w[i];
    }
    return pick(w, total, rng);
  }

  // top-p: keep the most likely tokens until their probability reaches p (the first one always).
  function nucleus(x, p) {
    const order = Array.from(x.keys()).sort((a, b) => x[b] - x[a] || a - b);
    let total = 0;
    for (const i of order) total += Math.exp(x[i]);
    let before = 0;
    order.forEach((i, rank) => {
      const prob = Math.exp(x[i]) / total;
      if (rank > 0 && before >= p) x[i] = -Infinity;  // the mass before this token is already enough
      before += prob;
    });
  }

  // --- a batch of rows --------------------------------------------------------------------------------
  // Generates `rows` items (generation.generate_tokens): each row's start token, then the prefix, then
  // drawn tokens until the end; returns {ids: per row the character ids, logp: log P(item | start)}.
  function drawRows(model, plan, rng, starts) {
    const V = model.vocabSize;
    const rows = starts.length;
    const ids = Array.from({length: rows}, () => plan.prefixIds.slice());
    const logp = new Float64Array(rows);
    let state = model.start(starts);
    let rowOf = Int32Array.from(ids.keys());  // the output row of each row of the model's batch
    for (const id of plan.prefixIds) {
      const lp = model.logProbs(state);  // (rows, V)
      for (let b = 0; b < rows; b++) logp[b] += lp[b * V + id];
      state = model.push(state, new Int32Array(rows).fill(id));
    }
    let live = new Uint8Array(rows).fill(1);
    let growing = rows;
    const work = {x: new Float64Array(V), w: new Float64Array(V)};
    for (let length = plan.prefixIds.length; ; length++) {
      const lp = model.logProbs(state);  // (batch, V)
      const batch = rowOf.length;
      let next = new Int32Array(batch);  // 0 (the end) for the rows that ended
      for (let b = 0; b < batch; b++) {
        if (!live[b]) continue;
        const row = lp.subarray(b * V, (b + 1) * V);
        const token = length === plan.maxLen ? 0 : drawToken(row, length >= plan.minLen, plan, rng, work);
        next[b] = token;
        logp[rowOf[b]] += row[token];
        if (token === 0) {
          live[b] = 0;
          growing--;
        } else {
          ids[rowOf[b]].push(token);
        }
      }
      if (growing === 0) break;
      if (batch - growing >= COMPACT * batch) {  // the model computes only the rows still growing
        const keep = Int32Array.from(live.keys()).filter((b) => live[b]);
        state = model.keep(state, keep);
        rowOf = keep.map((b) => rowOf[b]);
        next = keep.map((b) => next[b]);
        live = new Uint8Array(keep.length).fill(1);
      }
      state = model.push(state, next);
    }
    return {ids, logp};
  }

  // log P(item | start) of each token list (every character and the end), `BATCH` rows at a time.
  function logLikelihoods(model, seqs, starts) {
    const V = model.vocabSize;
    const out = new Float64Array(seqs.length);
    for (let a = 0; a < seqs.length; a += BATCH) {
      let rowOf = Int32Array.from({length: Math.min(BATCH, seqs.length - a)}, (_, i) => a + i);
      let state = model.start(rowOf.map((r) => starts[r]));
      for (let t = 0; rowOf.length; t++) {
        const lp = model.logProbs(state);  // (batch, V)
        rowOf.forEach((r, b) => { out[r] += lp[b * V + (t < seqs[r].length ? seqs[r][t] : 0)]; });
        const keep = Int32Array.from(rowOf.keys()).filter((b) => seqs[rowOf[b]].length > t);
        if (!keep.length) break;
        if (keep.length < rowOf.length) {
          state = model.keep(state, keep);
          rowOf = keep.map((b) => rowOf[b]);
        }
        state = model.push(state, rowOf.map((r) => seqs[r][t]));
      }
    }
    return out;
  }

  const logSumExp = (xs) => {
    const top = Math.max(...xs);
    return top === -Infinity ? -Infinity : top + Math.log(xs.reduce((s, x) => s + Math.exp(x - top), 0));
  };

  // --- the request's rules (constraints.py) ----------------------------------------------------------
  // The longest item to generate: max_len, else twice the longest training item (at least 16), within the
  // model's own limit.
  function longestItem(model, o) {
    const limit = model.maxLength;
    const longest = (model.meta && model.meta.longest_item) || 0;
    let maxLen = o.max_len === null ? Math.max(16, 2 * longest) : o.max_len;
    if (limit !== null && limit !== undefined && maxLen > limit) {
      if (o.max_len !== null) fail("max_len", `${o.max_len} is more than this model can generate (${limit})`);
      maxLen = limit;
    }
    if (o.min_len > maxLen) {
      fail("min_len", `${o.min_len} is more than the longest item this model makes (${maxLen}; see max_len)`);
    }
    return maxLen;
  }

  // Length of the shortest text that starts with `prefix` and ends with `suffix` (code point arrays).
  function shortestWith(prefix, suffix) {
    const lp = prefix.length;
    const ls = suffix.length;
    for (let length = Math.max(lp, ls); length < lp + ls; length++) {
      if (prefix.slice(length - ls).join("") === suffix.slice(0, lp + ls - length).join("")) return length;
    }
    return lp + ls;
  }

  // Refuse a request no item can meet (constraints._check_possible), before anything is drawn.
  function checkPossible(model, o, maxLen) {
    const excluded = new Set(chars(o.exclude_chars));
    const required = [["prefix", o.prefix], ["suffix", o.suffix], ...o.contains.map((s) => ["contains", s])];
    for (const [name, text] of required) {
      encode(model, text, name);
      const banned = chars(text).find((c) => excluded.has(c));
      if (banned !== undefined) fail(name, `${repr(text)} has ${repr(banned)}, one of exclude_chars`);
      const forbidden = o.not_contains.find((s) => text.includes(s));
      if (forbidden !== undefined) fail(name, `${repr(text)} contains ${repr(forbidden)}, which not_contains forbids`);
      const length = chars(text).length;
      if (length > maxLen) fail(name, `is ${length} characters long, more than max_len ${maxLen}`);
    }
    const shortest = shortestWith(chars(o.prefix), chars(o.suffix));
    if (shortest > maxLen) {
      fail("suffix", `an item with prefix ${repr(o.prefix)} and suffix ${repr(o.suffix)} has at least ${shortest} `
        + `characters, more than max_len ${maxLen}`);
    }
    const masked = new Set([...excluded, ...o.not_contains.filter((s) => chars(s).length === 1)]);
    const vocab = model.vocab.slice(1, model.numChars);
    if (vocab.every((c) => masked.has(c))) {
      const also = !excluded.size || vocab.every((c) => excluded.has(c)) ? "" : " (with the characters of not_contains)";
      fail(excluded.size ? "exclude_chars" : "not_contains",
        `excludes every character${also}, so no item can be made (an item has at least one)`);
    }
  }

  // What every draw of the request shares: the prefix, the lengths, the masked tokens, the filters.
  function makePlan(model, o, maxLen) {
    const banned = new Uint8Array(model.vocabSize);
    const masked = new Set([...chars(o.exclude_chars), ...o.not_contains.filter((s) => chars(s).length === 1)]);
    for (let id = 1; id < model.numChars; id++) if (masked.has(model.vocab[id])) banned[id] = 1;
    banned.fill(1, model.numChars);  // label tokens start items, they are never drawn
    return {
      prefixIds: encode(model, o.prefix, "prefix"), maxLen, minLen: Math.max(o.min_len, 1), banned,
      temperature: o.temperature, top_k: o.top_k, top_p: o.top_p,
    };
  }

  // The rejection constraints: suffix, contains, longer not_contains, regex (constraints.Rules.keep).
  function makeCheck(o) {
    const longer = o.not_contains.filter((s) => chars(s).length > 1);
    const pattern = compileRegex(o.regex);
    const check = (item) => (!o.suffix || item.endsWith(o.suffix)) && o.contains.every((s) => item.includes(s))
      && !longer.some((s) => item.includes(s)) && (pattern === null || pattern.test(item));
    check.rejects = Boolean(o.suffix || o.contains.length || longer.length || o.regex);
    return check;
  }

  // Rows of the next batch: what is still wanted, more when items may be dropped, for the acceptance seen so
  // far (a guess before any draw; the whole BATCH while nothing was accepted). Depends only on counts, so the
  // items of a seed do not depend on the machine's speed. Unlike constraints.batch_rows, no batch of 64 rows
  // at least: here a row costs its share of the arithmetic, so 20 items ask for about 20 to 32 rows, not 64.
  function batchRows(want, filtering, rejects, found, tried) {
    const rate = tried ? found / tried : rejects ? 0.5 : filtering ? 0.75 : 1;
    const margin = rejects || filtering ? 1.2 : 1;
    const rows = rate === 0 ? BATCH : Math.max(rejects || filtering ? MIN_ROWS : 1, Math.ceil((margin * want) / rate));
    return Math.min(BATCH, rows, MAX_TRIES - tried);
  }

  // With none of m draws meeting the constraints, fewer than 3 in m do (95% confidence): the draws left
  // (of MAX_TRIES, and what the time left allows at the speed so far) stop early when even 3 in m could not
  // fill the request (constraints.Rules.hopeless). The draws left, or 0: go on.
  function hopeless(tried, seconds, needed) {
    const left = [MAX_TRIES - tried];
    if (seconds > 0) left.push(Math.floor((tried / seconds) * Math.max(TIME_LIMIT_S - seconds, 0)));
    const least = Math.min(...left);
    return least > 0 && (3 * least) / tried < needed ? least : 0;
  }

  const count = (x) => x.toLocaleString("en");
  const warnings = {
    budget: (found, asked, tried, seconds) => `found ${found} of ${asked} items in ${count(tried)} draws `
      + `(${seconds.toFixed(1)} s), all one request may use (max_tries ${count(MAX_TRIES)}, time_limit `
      + `${TIME_LIMIT_S} s); loosen the constraints or ask for fewer`,
    hopeless: (asked, tried, seconds, left) => `found none of ${count(asked)} items in ${count(tried)} draws `
      + `(${seconds.toFixed(1)} s); stopped early: with none of ${count(tried)} draws meeting the constraints, `
      + `fewer than 3 in ${count(tried)} do (95% confidence), too few for ${count(asked)} items in the `
      + `${count(left)} draws that max_tries and time_limit leave; loosen the constraints`,
    gaveUp: (found, asked, tried, rejected) => `gave up after ${tried} draws (${GIVE_UP_BATCHES} batches in a row `
      + `without a new item), with ${found} of ${asked} items; ${rejected.unique >= rejected.new_only
        ? "unique: the model keeps making items it already made"
        : "new_only: the items the model makes are in the training file"} (a higher temperature makes more different ones)`,
  };

  // --- generate -----------------------------------------------------------------------------------------
  // Items drawn batch by batch until `count` are accepted or the budget ends: {found, tried, warning}.
  function drawItems(model, o, plan, mix, count) {
    const started = Date.now();
    const rng = makeRng(o.seed);
    const check = makeCheck(o);
    const hashes = knownHashes(model);
    const seen = o.unique || o.similar_to ? new Set(o.similar_to ? [o.similar_to] : []) : null;
    const filtering = o.new_only || seen !== null;
    const rejected = {new_only: 0, unique: 0};
    const found = [];
    let tried = 0;
    let met = 0;
    let idle = 0;
    while (found.length < count) {
      const seconds = (Date.now() - started) / 1000;
      if (tried >= MAX_TRIES || seconds >= TIME_LIMIT_S) {
        return {found, tried, warning: warnings.budget(found.length, count, tried, seconds)};
      }
      const want = count - found.length;
      const rows = batchRows(want, filtering, check.rejects, found.length, tried);
      const labels = Int32Array.from({length: mix.length ? rows : 0}, () => pick(mix, 1, rng));
      const starts = mix.length ? labels.map((l) => model.numChars + l) : new Int32Array(rows);
      const {ids, logp} = drawRows(model, plan, rng, starts);
      tried += rows;
      const accepted = [];
      let candidates = 0;
      ids.forEach((row, r) => {
        const item = decode(model, row);
        if (!check(item)) return;
        candidates++;
        const known = hashes === null ? null : isKnown(hashes, item);
        if (o.new_only && known) rejected.new_only++;
        else if (seen !== null && seen.has(item)) rejected.unique++;
        else {
          if (seen !== null) seen.add(item);
          accepted.push({item, ids: row, logp: logp[r], label: mix.length ? labels[r] : -1, known});
        }
      });
      met += candidates;
      found.push(...accepted.slice(0, want));
      idle = accepted.length ? 0 : idle + (candidates > 0);
      if (idle >= GIVE_UP_BATCHES) return {found, tried, warning: warnings.gaveUp(found.length, count, tried, rejected)};
      const needed = o.similar_to ? o.n : count;
      const left = !met && check.rejects ? hopeless(tried, (Date.now() - started) / 1000, needed) : 0;
      if (left) return {found, tried, warning: warnings.hopeless(count, tried, (Date.now() - started) / 1000, left)};
    }
    return {found, tried, warning: null};
  }

  // Each item's mean NLL per character, its end included, under the mixture of the labels drawn from.
  function itemNlls(model, found, mix) {
    const used = Array.from(mix.keys()).filter((l) => mix[l] > 0);
    if (used.length <= 1) return found.map((f) => -f.logp / (f.ids.length + 1));
    const seqs = found.map((f) => f.ids);
    const joint = used.map((l) => {
      const ll = logLikelihoods(model, seqs, new Int32Array(seqs.length).fill(model.numChars + l));
      return ll.map((x) => x + Math.log(mix[l]));
    });
    return found.map((f, i) => -logSumExp(joint.map((row) => row[i])) / (f.ids.length + 1));
  }

  // Optimal-string-alignment distance (ranking.edit_distances): insertions, deletions, substitutions and
  // swaps of two neighbouring characters, each one edit.
  function editDistance(a, b) {
    const rows = [Array.from({length: b.length + 1}, (_, j) => j)];
    for (let i = 1; i <= a.length; i++) {
      const row = [i];
      for (let j = 1; j <= b.length; j++) {
        let d = Math.min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2][j - 2] + 1);
        row.push(d);
      }
      rows.push(row);
    }
    return rows[a.length][b.length];
  }

  function generate(model, options) {
    const started = Date.now();
    const o = folded(model, readOptions(options));
    compileRegex(o.regex);
    const maxLen = longestItem(model, o);
    const plan = makePlan(model, o, maxLen);
    const hashes = knownHashes(model);
    if (o.new_only && hashes === null) fail("new_only", "needs the training items' hashes, which this export does not carry");
    const mix = labelMix(model, o.labelSpecs);
    checkPossible(model, o, maxLen);
    const count = o.similar_to ? o.pool || Math.max(o.n, Math.min(MAX_ITEMS, POOL_PER_ITEM * o.n)) : o.n;
    const {found, tried, warning: drawn} = drawItems(model, o, plan, mix, count);
    const nll = itemNlls(model, found, mix);
    let items = found.map((f, i) => ({
      item: f.item, nll: nll[i], label: f.label < 0 ? null : model.labels[f.label], known: f.known, distance: null,
    }));
    let warning = drawn;
    if (o.similar_to) {  // the n closest to the word; ties: the more plausible, then the text
      const word = chars(o.similar_to);
      for (const it of items) it.distance = editDistance(chars(it.item), word);
      items.sort((x, y) => x.distance - y.distance || x.nll - y.nll || (x.item < y.item ? -1 : x.item > y.item ? 1 : 0));
      items = items.slice(0, o.n);
      if (items.length === o.n) warning = null;
    }
    if (warning !== null && !items.length && o.n > 0) throw new Error(warning);
    const seed = o.seed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(o.seed) : o.seed.toString();
    const stats = {asked: o.n, found: items.length, tried, seconds: (Date.now() - started) / 1000};
    return {items, stats, warning, seed};
  }

  // --- score ----------------------------------------------------------------------------------------------
  function score(model, item, label) {
    if (typeof item !== "string" || !item) fail("text", `must be a non-empty string, got ${repr(item)}`);
    const text = model.meta && model.meta.casefold ? item.toLowerCase() : item;
    if (/[\n\r]/.test(text)) fail("text", `${repr(text)} contains a line break; give one item at a time`);
    const limit = model.maxLength;
    if (limit !== null && limit !== undefined && chars(text).length > limit) {
      fail("text", `${repr(text)} is longer than this model can read (${limit} characters)`);
    }
    const labels = model.labels || [];
    const given = label !== undefined && label !== null && label !== "";
    if (given) {
      if (typeof label !== "string") fail("label", `must be a label name or null, got ${repr(label)}`);
      if (!labels.length) fail("label", "this model was trained without labels");
      if (!labels.includes(label)) fail("label", `unknown label ${repr(label)} (labels: ${labels.join(", ")})`);
    }
    const ids = encode(model, text, "text");
    const per = ids.length + 1;
    if (!labels.length || given) {
      const start = given ? model.numChars + labels.indexOf(label) : 0;
      return -logLikelihoods(model, [ids], Int32Array.of(start))[0] / per;
    }
    // no label given: the most probable one, by Bayes' rule with the training prior (scoring.classify)
    const prior = labelMix(model, []);
    const ll = logLikelihoods(model, labels.map(() => ids), Int32Array.from(labels.keys(), (l) => model.numChars + l));
    const joint = Array.from(ll, (x, l) => x + Math.log(prior[l]));
    const by = joint.some((x) => x > -Infinity) ? joint : Array.from(prior);  // no label makes it: the prior
    let best = 0;
    for (let l = 1; l < labels.length; l++) {
      if (by[l] > by[best] || (by[l] === by[best] && labels[l] < labels[best])) best = l;
    }
    return -ll[best] / per;
  }

  return [generate, score];
})();
