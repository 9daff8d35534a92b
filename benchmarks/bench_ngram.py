"""Count n-gram models on a words file (the lectures' names.txt): dev NLL and fit time.

Usage:
    python benchmarks/bench_ngram.py ../shared/data/names.txt [--repeats 7] [--out benchmarks/results/ngram.json]

Prints a table (orders 2-5; add-k with k=1 and k=0.01; interpolated Kneser-Ney) of the NLL per
character on the lectures' dev split, the median fit time (counting and building the
probability table) and the size of the saved count tables, and checks the published
order-2 NLL over all words (2.45401 for k=0, 2.45458 for k=1).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchlib import write_json  # benchmarks/benchlib.py
from makemore import api
from makemore.evaluate.scoring import evaluate_nll
from makemore.models import build_model, make_config

VARIANTS = [
    ("add-k k=1", {"smoothing": "add-k", "k": 1.0}),
    ("add-k k=0.01", {"smoothing": "add-k", "k": 0.01}),
    ("kneser-ney", {"smoothing": "kneser-ney", "discount": 0.75}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4, 5])
    parser.add_argument("--out", default="benchmarks/results/ngram.json")
    args = parser.parse_args()

    data = api.load_data(api.DataConfig(input=args.data))
    results: dict = {"data": args.data, "threads": torch.get_num_threads(), "rows": []}

    # the published whole-corpus bigram numbers
    all_corpus = api.EncodedCorpus.from_words(data.words, data.vocab)
    for k, expected in ((0.0, 2.45401), (1.0, 2.45458)):
        model = build_model("ngram", make_config("ngram", {"order": 2, "k": k}), data.vocab.size)
        batcher = model.batcher(all_corpus)
        model.fit_batcher(batcher)
        nll = evaluate_nll(model, batcher)
        ok = abs(nll - expected) < 1e-4
        results[f"all_words_order2_k{k:g}"] = nll
        print(
            f"order 2, k={k:g}, all {len(data.words)} words: NLL {nll:.5f} (published {expected}) {'OK' if ok else 'MISMATCH'}"
        )

    train, dev = data.corpus("train"), data.corpus("dev")
    print(
        f"\n{'order':>5} {'smoothing':<13} {'train NLL':>9} {'dev NLL':>8} {'fit ms':>8} {'table KB':>9}"
        f"  (median of {args.repeats})"
    )
    for order in args.orders:
        for label, opts in VARIANTS:
            model = build_model("ngram", make_config("ngram", {"order": order, **opts}), data.vocab.size)
            train_b, dev_b = model.batcher(train), model.batcher(dev)
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                model.fit_batcher(train_b)
                model(dev_b.X[:1])  # include building the probability table
                times.append((time.perf_counter() - started) * 1000)
            table_kb = sum(b.numel() * b.element_size() for b in model.state_dict().values()) / 1024
            row = {
                "order": order,
                "smoothing": label,
                "train_nll": evaluate_nll(model, train_b),
                "dev_nll": evaluate_nll(model, dev_b),
                "fit_ms_median": statistics.median(times),
                "fit_ms_all": times,
                "table_kb": table_kb,
            }
            results["rows"].append(row)
            print(
                f"{order:>5} {label:<13} {row['train_nll']:>9.4f} {row['dev_nll']:>8.4f} "
                f"{row['fit_ms_median']:>8.1f} {table_kb:>9.0f}"
            )

    write_json(args.out, results)


if __name__ == "__main__":
    main()
