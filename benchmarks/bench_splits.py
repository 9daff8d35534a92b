"""Your own splits: our n-grams and neural presets on a published train/val/test split, beside
EurekaLabsAI/ngram's 4-gram (val 2.1118, test 2.1064 NLL per character, end included).

The data is read as ``makemore train -i TRAIN --dev-input VAL --test-input TEST`` reads it:
every item of TRAIN trains, VAL and TEST are evaluated (the vocabulary covers all three).

Both count the same predictions (each character and the end of each item, 27 tokens for
a-z names), but the contexts differ: EurekaLabsAI/ngram reads each file as one stream, so the
context of an item's first characters is the end of the item before it, while makemore starts
every item after n-1 boundary tokens ("the start of an item"), which tells the model more.
Their grid (orders 3-5, add-k 0.03-1, chosen on val) is inside ours.

- n-grams: orders 3-5 (``--orders``), add-k and interpolated Kneser-Ney; like the published
  figures, each smoothing's parameter (k, or the discount D) is the one of ``--ks`` /
  ``--discounts`` with the best val NLL, and its test NLL is reported beside it.
- neural: each preset (``--presets``) trained for ``--time`` (default 2m; or ``--steps``), as
  ``makemore train --preset P --time T`` trains it; the best checkpoint's val and test NLL.

Usage:
    python benchmarks/bench_splits.py                       # ../shared/data/ngram-split, 2m per preset
    python benchmarks/bench_splits.py --time 5m --presets default best
    python benchmarks/bench_splits.py --train t.txt --val v.txt --test s.txt --steps 50   # a quick look

Writes a table to stdout and JSON to --out (default benchmarks/results/splits.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from benchlib import run_info, write_json  # benchmarks/benchlib.py

REPO = Path(__file__).resolve().parents[1]
SPLIT_DIR = REPO.parent / "shared" / "data" / "ngram-split"  # never copied into the repo
PUBLISHED = {"model": "EurekaLabsAI/ngram 4-gram (published)", "val_nll": 2.1118, "test_nll": 2.1064}
KS = [0.01, 0.03, 0.1, 0.3, 1.0]
DISCOUNTS = [0.5, 0.6, 0.75, 0.85, 0.95]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from makemore.api import PRESETS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=Path, default=SPLIT_DIR / "train.txt", help="training file")
    p.add_argument("--val", type=Path, default=SPLIT_DIR / "val.txt", help="validation (dev) file")
    p.add_argument("--test", type=Path, default=SPLIT_DIR / "test.txt", help="test file")
    p.add_argument("--orders", type=int, nargs="*", default=[3, 4, 5], help="n-gram orders (none: no n-grams)")
    p.add_argument("--ks", type=float, nargs="+", default=KS, help="add-k pseudo counts tried (best val kept)")
    p.add_argument("--discounts", type=float, nargs="+", default=DISCOUNTS, help="Kneser-Ney discounts tried")
    p.add_argument("--presets", nargs="*", default=list(PRESETS), choices=list(PRESETS), help="neural presets")
    p.add_argument("--time", default="2m", help="training time of each preset (makemore train --time)")
    p.add_argument("--steps", type=int, default=0, help="train each preset this many steps instead of --time")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "splits.json")
    return p.parse_args(argv)


def data_config(args: argparse.Namespace):
    from makemore import api

    return api.DataConfig(input=str(args.train), dev_input=str(args.val), test_input=str(args.test))


def ngram_rows(data, orders: list[int], ks: list[float], discounts: list[float]) -> list[dict]:
    """Per order and smoothing: the parameter with the best val NLL, its val and test NLL, the fit time."""
    from makemore.evaluate.scoring import evaluate_nll
    from makemore.models import build_model, make_config

    corpora = {split: data.corpus(split) for split in ("train", "dev", "test")}
    rows = []
    for order in orders:
        for smoothing, name, values in (("add-k", "k", ks), ("kneser-ney", "discount", discounts)):
            tried = []
            for value in values:
                model = build_model("ngram", make_config("ngram", {"order": order, "smoothing": smoothing, name: value}),
                                    data.vocab.size)  # fmt: skip
                started = time.perf_counter()
                model.fit_batcher(model.batcher(corpora["train"]))
                fit_s = time.perf_counter() - started
                nll = {split: evaluate_nll(model, model.batcher(c)) for split, c in corpora.items() if split != "train"}
                tried.append({name: value, "val_nll": nll["dev"], "test_nll": nll["test"], "train_s": fit_s})
            best = min(tried, key=lambda row: row["val_nll"])
            rows.append({"model": f"ngram order {order} {smoothing} ({name}={best[name]:g})", "kind": "ngram",
                         "order": order, "smoothing": smoothing, **best, "tried": tried})  # fmt: skip
    return rows


def preset_row(preset: str, args: argparse.Namespace, work: Path) -> dict:
    """One preset trained on the split (for ``--time``, or ``--steps``) and evaluated from its best checkpoint."""
    from makemore import api

    config = api.preset_config(preset)
    train = {"time_budget": api.parse_duration(args.time)} if not args.steps else {"steps": args.steps}
    if args.steps:  # a short run still evaluates (and keeps a best checkpoint) on the way
        train["eval_interval"] = min(config.train.eval_interval, args.steps)
        train["log_interval"] = min(config.train.log_interval, args.steps)
    config = dataclasses.replace(config, data=data_config(args), train=dataclasses.replace(config.train, **train))
    started = time.perf_counter()
    api.train(config, work / preset, progress=False)
    train_s = time.perf_counter() - started
    run = api.load_run(work / preset)
    nll = api.evaluate(run, ("dev", "test"))
    return {"model": f"preset {preset} ({run.config.model}, {run.description.model.parameters:,} parameters)",
            "kind": "preset", "preset": preset, "val_nll": nll["dev"], "test_nll": nll["test"], "train_s": train_s,
            "steps": run.description.step}  # fmt: skip


def table(rows: list[dict]) -> str:
    """The rows (and the published figures) as a Markdown table."""
    lines = ["| model | val NLL | test NLL | train time |", "|---|---:|---:|---:|"]
    lines.append(f"| {PUBLISHED['model']} | {PUBLISHED['val_nll']:.4f} | {PUBLISHED['test_nll']:.4f} | |")
    for row in rows:
        lines.append(f"| {row['model']} | {row['val_nll']:.4f} | {row['test_nll']:.4f} | {row['train_s']:.2f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    from makemore import api

    args = parse_args(argv)
    data = api.load_data(data_config(args))
    print(f"train {data.files['train'].items:,} items, val {data.files['dev'].items:,}, test "
          f"{data.files['test'].items:,}; vocabulary {len(data.vocab.chars)} characters")  # fmt: skip
    rows = ngram_rows(data, args.orders, args.ks, args.discounts)
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            rows.append(preset_row(preset, args, Path(tmp)))
            print(f"  {rows[-1]['model']}: val {rows[-1]['val_nll']:.4f}", flush=True)
    print(table(rows))
    files = {split: dataclasses.asdict(f) for split, f in data.files.items()}
    result = {**run_info("splits", args), "files": files, "published": PUBLISHED, "rows": rows}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
