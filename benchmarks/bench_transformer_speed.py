"""Transformer speed on CPU: training step time and KV-cache sampling throughput.

No dataset needed: random tokens with V=27, T=16 (names-sized). Compares makemore's
Transformer (fused qkv + scaled_dot_product_attention) against a baseline written in the
style of karpathy/makemore (explicit masked softmax attention, hand-written GELU, default
AdamW), on the same machine.

    python benchmarks/bench_transformer_speed.py [--steps 50] [--repeats 7] [--compile]

Prints a table and writes JSON (default benchmarks/results/transformer_speed.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from makemore.models.transformer import Transformer, TransformerConfig  # noqa: E402

# --------------------------------------------------------------------------------------
# Baseline in the style of karpathy/makemore's Transformer (written here for comparison).


class BaselineGELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class BaselineAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        mask = torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size)
        self.register_buffer("bias", mask)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class BaselineBlock(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = BaselineAttention(n_embd, n_head, block_size)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.ModuleDict(
            dict(c_fc=nn.Linear(n_embd, 4 * n_embd), c_proj=nn.Linear(4 * n_embd, n_embd), act=BaselineGELU())
        )
        m = self.mlp
        self.mlpf = lambda x: m.c_proj(m.act(m.c_fc(x)))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlpf(self.ln_2(x))
        return x


class BaselineTransformer(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd):
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(vocab_size, n_embd),
                wpe=nn.Embedding(block_size, n_embd),
                h=nn.ModuleList([BaselineBlock(n_embd, n_head, block_size) for _ in range(n_layer)]),
                ln_f=nn.LayerNorm(n_embd),
            )
        )
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx, targets=None):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device).unsqueeze(0)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss


# --------------------------------------------------------------------------------------


def make_model(kind, args):
    if kind == "baseline":
        return BaselineTransformer(args.vocab, args.T, args.n_layer, args.n_head, args.n_embd)
    cfg = TransformerConfig(block_size=args.T, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)
    return Transformer(cfg, args.vocab)


def make_optimizer(params, mode):
    kw = dict(lr=5e-4, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8)  # karpathy/makemore's
    if mode == "default":  # on CPU: the single-tensor for-loop implementation
        return torch.optim.AdamW(params, **kw)
    if mode == "foreach":
        return torch.optim.AdamW(params, foreach=True, **kw)
    if mode == "fused":
        return torch.optim.AdamW(params, fused=True, **kw)
    raise ValueError(mode)


def random_batches(args, n_batches=64):
    g = torch.Generator().manual_seed(1)
    X = torch.randint(0, args.vocab, (n_batches, args.batch, args.T), generator=g)
    Y = torch.randint(0, args.vocab, (n_batches, args.batch, args.T), generator=g)
    Y[:, :, -3:] = -1  # some padding, like real batches
    return X, Y


def prepare_training(variant, args):
    """Build the model and optimizer of ``variant``; return its training step function."""
    torch.manual_seed(0)
    model = make_model(variant["model"], args)
    model.train()
    opt = make_optimizer(model.parameters(), variant["optim"])
    fwd = torch.compile(model) if variant.get("compile") else model
    X, Y = random_batches(args)

    def step(i):
        _, loss = fwd(X[i % len(X)], Y[i % len(Y)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def prepare_gemm_floor(args):
    """Only the matrix multiplies of one training step (forward, input and weight gradients).

    Every other op of a step (attention, GELU, LayerNorm, optimizer, autograd) comes on top
    of this, so no implementation of the same model on this CPU can be faster.
    """
    N, C = args.batch * args.T, args.n_embd
    layer = [(C, 3 * C), (C, C), (C, 4 * C), (4 * C, C)]
    shapes = []
    for i, o in layer * args.n_layer + [(C, args.vocab)]:
        shapes += [(N, i, o), (N, o, i), (o, N, i)]  # y = x W; dx = dy W^T; dW = dy^T x
    mats = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in shapes]

    def step(i):
        for a, b in mats:
            torch.mm(a, b)

    return step, sum(2 * m * k * n for m, k, n in shapes) / 1e6


class _Settings:
    """Thread count and float32 matmul precision of one variant, restored on exit."""

    def __init__(self, variant):
        self.variant = variant

    def __enter__(self):
        self.saved = (torch.get_num_threads(), torch.get_float32_matmul_precision())
        torch.set_num_threads(self.variant["threads"])
        torch.set_float32_matmul_precision(self.variant.get("precision", "highest"))

    def __exit__(self, *exc):
        torch.set_num_threads(self.saved[0])
        torch.set_float32_matmul_precision(self.saved[1])


def time_training(variants, args):
    """ms per step for every variant: warm-up, then ``args.repeats`` rounds of ``args.steps``
    steps per variant, the variants taking turns within each round (so that a busy spell of
    a shared machine hits all of them alike). Reports the median and the best round."""
    steps, results = [], []
    for var in variants:
        with _Settings(var):
            t0 = time.perf_counter()
            if var["model"] == "matmuls":
                step, mflop = prepare_gemm_floor(args)
                var["mflop_per_step"] = mflop
            else:
                step = prepare_training(var, args)
            for i in range(args.warmup):
                step(i)
        steps.append(step)
        results.append({"warmup_s": time.perf_counter() - t0, "all_ms": []})
    for _ in range(args.repeats):
        for var, step, res in zip(variants, steps, results):
            with _Settings(var):
                t = time.perf_counter()
                for i in range(args.steps):
                    step(i)
                res["all_ms"].append((time.perf_counter() - t) / args.steps * 1000)
    out = []
    for var, res in zip(variants, results):
        res["ms_per_step"] = statistics.median(res["all_ms"])
        res["best_ms"] = min(res["all_ms"])
        if "mflop_per_step" in var:
            res["gflop_per_s"] = var["mflop_per_step"] / res["ms_per_step"]
        out.append(var | res)
    return out


SAMPLERS = ("ours-kv", "ours-recompute", "baseline")


@torch.no_grad()
def time_sampling(batch, args, threads):
    """Names per second generating ``args.T`` tokens per row with multinomial sampling.

    ``ours-kv`` uses the KV cache (``next_token_logits``); ``ours-recompute`` and
    ``baseline`` run the whole prefix through the model at every step. The three take turns.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    models = {kind: make_model("baseline" if kind == "baseline" else "ours", args).eval() for kind in SAMPLERS}

    def generate(kind):
        model = models[kind]
        idx = torch.zeros(batch, 1, dtype=torch.long)
        cache = None
        for _ in range(args.T):
            if kind == "ours-kv":
                logits, cache = model.next_token_logits(idx, cache)
            else:
                logits = model(idx)[0][:, -1, :]
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

    per_run = max(1, 200 // batch)  # small batches: several per timed run
    times = {kind: [] for kind in SAMPLERS}
    for kind in SAMPLERS:
        generate(kind)
    for _ in range(args.sample_repeats):
        for kind in SAMPLERS:
            t = time.perf_counter()
            for _ in range(per_run):
                generate(kind)
            times[kind].append((time.perf_counter() - t) / per_run)
    out = []
    for kind in SAMPLERS:
        med = statistics.median(times[kind])
        out.append({"method": kind, "batch": batch, "names_per_s": batch / med, "ms_per_batch": med * 1000,
                    "best_names_per_s": batch / min(times[kind])})
    return out


def train_variants(args):
    T = args.threads
    v = [
        {"name": "baseline (makemore-style, AdamW default)", "model": "baseline", "optim": "default", "threads": T},
        {"name": "baseline, AdamW fused", "model": "baseline", "optim": "fused", "threads": T},
        {"name": "ours, AdamW default (for-loop)", "model": "ours", "optim": "default", "threads": T},
        {"name": "ours, AdamW foreach", "model": "ours", "optim": "foreach", "threads": T},
        {"name": "ours, AdamW fused", "model": "ours", "optim": "fused", "threads": T},
        {"name": "ours, AdamW fused, matmul precision medium", "model": "ours", "optim": "fused", "threads": T,
         "precision": "medium"},
    ]
    for n in args.extra_threads:
        if n != T:
            v.append({"name": f"ours, AdamW fused, {n} thread(s)", "model": "ours", "optim": "fused", "threads": n})
    for n in dict.fromkeys([T, *args.extra_threads]):
        v.append({"name": "matmuls alone (floor for any implementation)", "model": "matmuls", "optim": "-",
                  "threads": n})
    if args.compile:
        v.append({"name": "ours, torch.compile, AdamW fused", "model": "ours", "optim": "fused",
                  "threads": T, "compile": True})
        v.append({"name": "baseline, torch.compile, AdamW fused", "model": "baseline", "optim": "fused",
                  "threads": T, "compile": True})
    return v


def write_json_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50, help="training steps per timed repeat")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats (median is reported)")
    p.add_argument("--warmup", type=int, default=20, help="untimed warm-up steps")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--T", type=int, default=16, help="sequence length (= block_size)")
    p.add_argument("--vocab", type=int, default=27)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=64)
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    p.add_argument("--extra-threads", type=int, nargs="*", default=[1], help="also time ours with these")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow to warm up)")
    p.add_argument("--sample-batches", type=int, nargs="*", default=[1000, 10])
    p.add_argument("--sample-repeats", type=int, default=7)
    p.add_argument("--sample-threads", type=int, default=None, help="torch threads for sampling (default: --threads)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/transformer_speed.json"))
    args = p.parse_args(argv)
    for name in ("steps", "repeats", "batch", "T", "vocab", "threads", "sample_repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")

    sample_threads = args.sample_threads or args.threads
    load_start = os.getloadavg()  # the machine may be shared: record how busy it was
    print(f"training step: batch {args.batch}, T {args.T}, n_layer {args.n_layer}, n_embd {args.n_embd}, "
          f"n_head {args.n_head}, V {args.vocab}; median (and best) of {args.repeats} rounds x {args.steps} steps")
    train = time_training(train_variants(args), args)
    print(f"{'variant':<45} {'threads':>7} {'ms/step':>8} {'best':>7}")
    for r in train:
        extra = f"  ({r['mflop_per_step']:.0f} MFLOP, {r['gflop_per_s']:.0f} GFLOP/s)" if "gflop_per_s" in r else ""
        print(f"{r['name']:<45} {r['threads']:7d} {r['ms_per_step']:8.2f} {r['best_ms']:7.2f}{extra}", flush=True)

    sample = []
    print(f"\nsampling {args.T} tokens per name (multinomial), {sample_threads} thread(s); "
          f"median of {args.sample_repeats}")
    print(f"{'method':<45} {'batch':>7} {'names/s':>8} {'ms/batch':>9}")
    for batch in args.sample_batches:
        for r in time_sampling(batch, args, sample_threads):
            sample.append(r)
            print(f"{r['method']:<45} {batch:7d} {r['names_per_s']:8.0f} {r['ms_per_batch']:9.2f}", flush=True)

    torch.set_num_threads(args.threads)
    result = {
        "benchmark": "transformer_speed",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "train": train,
        "sample": sample,
    }
    write_json_atomic(args.out, result)
    print(f"\nload average (1, 5, 15 min) at start {load_start}, at end {os.getloadavg()}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
