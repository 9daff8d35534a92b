"""Every stage on lists of millions of items: seconds and peak memory per stage and corpus size.

Usage:
    python benchmarks/bench_scale.py [--sizes 30000 1000000 10000000] [--corpus-dir DIR]
        [--train-items 2000000] [--out benchmarks/results/scale.json]

The corpora are synthetic names (``scripts/make_synthetic_corpus.py``: an order-4 Kneser-Ney
model of the built-in names, mean 6.2 characters), written into ``--corpus-dir`` (default: a
temporary directory) unless already there as ``synthetic-N.txt``. For each size, each stage
runs in a fresh process, so its peak RSS (``os.wait4``) is its own:

* ``read``: ``load_data`` and the train and dev corpora (parse, encode, the lecture split);
* ``dedupe``: the first occurrences of the items (``--dedupe``; the file already read);
* ``ngram``: fitting an order-5 Kneser-Ney model to the train split (counts and table);
* ``step``: one training step of the default preset (2-layer LSTM), median (and mean) of
  ``--steps`` steps after 3 warm-up steps;
* ``eval``: the NLL of the whole dev split (a tenth of the items) under the default LSTM, as
  the final report computes it (``scoring.nll_sum_count``: length-sorted chunks);
* ``sample``: 10,000 ``--new-only`` items from an order-4 count model of the file (reading the
  training items again included; the run is trained beforehand in its own process).

The seconds are those of the stage itself (imports and, but for ``read``, reading the file
excluded); the RSS is the whole process's. ``train200`` is ``makemore train -i FILE --steps
200`` (the default preset) at ``--train-items`` items: wall time and peak RSS of the command.
``--processes`` adds the same run trained by 1 and 2 processes (torchrun, gloo).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import write_json  # benchmarks/benchlib.py

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("read", "dedupe", "ngram", "step", "eval", "sample")


def corpus_path(directory: Path, n: int) -> Path:
    """The synthetic corpus of ``n`` items in ``directory``, made by the script if missing."""
    path = directory / f"synthetic-{n}.txt"
    if not path.exists():
        script = ROOT / "scripts" / "make_synthetic_corpus.py"
        subprocess.run([sys.executable, str(script), "-n", str(n), "-o", str(path)], check=True, capture_output=True)
    return path


def run_stage(stage: str, path: Path, options: dict, inline: bool) -> dict:
    """One stage's row: its own seconds and what it reports, the wall time and peak RSS of its process."""
    if inline:  # the smoke test: no process per stage (the RSS is then this process's so far)
        import resource

        started = time.perf_counter()
        row = CHILD[stage](path, options)
        return {**row, "wall_s": time.perf_counter() - started, "rss_mb": _self_rss_mb(resource)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", stage, str(path), json.dumps(options)]
    out, wall, rss = measured(command)
    return {**json.loads(out.strip().splitlines()[-1]), "wall_s": wall, "rss_mb": rss}


def _self_rss_mb(resource) -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measured(command: list[str], env: dict | None = None) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS in MB) of a command run in its own process (its own
    rusage: ``os.wait4`` on its pid, not ``RUSAGE_CHILDREN``'s maximum over all children)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{err.read()[-2000:]}")
        return out.read(), wall, usage.ru_maxrss / 1024


# -- the stages, each run in its own process (``--child``) ----------------------------------


def _load(path: Path, **data):
    from makemore import api

    return api.load_data(api.DataConfig(input=str(path), **data))


def stage_read(path: Path, options: dict) -> dict:
    started = time.perf_counter()
    data = _load(path)
    train, dev = data.corpus("train"), data.corpus("dev")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "items": data.num_items, "train": len(train), "dev": len(dev),
            "dtype": str(train.tokens.dtype).replace("torch.", "")}  # fmt: skip


def stage_dedupe(path: Path, options: dict) -> dict:
    from makemore.data.itemsets import first_occurrences

    data = _load(path)
    started = time.perf_counter()
    kept = first_occurrences(data.items)
    return {"seconds": time.perf_counter() - started, "kept": kept.numel()}


def stage_ngram(path: Path, options: dict) -> dict:
    import torch

    from makemore.models import build_model, make_config

    data = _load(path)
    model = build_model("ngram", make_config("ngram", {"order": 5, "smoothing": "kneser-ney"}), data.vocab.size)
    batcher = model.batcher(data.corpus("train"))
    started = time.perf_counter()
    model.fit_batcher(batcher)
    model(torch.zeros(1, 4, dtype=torch.int64))  # the probability table is built too
    return {"seconds": time.perf_counter() - started, "contexts": model.order5_context_ids.numel()}


def _default_model(data):
    """The default preset's config and model for ``data``, as ``makemore train`` builds them."""
    from makemore import api
    from makemore.train.plan import build

    return build(api.RunConfig(), data)


def stage_step(path: Path, options: dict) -> dict:
    import torch

    from makemore.train.trainer import Trainer

    torch.set_num_threads(options["threads"])
    data = _load(path)
    config, model = _default_model(data)
    trainer = Trainer(model, model.batcher(data.corpus("train")), config.train)
    for _ in range(3):
        trainer.step()
    times = []
    for _ in range(options["steps"]):
        started = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - started)
    return {"seconds": statistics.median(times), "mean_s": statistics.mean(times), "steps": len(times)}


def stage_eval(path: Path, options: dict) -> dict:
    import torch

    from makemore.evaluate import scoring

    torch.set_num_threads(options["threads"])
    data = _load(path)
    _, model = _default_model(data)
    batcher = model.batcher(data.corpus("dev"))
    started = time.perf_counter()
    total, count = scoring.nll_sum_count(model, batcher)
    return {"seconds": time.perf_counter() - started, "dev_items": len(batcher.corpus), "nll": total / count}


def stage_prepare_sample(path: Path, options: dict) -> dict:
    from makemore import api

    config = api.RunConfig(
        model="ngram",
        model_config=api.make_config("ngram", {"order": 4, "smoothing": "kneser-ney"}),
        data=api.DataConfig(input=str(path)),
    )
    api.train(config, options["run"], progress=False, overwrite=True)
    return {"seconds": 0.0}


def stage_sample(path: Path, options: dict) -> dict:
    from makemore import api

    run = api.load_run(options["run"])
    started = time.perf_counter()
    items = api.sample(run, api.SampleConfig(num=options["samples"], seed=0, new_only=True, batch_size=10_000))
    seconds = time.perf_counter() - started
    known = api.training_items(run)
    assert not any(known.contains(items).tolist())
    return {"seconds": seconds, "sampled": len(items)}


CHILD = {
    "read": stage_read,
    "dedupe": stage_dedupe,
    "ngram": stage_ngram,
    "step": stage_step,
    "eval": stage_eval,
    "prepare-sample": stage_prepare_sample,
    "sample": stage_sample,
}


# -- the commands ---------------------------------------------------------------------------


def train200(path: Path, steps: int, directory: Path) -> dict:
    """``makemore train -i FILE --steps S`` (the default preset): wall time and peak RSS."""
    command = [sys.executable, "-m", "makemore", "train", "-i", str(path), "-o", str(directory / "train200")]
    _, wall, rss = measured([*command, "--steps", str(steps), "--overwrite", "-q"])
    return {"seconds": wall, "wall_s": wall, "rss_mb": rss, "steps": steps}


def process_rows(path: Path, steps: int, directory: Path, counts: tuple[int, ...] = (1, 2)) -> list[dict]:
    """Rows of the default preset trained by K processes (torchrun, gloo, one thread each):
    wall time, peak RSS of the launcher's process tree's biggest member, and the median
    steps/s of the metrics rows."""
    rows = []
    for k in counts:
        out = directory / f"procs{k}"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={k}"]
        command += ["-m", "makemore", "train", "-i", str(path), "-o", str(out), "--steps", str(steps)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        _, wall, rss = measured([*command, "--overwrite", "-q", "--log-interval", "10"], env)
        metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        rates = [row["steps_per_s"] for row in metrics if "steps_per_s" in row]
        rows.append({"processes": k, "seconds": wall, "wall_s": wall, "rss_mb": rss, "steps": steps,
                     "steps_per_s": statistics.median(rates) if rates else None})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="*", default=[30_000, 1_000_000, 10_000_000])
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    p.add_argument("--corpus-dir", type=Path, help="where the synthetic corpora are (or are written)")
    p.add_argument("--train-items", type=int, default=2_000_000, help="items of the train200 row (0: none)")
    p.add_argument("--train-steps", type=int, default=200)
    p.add_argument("--processes", action="store_true", help="also the 1- and 2-process torchrun rows")
    p.add_argument("--steps", type=int, default=120, help="timed steps of the step stage (a pool is 100)")
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--inline", action="store_true", help="run the stages in this process (smoke test)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    p.add_argument("--child", nargs=3, metavar=("STAGE", "FILE", "OPTIONS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        stage, path, options = args.child
        print(json.dumps(CHILD[stage](Path(path), json.loads(options))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        directory = args.corpus_dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        result = {"benchmark": "scale", "args": {k: str(v) for k, v in vars(args).items()}, "rows": []}
        print(f"{'items':>11} {'stage':<12} {'seconds':>9} {'peak RSS MB':>12}  notes")
        for n in args.sizes:
            path = corpus_path(directory, n)
            options = {"steps": args.steps, "threads": args.threads, "samples": args.samples, "run": f"{tmp}/run{n}"}
            for stage in args.stages:
                if stage == "sample":
                    run_stage("prepare-sample", path, options, args.inline)
                _report(result, n, stage, run_stage(stage, path, options, args.inline))
        if args.train_items:
            path = corpus_path(directory, args.train_items)
            _report(result, args.train_items, "train200", train200(path, args.train_steps, Path(tmp)))
            if args.processes:
                for row in process_rows(path, args.train_steps, Path(tmp)):
                    _report(result, args.train_items, f"{row['processes']} process", row)
    write_json(args.out, result)


def _report(result: dict, n: int, stage: str, row: dict) -> None:
    row = {"items": n, "stage": stage, **row}
    result["rows"].append(row)
    notes = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                      if k not in ("items", "stage", "seconds", "rss_mb"))  # fmt: skip
    print(f"{n:>11,} {stage:<12} {row['seconds']:>9.3f} {row['rss_mb']:>12.0f}  {notes}", flush=True)


if __name__ == "__main__":
    main()
