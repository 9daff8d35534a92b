"""Transformer speed on this machine: training step time and sampling throughput.

The model is the issue's: 4 layers, 64 dimensions, 4 heads, batch 32, on the lectures'
names.txt (lecture split). Two implementations are timed side by side, taking turns in
every round so that a busy spell of a shared machine hits both alike:

* ``reference``: a re-implementation of karpathy/makemore's Transformer and training step
  (every item padded to the corpus' longest item + 1, explicit masked-softmax attention,
  tanh-approximated GELU written out, PyTorch's default AdamW), and its sampler (the whole
  context recomputed at every step, always ``block_size - 1`` steps);
* ``makemore``: this project's trainer step (per-batch padding, packed positions, fused
  AdamW) and ``sampling.generate_tokens`` (KV cache, ended rows dropped from the batch).

Our step is also timed in parts (drawing a batch, forward, forward + backward, the optimizer
update), to show where its time goes.

For sampling, both models get the same weights, trained here for ``--train-steps`` steps
(so that names end where real names end), and draw with temperature 1.

Usage:
    python benchmarks/bench_transformer_speed.py ../shared/data/names.txt [--rounds 15]

Prints tables and writes JSON (default benchmarks/results/transformer_speed.json).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchlib import run_info, time_in_turns, write_json  # benchmarks/benchlib.py
from makemore import api
from makemore.config import TrainConfig
from makemore.generate.sampling import generate_tokens
from makemore.models.configs import TransformerConfig
from makemore.models.transformer import Transformer
from makemore.train.trainer import Trainer

# -- the reference: karpathy/makemore's Transformer, re-implemented for comparison ---------


class ReferenceGELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class ReferenceAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class ReferenceBlock(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = ReferenceAttention(n_embd, n_head, block_size)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.ModuleDict(
            dict(c_fc=nn.Linear(n_embd, 4 * n_embd), c_proj=nn.Linear(4 * n_embd, n_embd), act=ReferenceGELU())
        )

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        m = self.mlp
        return x + m.c_proj(m.act(m.c_fc(self.ln_2(x))))


class ReferenceTransformer(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd):
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(vocab_size, n_embd),
                wpe=nn.Embedding(block_size, n_embd),
                h=nn.ModuleList([ReferenceBlock(n_embd, n_head, block_size) for _ in range(n_layer)]),
                ln_f=nn.LayerNorm(n_embd),
            )
        )
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx, targets=None):
        t = idx.size(1)
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device).unsqueeze(0)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens):
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= self.block_size else idx[:, -self.block_size :]
            logits, _ = self(idx_cond)
            probs = F.softmax(logits[:, -1, :], dim=-1)
            idx = torch.cat((idx, torch.multinomial(probs, num_samples=1)), dim=1)
        return idx


def reference_batches(corpus, block_size: int):
    """karpathy/makemore's CharDataset: every item padded to ``block_size``, -1 targets."""
    n = len(corpus)
    x, y = corpus.sequence_batch(torch.arange(n))
    X = torch.zeros(n, block_size, dtype=torch.int64)
    Y = torch.full((n, block_size), -1, dtype=torch.int64)
    X[:, : x.size(1)], Y[:, : y.size(1)] = x, y
    return X, Y


# -- timing ------------------------------------------------------------------------------------


def make_steps(data, args) -> dict:
    """One training-step function per implementation, each with its own model and batches."""
    train = data.corpus("train")
    block_size = max(len(w) for w in data.words) + 1
    V = data.vocab.size
    steps = {}

    torch.manual_seed(0)
    ref = ReferenceTransformer(V, block_size, args.n_layer, args.n_head, args.n_embd)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=5e-4, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8)
    X, Y = reference_batches(train, block_size)
    g = torch.Generator().manual_seed(0)

    def ref_step():
        ix = torch.randint(0, X.size(0), (args.batch,), generator=g)
        _, loss = ref(X[ix], Y[ix])
        ref.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()

    steps["reference"] = ref_step

    torch.manual_seed(0)
    config = TransformerConfig(
        block_size=block_size, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd, dropout=0.0
    )
    ours = Transformer(config, V)
    train_config = TrainConfig(steps=10**9, batch_size=args.batch, lr=5e-4, weight_decay=0.01, schedule="constant")
    trainer = Trainer(ours, ours.batcher(train), train_config)
    steps["makemore"] = trainer.step
    return steps, trainer


def step_parts(trainer: Trainer, batch_size: int) -> dict:
    """Our step split into what can be timed alone: drawing a batch, the forward pass (with
    the loss), forward + backward, and the optimizer update."""
    model, optimizer = trainer.model, trainer.optimizer

    def batch():
        return trainer.batcher.sample(batch_size, trainer.generator)

    def forward():
        return model(*batch())[1]

    def forward_backward():
        optimizer.zero_grad(set_to_none=True)
        forward().backward()

    return {"batch": batch, "forward": forward, "forward+backward": forward_backward, "optimizer": optimizer.step}


def train_for_sampling(data, args) -> Transformer:
    """Our transformer trained briefly, so that sampled names end where real names end."""
    config = api.RunConfig(
        model="transformer",
        model_config=api.make_config("transformer", dict(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)),
        data=api.DataConfig(input=args.data),
        train=TrainConfig(
            steps=args.train_steps,
            batch_size=args.batch,
            lr=1e-3,
            warmup_steps=100,
            eval_interval=args.train_steps,
            log_interval=args.train_steps,
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        metrics = api.train(config, tmp, progress=False)
        print(f"sampling model: {args.train_steps} steps, dev NLL {metrics['dev_loss']:.4f}")
        return api.load_run(tmp).model


@torch.no_grad()
def time_sampling(model: Transformer, args) -> list[dict]:
    """Names per second, ours and the reference's sampler on the same weights, taking turns."""
    ref = ReferenceTransformer(model.vocab_size, model.block_size, args.n_layer, args.n_head, args.n_embd).eval()
    state = {
        k.replace("blocks.", "transformer.h.")
        .replace("wte", "transformer.wte")
        .replace("wpe", "transformer.wpe")
        .replace("ln_f", "transformer.ln_f"): v
        for k, v in model.state_dict().items()
    }
    loaded = ref.load_state_dict(state, strict=False)  # the reference's causal-mask buffers stay its own
    assert not loaded.unexpected_keys and all(k.endswith("attn.bias") for k in loaded.missing_keys), loaded
    model.eval()
    max_len = model.block_size - 1

    def ours(batch, seed):
        return generate_tokens(
            model,
            batch,
            prefix_ids=torch.zeros(0, dtype=torch.int64),
            generator=torch.Generator().manual_seed(seed),
            max_len=max_len,
        )

    def reference(batch, seed):
        torch.manual_seed(seed)
        return ref.generate(torch.zeros(batch, 1, dtype=torch.int64), max_len)

    results = []
    for batch in args.sample_batches:
        per_round = max(1, args.sample_names // batch)  # batches per timed round
        times = {"reference": [], "makemore": []}
        lengths = []
        for _, fn in (("reference", reference), ("makemore", ours)):
            fn(batch, 0)  # warm-up
        for r in range(args.sample_rounds):
            for name, fn in (("reference", reference), ("makemore", ours)):
                t = time.perf_counter()
                for i in range(per_round):
                    out = fn(batch, 1000 * r + i)
                    if name == "makemore":
                        lengths.append(float(((out[:, 1:] != 0).cumprod(1)).sum(1).float().mean()))
                times[name].append((time.perf_counter() - t) / (per_round * batch))
        for name, per_name in times.items():
            results.append(
                {
                    "sampler": name,
                    "batch": batch,
                    "names_per_s": 1 / statistics.median(per_name),
                    "best_names_per_s": 1 / min(per_name),
                    "mean_length": statistics.mean(lengths),
                }
            )
    return results


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="words file, e.g. ../shared/data/names.txt")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=64)
    p.add_argument("--steps", type=int, default=100, help="training steps per timed round")
    p.add_argument("--rounds", type=int, default=15, help="timed rounds (the median is reported)")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--train-steps", type=int, default=3000, help="training of the sampling model")
    p.add_argument("--sample-batches", type=int, nargs="+", default=[10, 1000, 10000])
    p.add_argument("--sample-names", type=int, default=2000, help="names per timed sampling round (at least)")
    p.add_argument("--sample-rounds", type=int, default=7)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/transformer_speed.json"))
    args = p.parse_args(argv)

    load_start = os.getloadavg()
    data = api.load_data(api.DataConfig(input=args.data))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; model: {args.n_layer} layers, "
        f"{args.n_embd} dims, {args.n_head} heads; batch {args.batch}"
    )
    steps, trainer = make_steps(data, args)
    train = time_in_turns(steps, rounds=args.rounds, calls=args.steps, warmup=args.warmup)
    print(f"\ntraining step: median (best) of {args.rounds} rounds of {args.steps} steps")
    print(f"{'implementation':<12} {'ms/step':>8} {'best':>7} {'steps/s':>8}")
    for name, r in train.items():
        print(f"{name:<12} {r['ms_per_step']:8.2f} {r['best_ms']:7.2f} {r['steps_per_s']:8.0f}")
    speedup = train["reference"]["ms_per_step"] / train["makemore"]["ms_per_step"]
    print(f"speed-up {speedup:.2f}x")
    parts = time_in_turns(
        {**step_parts(trainer, args.batch), "whole step": steps["makemore"]},
        rounds=args.rounds,
        calls=args.steps,
        warmup=args.warmup,
    )
    print(f"\nmakemore's step in parts: median of {args.rounds} rounds, taking turns")
    for name, r in parts.items():
        print(f"{name:<17} {r['ms_per_step']:6.2f} ms")

    sample = time_sampling(train_for_sampling(data, args), args)
    print(f"\nsampling: median of {args.sample_rounds} rounds")
    print(f"{'sampler':<12} {'batch':>6} {'names/s':>9} {'best':>9}")
    for r in sample:
        print(f"{r['sampler']:<12} {r['batch']:>6} {r['names_per_s']:9.0f} {r['best_names_per_s']:9.0f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak_mb:.0f} MB; load average at start {load_start}, at end {os.getloadavg()}")

    result = {
        **run_info("transformer_speed", args),
        "cpu_count": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "peak_rss_mb": peak_mb,
        "train": train,
        "speedup": speedup,
        "step_parts": parts,
        "sample": sample,
    }
    write_json(args.out, result)


if __name__ == "__main__":
    main()
