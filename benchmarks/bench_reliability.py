"""Reliability: nothing lost, nothing overwritten.

In a temporary directory, this script

* trains a tiny MLP and a tiny LSTM straight through (40 steps, a checkpoint every 5);
* runs ``--kills`` trials split over the two models, each in its own run directory: a new run
  is SIGKILLed (every second trial of a model inside a file write, the others at a random
  moment), resumed until it finishes and compared bit for bit with the uninterrupted run
  (checkpoints with optimizer and RNG state, metrics.jsonl, run.json);
* loads a checkpoint ``--loads`` times while another process rewrites it in a tight loop,
  counting errors and torn reads (a header of one write with the tensors of another);
* runs the table of bad inputs (``tests/reliability/bad_inputs.py``) when it is there: each
  must exit 2 with one line and leave every file as it was; reported per class (the case name's
  first word: train, sample, score, eval, checkpoint, ...);
* sends hostile requests to ``makemore serve`` on 127.0.0.1 (Host forms of DNS rebinding,
  Content-Length and request lines that are not HTTP/1.x, numbers that underflow, regexes that
  overflow or backtrack): each must get a whole HTTP answer, 4xx with a JSON error for the
  refused ones, never a 500;
* flips ``--flips`` random bits in the tensor data of a checkpoint and copies checkpoints between
  runs: each must be refused on load (checkpoint integrity and identity).

Usage:
    python benchmarks/bench_reliability.py [--kills 20] [--loads 1000] [--seed 0]
        [--out benchmarks/results/reliability.json]

Prints a table and writes JSON. The kill timing is random (``--seed``), so "landed" varies.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchlib import run_info, write_json  # benchmarks/benchlib.py

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability import harness  # noqa: E402  (needs the repository root on sys.path)

MODELS = ("mlp", "lstm")
STEPS = 40


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20, help="kill/resume trials, split over mlp and lstm")
    p.add_argument("--loads", type=int, default=1000, help="checkpoint loads during the torn-read race")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill timing and the bit flips")
    p.add_argument("--flips", type=int, default=50, help="random bit flips in a checkpoint's tensor data")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/reliability.json"))
    args = p.parse_args(argv)
    if args.kills < 0 or args.loads < 1:
        p.error("--kills must be >= 0 and --loads >= 1")
    return args


def kill_trials(base: Path, kills: int, seed: int) -> list[dict]:
    """``kills`` kill/resume trials, each compared with its model's uninterrupted run.

    Returns:
        one dict per trial: model, kind ("write" or "random"), the ``kill_and_resume`` result,
        ``identical`` and ``why`` (what differs), ``seconds``.
    """
    words = harness.write_corpus(base / "words.txt")
    straight = {
        m: (base / f"straight_{m}", harness.timed_train(base / f"straight_{m}", words, m, STEPS)) for m in MODELS
    }
    rng, trials = random.Random(seed), []
    for i in range(kills):
        model, during_write = MODELS[i % 2], (i // 2) % 2 == 1  # half of each model's trials in a write
        reference, seconds = straight[model]
        started = time.perf_counter()
        run_dir = base / f"trial_{i}_{model}"
        result = harness.kill_and_resume(run_dir, words, model, STEPS, 0.9 * seconds, during_write, rng)
        identical, why = harness.same_run(reference, run_dir)
        trials.append(
            dict(result, model=model, kind="write" if during_write else "random", identical=identical, why=why)
        )
        trials[-1]["seconds"] = time.perf_counter() - started
        print(f"  trial {i + 1}/{kills} {model} {trials[-1]['kind']}: {_trial_line(trials[-1])}", flush=True)
    return trials


def _trial_line(trial: dict) -> str:
    where = "before a checkpoint" if trial["stopped_at_step"] is None else f"at step {trial['stopped_at_step']}"
    landed = ("killed inside a write " if trial["during_write"] else "killed ") + where if trial["killed"] else "missed"
    return f"{landed}; {'bit-identical' if trial['identical'] else 'DIFFERS: ' + trial['why']}"


def bad_inputs(base: Path) -> dict | None:
    """Run the bad-input table of ``tests/reliability/bad_inputs.py`` if that module exists.

    Returns:
        ``tried``, ``clean`` and ``failures`` (name: problem), or None when it is not there.
    """
    if importlib.util.find_spec("tests.reliability.bad_inputs") is None:
        return None
    from tests.reliability import bad_inputs as table

    cases = table.bad_input_cases()
    template = table.make_template(base / "bad_inputs_template")
    failures = {}
    for i, case in enumerate(cases):
        passed, problem = table.run_case(case, template, base / f"bad_input_{i}")
        if not passed:
            failures[case.name] = problem
    return {"tried": len(cases), "clean": len(cases) - len(failures), "failures": failures}


def by_class(bad: dict | None, cases: list[str]) -> dict[str, dict[str, int]]:
    """Bad inputs tried and clean per class (the first word of a case's name)."""
    rows: dict[str, dict[str, int]] = {}
    for name in cases:
        row = rows.setdefault(name.split(":")[0].split()[0], {"tried": 0, "clean": 0})
        row["tried"] += 1
        row["clean"] += name not in (bad or {}).get("failures", {})
    return rows


def hostile_requests(run_dir: Path) -> dict[str, dict]:
    """Hostile requests per class against a live server of ``run_dir``: tried, clean, failures."""
    from makemore.serve import load_app, make_server
    from tests.serve.test_requests import REBINDING, exchange

    app = load_app([run_dir])
    server = make_server(app, "127.0.0.1", 0, quiet=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def post(body: str) -> bytes:
        data = body.encode()
        head = f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        return head.encode() + f"Content-Length: {len(data)}\r\n\r\n".encode() + data

    def host(value: str) -> bytes:
        return f"GET /api/runs HTTP/1.1\r\nHost: {value}\r\n\r\n".encode("iso-8859-1")

    probes = {
        "host forms": [(host(h.format(port=port, other=port + 1)), True) for h, _ in REBINDING]
        + [(b"GET /api/runs HTTP/1.1\r\nHost: localhost\r\nHost: evil.com\r\n\r\n", True)],
        "http framing": [
            (f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: \u00b2\r\n\r\n".encode(), True),
            (b"GARBAGE\r\n\r\n", True),
            (b"GET / HTTP/2.0\r\n\r\n", True),
        ],
        "numeric underflow": [
            (post(body), False)
            for body in ('{"n":1,"temperature":1e-308}', '{"n":1,"top_p":1e-320}', '{"n":1,"temperature":5e-324}')
        ],
        "regex bounds": [
            (post(body), False)
            for body in (
                '{"n":2,"regex":"a{4294967296}"}',
                '{"n":2,"regex":"a{1,99999999999999999999}"}',
                '{"n":1,"regex":"^(([a-z])+.)+[A-Z]([a-z])+$","min_len":40,"max_len":40}',
            )
        ],
    }
    rows = {}
    try:
        for name, requests in probes.items():
            failures = []
            for data, refused in requests:
                try:
                    status, _, body = exchange(port, data)
                    ok = status != 500 and (status >= 400 if refused else status < 500)  # e.g. 505 for HTTP/2.0
                except (AssertionError, OSError, ValueError) as exc:  # not a whole HTTP answer
                    ok, status, body = False, 0, str(exc).encode()
                if not ok:
                    failures.append(f"{data[:60]!r}: {status} {body[:80]!r}")
            rows[name] = {"tried": len(requests), "clean": len(requests) - len(failures), "failures": failures}
    finally:
        server.shutdown()
        server.server_close()
        app.close()
    return rows


def checkpoint_probes(run_dir: Path, other_dir: Path, flips: int, seed: int) -> dict[str, dict]:
    """Random bit flips in the tensor data of ``run_dir/best`` and checkpoints copied in from
    ``other_dir``: every one must be refused (a MakemoreError), and the original load again."""
    import shutil

    from makemore import api
    from makemore.errors import MakemoreError

    rng = random.Random(seed)
    best = run_dir / "best.safetensors"
    original = best.read_bytes()
    start = 8 + int.from_bytes(original[:8], "little")
    refused = 0
    for _ in range(flips):
        data = bytearray(original)
        data[rng.randrange(start, len(data))] ^= 1 << rng.randrange(8)
        best.write_bytes(bytes(data))
        try:
            api.load_run(run_dir)
        except MakemoreError:
            refused += 1
    best.write_bytes(original)
    api.load_run(run_dir)  # the original still loads
    copied = 0
    for which in ("best", "last"):
        saved = (run_dir / f"{which}.safetensors").read_bytes()
        shutil.copyfile(other_dir / f"{which}.safetensors", run_dir / f"{which}.safetensors")
        try:
            api.load_run(run_dir, which)
        except MakemoreError:
            copied += 1
        (run_dir / f"{which}.safetensors").write_bytes(saved)
    return {
        "integrity (bit flips)": {"tried": flips, "clean": refused, "failures": []},
        "identity (copied in)": {"tried": 2, "clean": copied, "failures": []},
    }


def summary(trials: list[dict]) -> dict:
    """Counts per model and in all: tried, landed, during a write, bit-identical."""
    rows = {}
    for name in (*MODELS, "all"):
        mine = [t for t in trials if name in (t["model"], "all")]
        rows[name] = {
            "tried": len(mine),
            "landed": sum(t["killed"] for t in mine),
            "during_write": sum(t["during_write"] for t in mine),
            "after_a_checkpoint": sum(t["killed"] and t["stopped_at_step"] is not None for t in mine),
            "identical": sum(t["identical"] for t in mine),
        }
    return rows


def print_classes(title: str, rows: dict[str, dict]) -> None:
    print(f"\n{title:<24}{'tried':>7}{'clean':>7}")
    for name, row in rows.items():
        print(f"{name:<24}{row['tried']:>7}{row['clean']:>7}")
        for problem in row.get("failures", [])[:5]:
            print(f"  {problem}")


def print_table(kills: dict, race: dict, bad: dict | None) -> None:
    print(f"\n{'kills':<8}{'tried':>7}{'landed':>8}{'in a write':>12}{'after a ckpt':>14}{'bit-identical':>15}")
    for name, row in kills.items():
        print(
            f"{name:<8}{row['tried']:>7}{row['landed']:>8}{row['during_write']:>12}"
            f"{row['after_a_checkpoint']:>14}{row['identical']:>15}"
        )
    print(f"\n{'loads':>7}{'errors':>8}{'torn':>6}{'writes seen':>13}")
    print(f"{race['loads']:>7}{race['errors']:>8}{race['torn']:>6}{race['distinct_steps']:>13}")
    if race["first_error"]:
        print(f"first error: {race['first_error']}")
    if bad is None:
        print("\nbad inputs: not measured")
    else:
        print(f"\nbad inputs tried {bad['tried']}, clean {bad['clean']}")
        for name, problem in bad["failures"].items():
            print(f"  {name}: {problem}")


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_reliability_") as tmp:
        base = Path(tmp)
        print(f"{args.kills} kill/resume trials ({STEPS}-step runs of {', '.join(MODELS)})", flush=True)
        trials = kill_trials(base, args.kills, args.seed)
        race = harness.torn_read_race(base / "race.safetensors", loads=args.loads, seed=args.seed)
        bad = bad_inputs(base)
        template = base / "bad_inputs_template"
        classes = by_class(bad, [case.name for case in _table().bad_input_cases()])
        requests = hostile_requests(template / "run")
        checkpoints = checkpoint_probes(template / "run", template / "ngram", args.flips, args.seed)
    kills = summary(trials)
    print_table(kills, race, bad)
    print_classes("bad inputs by class", classes)
    print_classes("hostile requests", requests)
    print_classes("checkpoints refused", checkpoints)
    result = run_info("reliability", args)
    result.update(kills=kills, trials=trials, torn_reads=race, bad_inputs=bad, seconds=time.perf_counter() - started)
    result.update(bad_input_classes=classes, hostile_requests=requests, checkpoint_probes=checkpoints)
    write_json(args.out, result)
    clean = kills["all"]["identical"] == len(trials) and not race["errors"] + race["torn"]
    probes = [*requests.values(), *checkpoints.values()]
    clean = clean and all(row["clean"] == row["tried"] for row in probes)
    return 0 if clean and (bad is None or not bad["failures"]) else 1


def _table():
    from tests.reliability import bad_inputs as table

    return table


if __name__ == "__main__":
    sys.exit(main())
