"""Dropout on CPU: PyTorch's ``F.dropout`` against makemore's ``models.base.dropout``.

PyTorch's CPU dropout draws one Bernoulli sample per element; makemore's cuts 64-bit random
integers into four 16-bit ones and compares them with the rate. This script times

* the dropout alone (forward, and forward + backward) on tensors of the sizes the models
  drop: LSTM embeddings and hidden states, the transformer's residual stream, an LSTM's
  hidden-to-hidden matrix (``--weight-dropout``);
* a full training step (batch, forward, backward, AdamW) of models that use dropout, once
  with every dropout of the model done by PyTorch (``F.dropout``; the transformer's attention
  weights dropped inside ``scaled_dot_product_attention``) and once with ours (the
  transformer's attention then written out),

each pair taking turns in every round, on the lectures' names.txt.

Usage:
    python benchmarks/bench_dropout.py ../shared/data/names.txt [--rounds 7]

Prints tables and writes JSON (default benchmarks/results/dropout.json).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from benchlib import run_info, step_timing_parser, time_in_turns, training_step, write_json  # benchmarks/benchlib.py
from makemore import api
from makemore.models import base, build_model, rnn, transformer

ORIGINAL = base.dropout  # makemore's
ORIGINAL_ATTENTION = transformer.causal_attention_with_dropout  # written out, with makemore's dropout

SIZES = {  # name -> (shape, p)
    "lstm embeddings 64x16x64": ((64, 16, 64), 0.25),
    "lstm hidden 64x16x256": ((64, 16, 256), 0.25),
    "transformer stream 64x16x64": ((64, 16, 64), 0.1),
    "lstm weight_hh 1024x256": ((1024, 256), 0.3),
}

CONFIGS = {
    "preset default": lambda: api.preset_config("default"),
    "preset best": lambda: api.preset_config("best"),
    "best + weight_dropout 0.3": lambda: with_model_options(api.preset_config("best"), weight_dropout=0.3),
    "transformer": lambda: api.RunConfig(
        model="transformer",
        model_config=api.make_config("transformer", {}),
        train=api.default_train_config("transformer"),
    ),
    "wavenet": lambda: api.RunConfig(
        model="wavenet", model_config=api.make_config("wavenet", {}), train=api.default_train_config("wavenet")
    ),
}


def with_model_options(config: api.RunConfig, **options) -> api.RunConfig:
    config.model_config = dataclasses.replace(config.model_config, **options)
    return config


def torch_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    return F.dropout(x, p, training)


def sdpa_attention_with_dropout(q, k, v, drop) -> torch.Tensor:
    """The transformer's attention as plain PyTorch does it: dropout inside SDPA (math path)."""
    return F.scaled_dot_product_attention(q, k, v, dropout_p=drop.p, is_causal=True)


def using(impl, fn):
    """``fn`` run with ``impl`` as the dropout of every makemore model (for PyTorch's, the
    transformer's attention weights are dropped inside ``scaled_dot_product_attention``)."""
    attention = sdpa_attention_with_dropout if impl is torch_dropout else ORIGINAL_ATTENTION

    def run():
        base.dropout = rnn.dropout = impl
        transformer.causal_attention_with_dropout = attention
        return fn()

    return run


def time_alone(args) -> dict:
    results = {}
    for name, (shape, p) in SIZES.items():
        x = torch.randn(shape, requires_grad=True)
        grad = torch.randn(shape)

        def forward(impl, x=x, p=p):
            with torch.no_grad():
                return impl(x, p)

        def forward_backward(impl, x=x, p=p, grad=grad):
            impl(x, p).backward(grad)

        fns = {
            f"{kind} {impl_name}": (lambda f=f, impl=impl: f(impl))
            for kind, f in (("forward", forward), ("forward+backward", forward_backward))
            for impl_name, impl in (("torch", torch_dropout), ("makemore", ORIGINAL))
        }
        results[name] = time_in_turns(fns, rounds=args.rounds, calls=args.calls, warmup=args.warmup // 2 + 1)
        r = {k: v["ms_per_step"] * 1000 for k, v in results[name].items()}
        print(
            f"{name:<30} {r['forward torch']:9.0f} {r['forward makemore']:9.0f} "
            f"{r['forward+backward torch']:9.0f} {r['forward+backward makemore']:9.0f}",
            flush=True,
        )
    return results


def time_steps(args, data) -> dict:
    results = {}
    for name in args.configs:
        config = CONFIGS[name]()
        if getattr(config.model_config, "block_size", None) == 0:  # as the API sets it for sequence models
            config = with_model_options(config, block_size=max(len(w) for w in data.words) + 1)
        steps = {}
        for impl_name, impl in (("torch", torch_dropout), ("makemore", ORIGINAL)):
            torch.manual_seed(0)
            model = build_model(config.model, config.model_config, data.vocab.size)
            steps[impl_name] = using(impl, training_step(model, config, data))
        timing = time_in_turns(steps, rounds=args.rounds, calls=args.steps, warmup=args.warmup)
        ours, theirs = timing["makemore"]["ms_per_step"], timing["torch"]["ms_per_step"]
        print(f"{name:<30} {theirs:9.2f} {ours:9.2f} {theirs / ours:6.2f}x", flush=True)
        results[name] = {"speedup": theirs / ours, **timing}
    return results


def main(argv=None) -> None:
    p = step_timing_parser(__doc__, list(CONFIGS), "benchmarks/results/dropout.json")
    p.add_argument("--calls", type=int, default=200, help="dropout calls per timed round")
    args = p.parse_args(argv)

    data = api.load_data(api.DataConfig(input=args.data))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"\ndropout alone, us per call (median of {args.rounds} rounds of {args.calls})")
    print(f"{'tensor':<30} {'fwd torch':>9} {'fwd ours':>9} {'f+b torch':>9} {'f+b ours':>9}")
    alone = time_alone(args)
    print(f"\ntraining step, ms (median of {args.rounds} rounds of {args.steps})")
    print(f"{'config':<30} {'torch':>9} {'makemore':>9} {'gain':>7}")
    try:
        steps = time_steps(args, data)
    finally:
        base.dropout = rnn.dropout = ORIGINAL
        transformer.causal_attention_with_dropout = ORIGINAL_ATTENTION
    write_json(args.out, {**run_info("dropout", args), "alone": alone, "steps": steps})


if __name__ == "__main__":
    main()
