// makemore's model runtime in JavaScript: makemoreLoad(bundle) and makemoreHash64(text).
// Plain JavaScript for Chromium and Node 20: no import or export, no package, no network, and no global
// but those two functions (the rest lives in the closure below). The bundle is the JSON object written by
// src/makemore/export/bundle.py; its `graph` names the layers to run, one of three kinds:
//  - "window": the last block_size tokens (0-padded at the start, the label token last before the
//    first character, as PyTorch's next_token_logits) through embed / flatten / linear / batchnorm
//    (eval: running statistics) / tanh layers, or a count model's table (the context as a number in
//    base V, newest token last, picks a row);
//  - "recurrent": embedding, then nn.RNN (tanh) / nn.GRU / nn.LSTM layers with PyTorch's gate order
//    and both biases, then the output layer; the state holds each layer's h (and c) per row;
//  - "transformer": token + position embeddings, pre-LayerNorm blocks (causal self-attention over a
//    per-row KV cache, so a step costs O(T); MLP with GELU), final LayerNorm, the (maybe tied) head.
// Dropout is off (evaluation). The matrix products run in a small WebAssembly SIMD kernel assembled below
// (float32 sums, as PyTorch's), or in plain JavaScript where WebAssembly SIMD is missing (double sums);
// everything else in doubles stored as float32, so the log-probabilities equal PyTorch's to about 1e-6.
// The model (see the contract, src/makemore/export/web/): vocab, numChars, labels, vocabSize, maxLength,
// meta, start(startTokens), logProbs(state), push(state, tokens), keep(state, rows); besides the contract:
// family, engine ("wasm-simd" or "js"), tokens(text) (Int32Array of a text's character ids, or an Error
// naming the character), labelToken(label) (0 for none) and nextLogProbs(prefixes, label) (each prefix's
// next-token log-probabilities: the test hook).
const [makemoreLoad, makemoreHash64] = (() => {
  // --- bytes -------------------------------------------------------------------------------------------
  const B64 = new Int16Array(128).fill(-1);
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".split("").forEach((c, i) => { B64[c.charCodeAt(0)] = i; });

  function base64Bytes(text) {
    const clean = text.replace(/[\s=]+/g, "");
    const out = new Uint8Array((clean.length * 3) >> 2);
    let acc = 0;
    let bits = 0;
    let n = 0;
    for (let i = 0; i < clean.length; i++) {
      const c = clean.charCodeAt(i);
      const v = c < 128 ? B64[c] : -1;
      if (v < 0) throw new Error(`bundle: invalid base64 character ${JSON.stringify(clean[i])}`);
      acc = ((acc << 6) | v) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out[n++] = (acc >> bits) & 0xff;
      }
    }
    return out.subarray(0, n);
  }

  // IEEE half -> double (exact, so also exact as float32).
  function halfToFloat(h) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) return sign * m * 2 ** -24;  // zero and subnormals
    if (e === 31) return m ? NaN : sign * Infinity;
    return sign * (1024 + m) * 2 ** (e - 25);
  }

  // A stored tensor as {shape, data: Float32Array} of the values PyTorch would compute with.
  function readTensor(name, spec) {
    const bytes = base64Bytes(spec.data);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const width = { float32: 4, float16: 2, int8: 1 }[spec.dtype];
    if (!width) throw new Error(`bundle: tensor ${name} has unknown dtype ${spec.dtype}`);
    if (bytes.length !== size * width) throw new Error(`bundle: tensor ${name} has ${bytes.length} bytes, expected ${size * width}`);
    if (spec.dtype === "float32") {
      for (let i = 0; i < size; i++) data[i] = view.getFloat32(4 * i, true);
    } else if (spec.dtype === "float16") {
      for (let i = 0; i < size; i++) data[i] = halfToFloat(view.getUint16(2 * i, true));
    } else {  // int8: one symmetric float32 scale per row (q * scale is exact in a double, then rounded once)
      const scaleBytes = base64Bytes(spec.scale);
      const scales = new DataView(scaleBytes.buffer, scaleBytes.byteOffset, scaleBytes.byteLength);
      const cols = size / spec.shape[0];
      for (let i = 0; i < size; i++) data[i] = view.getInt8(i) * scales.getFloat32(4 * Math.floor(i / cols), true);
    }
    return { shape: spec.shape, data };
  }

  // FNV-1a 64 of the UTF-8 bytes, on two 32-bit halves (the prime is 2^40 + 0x1b3).
  function makemoreHash64(text) {
    const bytes = new TextEncoder().encode(text);
    let hi = 0xcbf29ce4;
    let lo = 0x84222325;
    for (let i = 0; i < bytes.length; i++) {
      lo = (lo ^ bytes[i]) >>> 0;
      const low = lo * 0x1b3;  // < 2^41: exact
      const carry = Math.floor(low / 4294967296);
      hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) % 4294967296;  // h << 40 adds lo << 8 to the high word
      lo = low % 4294967296;
    }
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  // --- maths ---------------------------------------------------------------------------------------------
  // y (rows, N) = x (rows, K) @ W^T + bias, W (N, K) as PyTorch stores a Linear's weight. Four rows at a
  // time share each load of W's row.
  // Where WebAssembly SIMD is missing: tiles of 4 rows x 4 columns share each load of x and of W.
  function linear(x, rows, K, W, N, bias) {
    const y = new Float32Array(rows * N);
    let r = 0;
    for (; r + 4 <= rows; r += 4) {
      const a = r * K, b = a + K, c = b + K, d = c + K;
      let n = 0;
      for (; n + 4 <= N; n += 4) {
        const w0 = n * K, w1 = w0 + K, w2 = w1 + K, w3 = w2 + K;
        let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;  // s{row}{column}
        let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        for (let k = 0; k < K; k++) {
          const x0 = x[a + k], x1 = x[b + k], x2 = x[c + k], x3 = x[d + k];
          const v0 = W[w0 + k], v1 = W[w1 + k], v2 = W[w2 + k], v3 = W[w3 + k];
          s00 += x0 * v0; s01 += x0 * v1; s02 += x0 * v2; s03 += x0 * v3;
          s10 += x1 * v0; s11 += x1 * v1; s12 += x1 * v2; s13 += x1 * v3;
          s20 += x2 * v0; s21 += x2 * v1; s22 += x2 * v2; s23 += x2 * v3;
          s30 += x3 * v0; s31 += x3 * v1; s32 += x3 * v2; s33 += x3 * v3;
        }
        [[s00, s01, s02, s03], [s10, s11, s12, s13], [s20, s21, s22, s23], [s30, s31, s32, s33]].forEach((row, i) => {
          for (let j = 0; j < 4; j++) y[(r + i) * N + n + j] = row[j] + (bias ? bias[n + j] : 0);
        });
      }
      for (; n < N; n++) for (let i = 0; i < 4; i++) y[(r + i) * N + n] = dot(x, r * K + i * K, W, n * K, K, bias, n);
    }
    for (; r < rows; r++) for (let n = 0; n < N; n++) y[r * N + n] = dot(x, r * K, W, n * K, K, bias, n);
    return y;
  }
  function dot(x, a, W, w, K, bias, n) {
    let s = 0;
    for (let k = 0; k < K; k++) s += x[a + k] * W[w + k];
    return s + (bias ? bias[n] : 0);
  }

  function logSoftmaxRows(logits, rows, V) {
    const out = new Float32Array(rows * V);
    for (let r = 0; r < rows; r++) {
      const o = r * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (logits[o + v] > max) max = logits[o + v];
      if (max === -Infinity) throw new Error("logProbs: every token has probability 0");
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v] - max);
      const shift = max + Math.log(sum);
      for (let v = 0; v < V; v++) out[o + v] = logits[o + v] - shift;
    }
    return out;
  }

  // --- a WebAssembly SIMD kernel for the matrix products (5-8x the plain loops), assembled here ----------
  // mm(x, rows, K, wt, N, y): y (rows, N) = x (rows, K) @ wt (K, N), float32, with byte addresses into the
  // module's memory; rows a multiple of 4 and N of 8. Each step of k adds x[r, k] * wt[k, n..n+7] to a tile
  // of 4 rows x 8 columns held in eight f32x4 accumulators.
  function assembleMatmul() {
    const uleb = (v) => { const o = []; do { let b = v & 0x7f; v >>>= 7; if (v) b |= 0x80; o.push(b); } while (v); return o; };
    const sleb = (v) => {
      const o = [];
      for (;;) {
        const b = v & 0x7f;
        v >>= 7;
        if ((v === 0 && !(b & 0x40)) || (v === -1 && b & 0x40)) return [...o, b];
        o.push(b | 0x80);
      }
    };
    const vec = (items) => [...uleb(items.length), ...items.flat()];
    const section = (id, bytes) => [id, ...uleb(bytes.length), ...bytes];
    const name = (s) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
    // instructions
    const get = (i) => [0x20, i];
    const set = (i) => [0x21, i];
    const tee = (i) => [0x22, i];
    const i32 = (v) => [0x41, ...sleb(v)];
    const [ADD, SUB, MUL, SHL, GE_U, LT_U] = [[0x6a], [0x6b], [0x6c], [0x74], [0x4f], [0x49]];
    const simd = (op) => [0xfd, ...uleb(op)];
    const f32load = [0x2a, 2, 0];  // align 4, offset 0
    const vload = (offset) => [...simd(0x00), 4, ...uleb(offset)];
    const vstore = (offset) => [...simd(0x0b), 4, ...uleb(offset)];
    const [SPLAT, FADD, FMUL] = [simd(0x13), simd(0xe4), simd(0xe6)];
    const ZERO = [...simd(0x0c), ...new Array(16).fill(0)];
    const block = (...body) => [0x02, 0x40, ...body, 0x0b];
    const loop = (...body) => [0x03, 0x40, ...body, 0x0b];
    const brIf = (depth) => [0x0d, depth];
    const br = (depth) => [0x0c, depth];
    // locals: the parameters, then i32 counters and addresses, then v128 accumulators and operands
    const [X, ROWS, K, WT, N, Y] = [0, 1, 2, 3, 4, 5];
    const [R, COL, KLEFT, XP, WP, YP, XSTRIDE, YSTRIDE] = [6, 7, 8, 9, 10, 11, 12, 13];
    const ACC = 14;  // 8: rows i = 0..3 x column halves j = 0..1 at ACC + 2i + j
    const XV = 22;  // 4: x[r + i, k] in every lane
    const WV = 26;  // 2: wt[k, n .. n + 3] and wt[k, n + 4 .. n + 7]
    const rowOffset = (stride, i) => (i ? [get(stride), i32(i), MUL, ADD] : []);
    const tile = [0, 1, 2, 3].flatMap((i) => [0, 1].map((j) => [i, j]));
    const body = [
      get(K), i32(2), SHL, set(XSTRIDE),  // bytes per row of x
      get(N), i32(2), SHL, set(YSTRIDE),  // bytes per row of wt and of y
      i32(0), set(R),
      block(loop(
        get(R), get(ROWS), GE_U, brIf(1),
        i32(0), set(COL),
        loop(
          tile.map(([i, j]) => [ZERO, set(ACC + 2 * i + j)]),
          get(X), get(R), get(XSTRIDE), MUL, ADD, set(XP),
          get(WT), get(COL), i32(2), SHL, ADD, set(WP),
          get(K), set(KLEFT),
          loop(
            [0, 1, 2, 3].map((i) => [get(XP), rowOffset(XSTRIDE, i), f32load, SPLAT, set(XV + i)]),
            get(WP), vload(0), set(WV), get(WP), vload(16), set(WV + 1),
            tile.map(([i, j]) => [get(ACC + 2 * i + j), get(XV + i), get(WV + j), FMUL, FADD, set(ACC + 2 * i + j)]),
            get(XP), i32(4), ADD, set(XP),
            get(WP), get(YSTRIDE), ADD, set(WP),
            get(KLEFT), i32(1), SUB, tee(KLEFT), brIf(0),
          ),
          get(Y), get(R), get(YSTRIDE), MUL, ADD, get(COL), i32(2), SHL, ADD, set(YP),
          tile.map(([i, j]) => [get(YP), rowOffset(YSTRIDE, i), get(ACC + 2 * i + j), vstore(16 * j)]),
          get(COL), i32(8), ADD, tee(COL), get(N), LT_U, brIf(0),
        ),
        get(R), i32(4), ADD, set(R), br(0),
      )),
    ].flat(Infinity);
    const code = [...vec([[8, 0x7f], [14, 0x7b]]), ...body, 0x0b];  // 8 i32 and 14 v128 locals
    return new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,  // "\0asm", version 1
      ...section(1, vec([[0x60, ...vec(new Array(6).fill([0x7f])), 0]])),  // type: (i32 x 6) -> ()
      ...section(3, vec([[0]])),  // one function of that type
      ...section(5, vec([[0, 1]])),  // one memory, at least one page
      ...section(7, vec([[...name("mm"), 0, 0], [...name("mem"), 2, 0]])),
      ...section(10, vec([[...uleb(code.length), ...code]])),
    ]);
  }

  // Matrix products y = x @ W^T + b through the kernel above: each W is stored once, transposed and
  // padded to a multiple of 8 columns, in the module's memory; x and y pass through the memory after
  // them. null where WebAssembly SIMD is not available.
  function simdEngine() {
    let instance;
    try {
      instance = new WebAssembly.Instance(new WebAssembly.Module(assembleMatmul()));
    } catch (error) {
      return null;
    }
    const { mm, mem } = instance.exports;
    let top = 0;  // bytes used by the stored matrices
    const ensure = (bytes) => {
      if (bytes > mem.buffer.byteLength) mem.grow(Math.ceil((bytes - mem.buffer.byteLength) / 65536));
    };
    return function matrix(W, N, K, bias) {
      const Np = Math.ceil(N / 8) * 8;
      const at = top;
      top += K * Np * 4;
      ensure(top);
      const wt = new Float32Array(mem.buffer, at, K * Np);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wt[k * Np + n] = W[n * K + k];
      return (x, rows) => {
        const rows4 = Math.ceil(rows / 4) * 4;
        const xAt = top;
        const yAt = xAt + rows4 * K * 4;
        ensure(yAt + rows4 * Np * 4);
        const f = new Float32Array(mem.buffer);
        f.set(x.subarray(0, rows * K), xAt / 4);
        f.fill(0, xAt / 4 + rows * K, xAt / 4 + rows4 * K);
        mm(xAt, rows4, K, at, Np, yAt);
        const y = new Float32Array(rows * N);
        const y0 = yAt / 4;
        for (let r = 0; r < rows; r++) {
          for (let n = 0; n < N; n++) y[r * N + n] = f[y0 + r * Np + n] + (bias ? bias[n] : 0);
        }
        return y;
      };
    };
  }

  // The plain-JavaScript matrix products, with the same interface.
  const jsEngine = () => (W, N, K, bias) => (x, rows) => linear(x, rows, K, W, N, bias);

  const sigmoid = (x) => 1 / (1 + Math.exp(-x));

  // erf to about 1e-15: its Taylor series below 2.5, the continued fraction of erfc above.
  function erf(x) {
    const a = Math.abs(x);
    if (a < 2.5) {
      let term = a;
      let sum = a;
      for (let n = 1; n < 60 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
        term *= (-a * a) / n;
        sum += term / (2 * n + 1);
      }
      return Math.sign(x) * sum * 1.1283791670955126;  // 2 / sqrt(pi)
    }
    if (a > 6) return Math.sign(x);
    let f = a;  // erfc(a) = exp(-a^2) / sqrt(pi) / (a + (1/2) / (a + 1 / (a + (3/2) / (a + ...))))
    for (let n = 60; n >= 1; n--) f = a + n / 2 / f;
    return Math.sign(x) * (1 - Math.exp(-a * a) / 1.7724538509055159 / f);
  }
  const GELU = {
    none: (x) => 0.5 * x * (1 + erf(x * Math.SQRT1_2)),
    tanh: (x) => 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))),
  };

  // LayerNorm over the last dimension (biased variance, as nn.LayerNorm), in place of a copy.
  function layerNorm(x, rows, C, ln) {
    const y = new Float32Array(rows * C);
    for (let r = 0; r < rows; r++) {
      const o = r * C;
      let mean = 0;
      for (let c = 0; c < C; c++) mean += x[o + c];
      mean /= C;
      let v = 0;
      for (let c = 0; c < C; c++) v += (x[o + c] - mean) ** 2;
      const inv = 1 / Math.sqrt(v / C + ln.eps);
      for (let c = 0; c < C; c++) y[o + c] = (x[o + c] - mean) * inv * ln.weight[c] + (ln.bias ? ln.bias[c] : 0);
    }
    return y;
  }

  // Rows `rows` of a (n, width) array, in that order.
  function pick(data, width, rows) {
    const out = new data.constructor(rows.length * width);
    for (let i = 0; i < rows.length; i++) out.set(data.subarray(rows[i] * width, (rows[i] + 1) * width), i * width);
    return out;
  }

  // --- networks: each has start(tokens) -> state, push(state, tokens), keep(state, rows), logits(state) ----
  function windowNet(graph, T, V, matrix) {
    const block = graph.block_size;
    const layers = graph.layers.map((layer) => {
      const get = (key) => (layer[key] == null ? null : T(layer[key]));
      const variance = get("var");
      const inv = variance && variance.data.map((v) => 1 / Math.sqrt(v + layer.eps));  // BatchNorm's rsqrt(var + eps)
      const w = get("weight");
      const b = get("bias");
      const apply = layer.op === "linear" ? matrix(w.data, w.shape[0], w.shape[1], b && b.data) : null;
      return { ...layer, w, b, apply, gain: get("gain"), mean: get("mean"), inv };
    });
    function run(ctx, rows) {
      let x = null;  // (rows, t, c) activations as a flat Float32Array
      let t = block;
      let c = 0;
      for (const layer of layers) {
        if (layer.op === "embed" || layer.op === "table") {
          const width = layer.w.shape[1];
          const ids = layer.op === "embed" ? ctx : tableRows(ctx, rows);
          t = layer.op === "embed" ? block : 1;
          x = pick(layer.w.data, width, ids);
          c = width;
        } else if (layer.op === "flatten") {  // (rows, t, c) -> (rows, t / n, c * n): the same memory
          t /= layer.n;
          c *= layer.n;
        } else if (layer.op === "linear") {
          if (c !== layer.w.shape[1]) throw new Error(`bundle: a linear layer of ${layer.w.shape[1]} inputs gets ${c}`);
          x = layer.apply(x, rows * t);
          c = layer.w.shape[0];
        } else if (layer.op === "batchnorm") {
          const { gain, b, mean, inv } = layer;
          for (let i = 0; i < x.length; i++) {
            const k = i % c;
            x[i] = gain.data[k] * (x[i] - mean.data[k]) * inv[k] + b.data[k];
          }
        } else if (layer.op === "tanh") {
          for (let i = 0; i < x.length; i++) x[i] = Math.tanh(x[i]);
        } else {
          throw new Error(`bundle: unknown layer ${layer.op}`);
        }
      }
      if (t !== 1 || c !== V) throw new Error(`bundle: the window layers end in (${t}, ${c}), not (1, ${V})`);
      return x;
    }
    function tableRows(ctx, rows) {
      const ids = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        let id = 0;
        for (let j = 0; j < block; j++) id = id * V + ctx[r * block + j];
        ids[r] = id;
      }
      return ids;
    }
    return {
      start(tokens) {
        const rows = tokens.length;
        const ctx = new Int32Array(rows * block);
        if (block > 0) for (let r = 0; r < rows; r++) ctx[r * block + block - 1] = tokens[r];
        return { rows, ctx };
      },
      push(state, tokens) {
        const { rows, ctx } = state;
        if (block > 0) {
          for (let r = 0; r < rows; r++) {
            const o = r * block;
            ctx.copyWithin(o, o + 1, o + block);
            ctx[o + block - 1] = tokens[r];
          }
        }
        return state;
      },
      keep: (state, rows) => ({ rows: rows.length, ctx: pick(state.ctx, block, rows) }),
      logits: (state) => run(state.ctx, state.rows),
    };
  }

  function recurrentNet(graph, T, V, matrix) {
    const cell = graph.cell;
    const gates = { rnn: 1, gru: 3, lstm: 4 }[cell];
    if (!gates) throw new Error(`bundle: unknown recurrent cell ${cell}`);
    const H = T(graph.layers[0].weight_hh).shape[1];
    const G = gates * H;
    const product = (w, b) => matrix(T(w).data, T(w).shape[0], T(w).shape[1], b == null ? null : T(b).data);
    const layers = graph.layers.map((l, i) => ({
      ih: i > 0 ? product(l.weight_ih, l.bias_ih) : null,
      hh: product(l.weight_hh, l.bias_hh),
    }));
    const emb = T(graph.embedding);
    const head = product(graph.head.weight, graph.head.bias);
    // The first layer's input part for each token, W_ih @ emb[token] + b_ih, computed once: (V, G).
    const l0 = graph.layers[0];
    const first = linear(emb.data, V, emb.shape[1], T(l0.weight_ih).data, G, T(l0.bias_ih).data);

    function cellStep(x, h, c, rows, i) {  // x (rows, G) input part -> new h (and c)
      const hh = layers[i].hh(h, rows);  // (rows, G)
      const h2 = new Float32Array(rows * H);
      const c2 = cell === "lstm" ? new Float32Array(rows * H) : null;
      for (let r = 0; r < rows; r++) {
        const g = r * G;
        for (let j = 0; j < H; j++) {
          const o = r * H + j;
          if (cell === "rnn") {
            h2[o] = Math.tanh(x[g + j] + hh[g + j]);
          } else if (cell === "gru") {  // gates r, z, n
            const reset = sigmoid(x[g + j] + hh[g + j]);
            const z = sigmoid(x[g + H + j] + hh[g + H + j]);
            const n = Math.tanh(x[g + 2 * H + j] + reset * hh[g + 2 * H + j]);
            h2[o] = (1 - z) * n + z * h[o];
          } else {  // gates i, f, g, o
            const ig = sigmoid(x[g + j] + hh[g + j]);
            const fg = sigmoid(x[g + H + j] + hh[g + H + j]);
            const gg = Math.tanh(x[g + 2 * H + j] + hh[g + 2 * H + j]);
            const og = sigmoid(x[g + 3 * H + j] + hh[g + 3 * H + j]);
            c2[o] = fg * c[o] + ig * gg;
            h2[o] = og * Math.tanh(c2[o]);
          }
        }
      }
      return [h2, c2];
    }
    function step(state, tokens) {
      const rows = state.rows;
      let x = pick(first, G, tokens);
      for (let i = 0; i < layers.length; i++) {
        if (i > 0) x = layers[i].ih(state.h[i - 1], rows);
        [state.h[i], state.c[i]] = cellStep(x, state.h[i], state.c[i], rows, i);
      }
      state.out = head(state.h[layers.length - 1], rows);
      return state;
    }
    return {
      start(tokens) {
        const rows = tokens.length;
        const zeros = () => layers.map(() => new Float32Array(rows * H));
        return step({ rows, h: zeros(), c: zeros() }, tokens);
      },
      push: step,
      keep: (state, rows) => ({
        rows: rows.length,
        h: state.h.map((h) => pick(h, H, rows)),
        c: state.c.map((c) => (c ? pick(c, H, rows) : c)),
        out: pick(state.out, V, rows),
      }),
      logits: (state) => state.out,
    };
  }

  function transformerNet(graph, T, V, matrix) {
    const nh = graph.n_head;
    const maxT = graph.block_size;
    const wte = T(graph.wte);
    const wpe = T(graph.wpe);
    const C = wte.shape[1];
    const hs = C / nh;
    const gelu = GELU[graph.gelu || "none"];
    if (!gelu) throw new Error(`bundle: unknown GELU ${graph.gelu}`);
    const lin = (l) => matrix(T(l.weight).data, T(l.weight).shape[0], T(l.weight).shape[1], l.bias == null ? null : T(l.bias).data);
    const norm = (l) => ({ weight: T(l.weight).data, bias: l.bias == null ? null : T(l.bias).data, eps: l.eps });
    const blocks = graph.blocks.map((b) => ({
      ln1: norm(b.ln_1), attn: lin(b.attn), proj: lin(b.proj), ln2: norm(b.ln_2), fc: lin(b.fc), fcProj: lin(b.fc_proj),
    }));
    const lnF = norm(graph.ln_f);
    const head = lin(graph.head);

    // Grow each layer's per-row keys and values (rows, cap, C) to hold `need` positions (doubling).
    function reserve(state, need) {
      if (need <= state.cap) return;
      const cap = Math.min(maxT, Math.max(need, 2 * state.cap, 16));
      const grow = (old) => {
        const out = new Float32Array(state.rows * cap * C);
        for (let r = 0; r < state.rows; r++) out.set(old.subarray(r * state.cap * C, (r * state.cap + state.t) * C), r * cap * C);
        return out;
      };
      state.k = state.k.map(grow);
      state.v = state.v.map(grow);
      state.cap = cap;
    }
    // One new query per row attends over that row's keys 0..t (the newest included).
    function attend(q, state, layer) {
      const { rows, cap, t } = state;
      const K = state.k[layer];
      const Vs = state.v[layer];
      const y = new Float32Array(rows * C);
      const scores = new Float64Array(t + 1);
      const scale = 1 / Math.sqrt(hs);
      for (let r = 0; r < rows; r++) {
        for (let h = 0; h < nh; h++) {
          const qo = r * C + h * hs;
          let max = -Infinity;
          for (let j = 0; j <= t; j++) {
            const ko = (r * cap + j) * C + h * hs;
            let s = 0;
            for (let d = 0; d < hs; d++) s += q[qo + d] * K[ko + d];
            scores[j] = s * scale;
            if (scores[j] > max) max = scores[j];
          }
          let sum = 0;
          for (let j = 0; j <= t; j++) sum += (scores[j] = Math.exp(scores[j] - max));
          for (let d = 0; d < hs; d++) {
            let s = 0;
            for (let j = 0; j <= t; j++) s += scores[j] * Vs[(r * cap + j) * C + h * hs + d];
            y[qo + d] = s / sum;
          }
        }
      }
      return y;
    }
    function step(state, tokens) {
      const { rows, t } = state;
      if (t >= maxT) throw new Error(`the transformer reads at most ${maxT} tokens (its block_size)`);
      reserve(state, t + 1);
      let x = new Float32Array(rows * C);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < C; c++) x[r * C + c] = wte.data[tokens[r] * C + c] + wpe.data[t * C + c];
      }
      blocks.forEach((b, i) => {
        const qkv = b.attn(layerNorm(x, rows, C, b.ln1), rows);  // (rows, 3C)
        const q = new Float32Array(rows * C);
        for (let r = 0; r < rows; r++) {
          q.set(qkv.subarray(r * 3 * C, r * 3 * C + C), r * C);
          state.k[i].set(qkv.subarray(r * 3 * C + C, r * 3 * C + 2 * C), (r * state.cap + t) * C);
          state.v[i].set(qkv.subarray(r * 3 * C + 2 * C, r * 3 * C + 3 * C), (r * state.cap + t) * C);
        }
        const a = b.proj(attend(q, state, i), rows);
        for (let j = 0; j < x.length; j++) x[j] += a[j];
        const m = b.fc(layerNorm(x, rows, C, b.ln2), rows);
        for (let j = 0; j < m.length; j++) m[j] = gelu(m[j]);
        const f = b.fcProj(m, rows);
        for (let j = 0; j < x.length; j++) x[j] += f[j];
      });
      state.t = t + 1;
      state.out = head(layerNorm(x, rows, C, lnF), rows);
      return state;
    }
    return {
      start(tokens) {
        const rows = tokens.length;
        const empty = () => blocks.map(() => new Float32Array(0));
        return step({ rows, t: 0, cap: 0, k: empty(), v: empty() }, tokens);
      },
      push: step,
      keep: (state, rows) => ({
        rows: rows.length, t: state.t, cap: state.cap,
        k: state.k.map((k) => pick(k, state.cap * C, rows)),
        v: state.v.map((v) => pick(v, state.cap * C, rows)),
        out: pick(state.out, V, rows),
      }),
      logits: (state) => state.out,
    };
  }

  const NETS = { window: windowNet, recurrent: recurrentNet, transformer: transformerNet };

  // --- the model -----------------------------------------------------------------------------------------
  // options.simd: false computes with plain JavaScript even where WebAssembly SIMD is available.
  function makemoreLoad(bundle, options = {}) {
    if (!bundle || bundle.format !== "makemore-bundle") throw new Error("not a makemore bundle");
    if (bundle.version !== 1) throw new Error(`makemore bundle version ${bundle.version} is not supported (1 is)`);
    const chars = bundle.vocab.chars;
    const labels = bundle.vocab.labels || [];
    const numChars = chars.length + 1;
    const vocabSize = numChars + labels.length;
    const cache = new Map();
    const T = (name) => {  // each tensor decoded once, when a layer first asks for it
      if (!cache.has(name)) {
        if (!(name in bundle.tensors)) throw new Error(`bundle: no tensor ${name}`);
        cache.set(name, readTensor(name, bundle.tensors[name]));
      }
      return cache.get(name);
    };
    const build = NETS[bundle.graph.kind];
    if (!build) throw new Error(`bundle: unknown graph kind ${bundle.graph.kind}`);
    const simd = options.simd === false ? null : simdEngine();
    const net = build(bundle.graph, T, vocabSize, simd || jsEngine());
    const ids = new Map(chars.map((c, i) => [c, i + 1]));

    const asTokens = (tokens) => (tokens instanceof Int32Array ? tokens : Int32Array.from(tokens));
    function checkTokens(tokens, what) {
      for (const t of tokens) if (!(t >= 0 && t < vocabSize)) throw new Error(`${what}: token ${t} is not in 0..${vocabSize - 1}`);
      return tokens;
    }
    const model = {
      family: bundle.family,
      engine: simd ? "wasm-simd" : "js",  // how the matrix products run
      vocab: ["", ...chars, ...labels.map((l) => `<${l}>`)],
      numChars,
      labels,
      vocabSize,
      maxLength: bundle.max_length == null ? null : bundle.max_length,
      meta: bundle.meta || {},
      start: (startTokens) => net.start(checkTokens(asTokens(startTokens), "start")),
      logProbs: (state) => logSoftmaxRows(net.logits(state), state.rows, vocabSize),
      push: (state, tokens) => {
        const t = checkTokens(asTokens(tokens), "push");
        if (t.length !== state.rows) throw new Error(`push: ${t.length} tokens for ${state.rows} rows`);
        return net.push(state, t);
      },
      keep: (state, rows) => net.keep(state, asTokens(rows)),
      tokens(text) {
        return Int32Array.from(Array.from(text), (c) => {
          if (!ids.has(c)) throw new Error(`character ${JSON.stringify(c)} is not in the model's vocabulary`);
          return ids.get(c);
        });
      },
      labelToken(label) {
        if (label == null || label === "") return 0;
        const i = labels.indexOf(label);
        if (i < 0) throw new Error(`unknown label ${JSON.stringify(label)} (labels: ${labels.join(", ") || "none"})`);
        return numChars + i;
      },
      // For each prefix, the log-probabilities (Float32Array, vocabSize) of the token after it, read after
      // the label's start token (none: the boundary); the prefixes' characters are read as they are.
      nextLogProbs(prefixes, label) {
        const seqs = prefixes.map((p) => model.tokens(p));
        const out = new Array(seqs.length);
        if (!seqs.length) return out;
        let alive = seqs.map((_, i) => i);
        let state = model.start(new Int32Array(seqs.length).fill(model.labelToken(label)));
        for (let t = 0; alive.length; t++) {
          const lp = model.logProbs(state);
          const going = [];
          alive.forEach((r, i) => {
            if (seqs[r].length === t) out[r] = lp.slice(i * vocabSize, (i + 1) * vocabSize);
            else going.push(i);
          });
          if (going.length && going.length < alive.length) state = model.keep(state, Int32Array.from(going));
          alive = going.map((i) => alive[i]);
          if (alive.length) state = model.push(state, Int32Array.from(alive, (r) => seqs[r][t]));
        }
        return out;
      },
    };
    return model;
  }

  return [makemoreLoad, makemoreHash64];
})();
