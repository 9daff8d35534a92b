"""Recurrent models: training step time with a packed sequence vs the whole padded batch.

A training pass of ``rnn``/``gru``/``lstm`` can run its recurrence over a packed sequence
(only the real positions, step by step in PyTorch's loop) or over the whole padded batch
(one call that may use oneDNN's LSTM kernel on CPU); either way the output layer and the
loss see only the real positions. The model picks one (``RNNModel.runs_padded``); this
script times a full training step (batch, forward, backward, AdamW) both ways, taking turns
in every round, for the family defaults and the LSTM presets, on the lectures' names.txt.

Usage:
    python benchmarks/bench_rnn_paths.py ../shared/data/names.txt [--rounds 7]

Prints a table and writes JSON (default benchmarks/results/rnn_paths.json).
"""

from __future__ import annotations

import torch

from benchlib import run_info, step_timing_parser, time_in_turns, training_step, write_json  # benchmarks/benchlib.py
from makemore import api
from makemore.models import build_model

CONFIGS = {
    "rnn": lambda: api.RunConfig(
        model="rnn", model_config=api.make_config("rnn", {}), train=api.default_train_config("rnn")
    ),
    "gru": lambda: api.RunConfig(
        model="gru", model_config=api.make_config("gru", {}), train=api.default_train_config("gru")
    ),
    "lstm": lambda: api.RunConfig(
        model="lstm", model_config=api.make_config("lstm", {}), train=api.default_train_config("lstm")
    ),
    "preset default": lambda: api.preset_config("default"),
    "preset best": lambda: api.preset_config("best"),
}


def path_steps(config: api.RunConfig, data) -> tuple[dict, bool]:
    """One training-step function per path, each with its own model and trainer; and the
    path the model itself picks (True: padded)."""
    steps, picks_padded = {}, None
    for path in ("packed", "padded"):
        torch.manual_seed(0)
        model = build_model(config.model, config.model_config, data.vocab.size)
        picks_padded = model.runs_padded(torch.zeros(1, dtype=torch.float32))
        model.runs_padded = lambda x, needed=None, padded=(path == "padded"): padded  # force this path
        steps[path] = training_step(model, config, data)
    return steps, picks_padded


def main(argv=None) -> None:
    args = step_timing_parser(__doc__, list(CONFIGS), "benchmarks/results/rnn_paths.json").parse_args(argv)

    data = api.load_data(api.DataConfig(input=args.data))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, oneDNN "
        f"{'on' if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled else 'off'}"
    )
    print(
        f"{'config':<16} {'model':<32} {'packed ms':>9} {'padded ms':>9} {'picks':>7} {'gain':>6}  (median of {args.rounds})"
    )
    results = {}
    for name in args.configs:
        config = CONFIGS[name]()
        steps, picks_padded = path_steps(config, data)
        timing = time_in_turns(steps, rounds=args.rounds, calls=args.steps, warmup=args.warmup)
        packed, padded = timing["packed"]["ms_per_step"], timing["padded"]["ms_per_step"]
        pick = "padded" if picks_padded else "packed"
        other = "packed" if picks_padded else "padded"
        gain = timing[other]["ms_per_step"] / timing[pick]["ms_per_step"]  # < 1: the pick is the slower
        c = config.model_config
        model = f"{config.model} {c.n_layers}x{c.n_hidden}, batch {config.train.batch_size}"
        print(f"{name:<16} {model:<32} {packed:9.2f} {padded:9.2f} {pick:>7} {gain:5.2f}x", flush=True)
        results[name] = {"model": model, "picks": pick, "gain": gain, **timing}

    write_json(args.out, {**run_info("rnn_paths", args), "configs": results})


if __name__ == "__main__":
    main()
