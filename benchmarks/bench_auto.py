"""The study ``--preset auto`` is read from: every candidate of ``makemore.auto`` on lists of
200 to 3,000,000 items, for 30 s, 2 min and 10 min, scored on each list's held-out test split.

Lists (all written into ``--work``, never read from ../shared/data):

- ``names``: random subsets of the built-in names corpus (29,910 US baby names).
- ``words``: random subsets of a dictionary (``--words``, default /usr/share/dict/words from
  Debian's wamerican; words with an apostrophe dropped, case kept).
- ``packages``: generated package-style names with dots, dashes and digits (``package_names``).
- ``big``: ``scripts/make_synthetic_corpus.py``'s synthetic names (an order-4 Kneser-Ney model of
  the built-in corpus), 300,000 and 3,000,000 items.

Each list is split 80/10/10 as ``makemore train`` splits it (seed 42); the count model (Kneser-Ney,
orders 2-6) is fitted once per list, and each recurrent candidate is trained for each budget as
``makemore train --preset auto`` trains it when the rule picks that candidate
(``api.Auto(candidate=...)``). A candidate that stopped at its step cap (``max_epochs``) before a
budget ran out runs the same steps under a bigger budget (training is deterministic): that cell is
not trained again. Each row is appended to ``WORK/rows.jsonl`` as it ends, so an interrupted study
resumes; ``--shard I/N`` runs every N-th cell (two shards at once with ``--threads 1`` use both cores).

Usage:
    python benchmarks/bench_auto.py --plan                          # the cells, nothing trained
    python benchmarks/bench_auto.py --work /tmp/auto --shard 0/2 &  python benchmarks/bench_auto.py --work /tmp/auto --shard 1/2
    python benchmarks/bench_auto.py --work /tmp/auto --report       # the table (RESULTS.md "Auto") and JSON
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import statistics
import time
from pathlib import Path

from benchlib import run_info, write_json  # benchmarks/benchlib.py

REPO = Path(__file__).resolve().parents[1]
SIZES = {"names": [200, 1000, 5000, 29910], "words": [200, 1000, 5000, 30000], "packages": [200, 5000, 30000],
         "big": [3_000_000, 300_000]}  # fmt: skip
BUDGETS = ["30s", "2m", "10m"]


def seconds(budget: str) -> float:
    """A budget's label (``30s``, ``2m``, as ``--time`` reads it) in seconds."""
    from makemore.durations import parse_duration

    return parse_duration(budget)


ORDERS = (2, 3, 4, 5, 6)


def candidates_for(size: int, budget: str) -> list[str]:
    """The recurrent candidates tried on a list of ``size`` items at ``budget`` (the likely ones:
    the study's machine has two cores)."""
    if size <= 1000:
        return ["lstm-xs", "lstm-s", "default"]
    if size <= 5000:
        return ["lstm-xs", "lstm-s", "default", "lstm-m"]
    if size <= 30000:
        return ["lstm-s", "default", "lstm-m"]
    # lstm-l made 0.6-1.6 steps/s on one thread at 30 s (RESULTS.md "Auto"): not tried longer
    return ["default", "lstm-m"] + (["lstm-l"] if budget == "30s" else [])


# lists whose 10-minute cell trains only the rule's pick (the others: every candidate; cells not
# listed reuse a 2-minute run that stopped at its cap, the same run)
TEN_MINUTES = {("names", 29910): ["default", "lstm-m"], ("big", 3_000_000): None, ("words", 30000): ["lstm-m"],
               ("packages", 30000): ["lstm-m"], ("big", 300_000): ["lstm-m"], ("packages", 5000): ["lstm-m"]}  # fmt: skip


def package_names(n: int, words: list[str], seed: int) -> list[str]:
    """``n`` package-style names: a namespace with a dot now and then, 1-3 words joined by ``-``
    or ``_``, and digits or a version-like suffix on some (``py.tiny-cache2``, ``data_lens-v3``)."""
    rng = random.Random(seed)
    common = words[: max(50, len(words) // 20)]
    out = []
    for _ in range(n):
        parts = [rng.choice(common if rng.random() < 0.7 else words) for _ in range(rng.choice((1, 1, 2, 2, 3)))]
        name = rng.choice("--_").join(parts)
        if rng.random() < 0.15:
            name = rng.choice(("py", "django", "flask", "azure", "google", "jupyter", "aws")) + rng.choice(".-") + name
        roll = rng.random()
        if roll < 0.15:
            name += str(rng.randint(2, 9))
        elif roll < 0.22:
            name += f"-v{rng.randint(1, 4)}"
        elif roll < 0.27:
            name += f"{rng.randint(1, 3)}.{rng.randint(0, 9)}"
        out.append(name)
    return out


def make_lists(work: Path, words_file: Path, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], Path]:
    """The ``wanted`` lists of the study as files in ``work`` (each written once)."""
    import subprocess
    import sys

    from makemore import api

    lists: dict[tuple[str, int], Path] = {}
    names = api.read_words(api.builtin_path("names"))
    kinds = {kind for kind, _ in wanted}
    words = [w for w in words_file.read_text(encoding="utf-8").split() if "'" not in w] if kinds - {"names"} else []
    letters = sorted({w.lower() for w in words if w.isalpha() and w.isascii()})
    sources = {"names": names, "words": words, "packages": package_names(30000, letters, 7) if letters else []}
    for kind, items in sources.items():
        shuffled = random.Random(0).sample(items, len(items))
        for size in sorted(size for k, size in wanted if k == kind):
            path = work / f"{kind}-{size}.txt"
            if not path.exists():
                path.write_text("".join(w + "\n" for w in shuffled[:size]), encoding="utf-8")
            lists[kind, size] = path
    if "big" not in kinds:
        return lists
    big = work / "big-3000000.txt"
    if not big.exists():
        script = REPO / "scripts" / "make_synthetic_corpus.py"
        subprocess.run([sys.executable, str(script), "-n", "3000000", "-o", str(big)], check=True)
    small = work / "big-300000.txt"
    if not small.exists():
        with big.open(encoding="utf-8") as f:
            small.write_text("".join(next(f) for _ in range(300_000)), encoding="utf-8")
    lists["big", 3_000_000], lists["big", 300_000] = big, small
    return lists


def cells(lists: dict[tuple[str, int], Path], budgets: list[str]) -> list[dict]:
    """The study's cells in the order they run: count models, then each budget's candidates."""
    out = [{"kind": k, "size": s, "model": "count"} for k, s in lists]
    for budget in budgets:
        for kind, size in lists:
            for model in candidates_for(size, budget):
                cell = {"kind": kind, "size": size, "budget": budget, "model": model}
                if budget == "10m" and model not in (TEN_MINUTES.get((kind, size), [model]) or [model]):
                    cell["only_reuse"] = True  # the 2-minute run if it stopped at its cap, else not trained
                elif budget == "10m" and (kind, size) not in TEN_MINUTES:
                    cell["only_reuse"] = True
                out.append(cell)
    return out


def key(cell: dict) -> str:
    return "/".join(str(cell.get(k, "")) for k in ("kind", "size", "budget", "model", "seed"))


def count_row(cell: dict, path: Path) -> dict:
    """Kneser-Ney orders 2-6 on one list: each order's dev and test NLL, the order best on dev."""
    from makemore import api
    from makemore.evaluate.scoring import evaluate_nll
    from makemore.models import build_model, make_config

    data = api.load_data(api.DataConfig(input=str(path)))
    corpora = {split: data.corpus(split) for split in ("train", "dev", "test")}
    tried = []
    for order in ORDERS:
        model = build_model("ngram", make_config("ngram", {"order": order, "smoothing": "kneser-ney"}), data.vocab.size)
        started = time.perf_counter()
        model.fit_batcher(model.batcher(corpora["train"]))
        fit = time.perf_counter() - started
        nll = {s: evaluate_nll(model, model.batcher(c)) for s, c in corpora.items() if s != "train"}
        tried.append({"order": order, "dev": nll["dev"], "test": nll["test"], "seconds": fit})
    best = min(tried, key=lambda r: r["dev"])
    return {**cell, "dev": best["dev"], "test": best["test"], "order": best["order"], "seconds": best["seconds"],
            "best_test": min(r["test"] for r in tried), "orders": tried, "train_items": len(corpora["train"]),
            "train_targets": corpora["train"].num_targets}  # fmt: skip


def neural_row(cell: dict, path: Path, work: Path, threads: int) -> dict:
    """One candidate trained for one budget as --preset auto would train it; its dev and test NLL."""
    import shutil

    from makemore import api

    given = {"time_budget": seconds(cell["budget"]), "threads": threads, "seed": 1337 + cell.get("seed", 0)}
    config = api.RunConfig(auto=api.Auto(train_options=given, candidate=cell["model"]),
                           data=api.DataConfig(input=str(path)))  # fmt: skip
    out = run_dir(work, cell)
    started = time.perf_counter()
    try:
        metrics = api.train(config, out, progress=False, overwrite=True)
    except api.ConfigError as exc:  # the budget is too short for even one step of this candidate
        return {
            **cell,
            "dev": math.inf,
            "test": math.inf,
            "refused": str(exc),
            "seconds": time.perf_counter() - started,
        }
    wall = time.perf_counter() - started
    run = api.load_run(out)
    nll = api.evaluate(run, ("dev", "test"))
    choice = run.description.auto
    capped = metrics["steps"] >= choice["max_steps"]
    shutil.rmtree(out)
    return {**cell, "dev": nll["dev"], "test": nll["test"], "steps": metrics["steps"], "max_steps": choice["max_steps"],
            "capped": capped, "seconds": wall, "parameters": run.description.model.parameters}  # fmt: skip


def variant(text: str) -> tuple[str, dict, dict]:
    """``CANDIDATE[+FIELD=VALUE...]`` (``lstm-m+ema=0.999+n_hidden=384``) as (candidate, model
    options, training options); ``auto`` is the rule's own choice."""
    from makemore import api
    from makemore.auto import CANDIDATES

    name, *changes = text.split("+")
    model, train = {}, {}
    family = CANDIDATES[name].family if name != "auto" else "lstm"
    model_fields = {f.name for f in dataclasses.fields(api.make_config(family, {}))}
    for change in changes:
        field, value = change.split("=")
        number = float(value) if "." in value or "e" in value else int(value)
        (model if field in model_fields else train)[field] = number
    return name, model, train


def target_rows(args: argparse.Namespace) -> None:
    """``--target FILE``: each ``--variants`` on FILE's lecture split (dev NLL), with all threads,
    one after the other, per budget; rows appended to WORK/target.jsonl."""
    from makemore import api

    for budget in args.budgets:
        for text in args.variants:
            for seed in range(args.seeds):
                name, model, train = variant(text)
                given = {"time_budget": seconds(budget), "seed": 1337 + seed, **train}
                auto = api.Auto(model, given, candidate=None if name == "auto" else name)
                out = args.work / "target-run"
                started = time.perf_counter()
                metrics = api.train(api.RunConfig(auto=auto, data=api.DataConfig(input=str(args.target))), out,
                                    progress=False, overwrite=True)  # fmt: skip
                run = api.load_run(out)
                row = {"variant": text, "budget": budget, "seed": seed, "dev": metrics["dev_loss"],
                       "test": api.evaluate(run, ("test",))["test"], "steps": metrics["steps"],
                       "seconds": time.perf_counter() - started, "choice": run.description.auto}  # fmt: skip
                with (args.work / "target.jsonl").open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{budget} {text} seed {seed}: dev {row['dev']:.4f} ({row['steps']} steps, "
                      f"{row['seconds']:.0f} s)", flush=True)  # fmt: skip


def run_dir(work: Path, cell: dict) -> Path:
    return work / "runs" / key(cell).replace("/", "_")


def load_rows(work: Path) -> dict[str, dict]:
    path = work / "rows.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {key(r): r for r in rows}


def run_cells(args: argparse.Namespace, lists: dict, todo: list[dict]) -> None:
    """Train the shard's cells not yet in rows.jsonl (a capped smaller budget's row is reused)."""
    index, shards = map(int, args.shard.split("/"))
    for i, cell in enumerate(todo):
        if i % shards != index or key(cell) in load_rows(args.work) or run_dir(args.work, cell).exists():
            continue  # done, or being trained by another process
        path = lists[cell["kind"], cell["size"]]
        if cell["model"] == "count":
            row = count_row(cell, path)
        else:
            row = reused(cell, load_rows(args.work))
            if row is None and cell.pop("only_reuse", False):
                continue
            row = row or neural_row(cell, path, args.work, args.threads)
        with (args.work / "rows.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{key(cell)}: dev {row['dev']:.4f} test {row['test']:.4f} ({row['seconds']:.0f} s)", flush=True)


def reused(cell: dict, rows: dict[str, dict]) -> dict | None:
    """The row of the same candidate under a smaller budget that stopped at its cap (the same run)."""
    for smaller in [b for b in BUDGETS if seconds(b) < seconds(cell["budget"])]:
        row = rows.get(key({**cell, "budget": smaller}))
        if row and row.get("capped") and row["seconds"] < 0.9 * seconds(smaller):
            return {**row, "budget": cell["budget"], "reused": smaller}
    return None


NEURAL = ["lstm-xs", "lstm-s", "default", "lstm-m", "lstm-l"]


def auto_cell(count: dict, test: dict[str, float], dev: dict[str, float], budget: str) -> tuple[str, float]:
    """What --preset auto ends with on a cell: the rule's pick and, for a recurrent pick, the floor
    (the count model kept when better on dev; its orders as ``train/floor.py`` fits them)."""
    from makemore import auto

    stats = auto.Stats(count["train_items"], count["train_targets"], 0, 0)
    name, order, _ = auto.choose(stats, seconds(budget), auto.Auto())
    by_order = {r["order"]: r for r in count["orders"]}
    floor = min((by_order[o] for o in auto.count_orders(count["train_items"], order)), key=lambda r: r["dev"])
    if auto.CANDIDATES[name].counts:
        return f"count {floor['order']}", floor["test"]
    if name not in test:
        return f"{name} (not run)", math.nan
    from makemore.train.floor import MARGIN

    if floor["dev"] <= dev[name] + MARGIN:
        return f"{name} -> count {floor['order']}", floor["test"]
    return name, test[name]


def report(args: argparse.Namespace) -> dict:
    """The table per list and budget: the best count model, each candidate's test NLL, the best,
    and what auto ends with (the rule's pick, with its floor) beside the best count model."""
    from makemore import api

    rows = load_rows(args.work)
    count = {(r["kind"], r["size"]): r for r in rows.values() if r["model"] == "count"}
    for (kind, size), row in count.items():  # rows written before the targets were recorded
        if "train_targets" not in row:
            data = api.load_data(api.DataConfig(input=str(args.work / f"{kind}-{size}.txt")))
            row["train_targets"] = data.corpus("train").num_targets
    head = "| list | items | train targets | budget | count (order on dev) | best count on test | "
    lines = [head + " | ".join(NEURAL) + " | best | auto | auto - count |",
             "|---|---:|---:|---|---:|---:|" + "---:|" * len(NEURAL) + "---|---|---:|"]  # fmt: skip
    table = []
    for (kind, size), c in sorted(count.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        for budget in sorted({r["budget"] for r in rows.values() if r.get("budget")}, key=seconds):
            neural = [r for r in rows.values() if (r["kind"], r["size"], r.get("budget")) == (kind, size, budget)]
            if not neural:
                continue
            tests, devs = {}, {}
            for r in neural:
                tests.setdefault(r["model"], []).append(r["test"])
                devs.setdefault(r["model"], []).append(r["dev"])
            test = {m: statistics.median(v) for m, v in tests.items()}
            dev = {m: statistics.median(v) for m, v in devs.items()}
            oracle = min(c["orders"], key=lambda r: r["test"])
            best = min([("count", c["test"]), *test.items()], key=lambda t: t[1])
            chosen, auto_test = auto_cell(c, test, dev, budget)
            table.append({"kind": kind, "size": size, "train_items": c["train_items"],
                          "train_targets": c["train_targets"], "budget": budget, "count": c["test"],
                          "count_order": c["order"], "best_count_on_test": oracle["test"], "tests": test,
                          "devs": dev, "best": best[0], "auto": chosen, "auto_test": auto_test})  # fmt: skip
            shown = " | ".join(f"{test[m]:.4f}" if m in test else "" for m in NEURAL)
            lines.append(f"| {kind} | {size:,} | {c['train_targets']:,} | {budget} | {c['test']:.4f} ({c['order']}) | "
                         f"{oracle['test']:.4f} ({oracle['order']}) | {shown} | {best[0]} | {chosen} | "
                         f"{auto_test - c['test']:+.4f} |")  # fmt: skip
    print("\n".join(lines))
    targets = args.work / "target.jsonl"  # --target's rows (names.txt), when run
    done = [json.loads(line) for line in targets.read_text().splitlines()] if targets.exists() else []
    result = {**run_info("auto", args), "cells": table, "rows": list(rows.values()), "targets": done}
    write_json(args.out, result)
    return result


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/makemore-auto"), help="lists, runs and rows.jsonl")
    p.add_argument("--words", type=Path, default=Path("/usr/share/dict/words"), help="a dictionary, one word a line")
    p.add_argument("--budgets", nargs="+", default=BUDGETS, help="durations as --time reads them")
    p.add_argument("--lists", nargs="+", default=[f"{k}:{n}" for k, sizes in SIZES.items() for n in sizes],
                   help="KIND:SIZE (names, words, packages, big)")  # fmt: skip
    p.add_argument("--shard", default="0/1", help="I/N: run every N-th cell from the I-th")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of each training")
    p.add_argument("--plan", action="store_true", help="list the cells and stop")
    p.add_argument("--report", action="store_true", help="write the table and JSON of the rows so far")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "auto.json")
    p.add_argument("--target", type=Path, help="a words file (e.g. ../shared/data/names.txt): train --variants on it")
    p.add_argument("--variants", nargs="+", default=["auto"], help="CANDIDATE[+FIELD=VALUE...] or auto")
    p.add_argument("--seeds", type=int, default=1, help="--target: seeds of each variant")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.target:
        target_rows(args)
        return None
    if args.report:
        return report(args)
    lists = make_lists(args.work, args.words, {(k, int(n)) for k, n in (x.split(":") for x in args.lists)})
    todo = cells(lists, args.budgets)
    if args.plan:
        print("\n".join(key(c) for c in todo))
        return None
    run_cells(args, lists, todo)
    return None


if __name__ == "__main__":
    main()
