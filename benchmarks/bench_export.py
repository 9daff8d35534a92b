"""Exports: file sizes, what smaller weights cost, parity with PyTorch and speed, per family and weight type.

For each family (``--families``; ``default`` is the default preset, the model the issue's budgets
are about), a run is trained on the corpus with the family's own defaults for ``--steps`` steps
(enough for items that look like names), then exported with each weight type (``--weights``):

* sizes (kB, 1,000 bytes): the HTML page, the JavaScript module (.mjs), the ONNX file (neural
  models) and the ARPA file (count models, float32 row only: ARPA holds text);
* dNLL: how much the stored weights raise the dev NLL (``makemore.export.weights_cost``; a count
  model: its table as exported);
* err: the largest |log-probability - PyTorch's| over every token after 200 dev prefixes in
  onnxruntime, Node (the module's ``nextLogProbs``) and headless Chromium (the page's
  ``window.makemore.nextLogProbs``, from file://), PyTorch computing with the weights the file
  stores (the page, the module and ONNX int8: ``bundle.dequantized_model``; ONNX float16: the
  matrices and embeddings rounded to float16, as the ONNX export stores them);
* speed: Chromium's time from navigation to the first list shown ("page ms") and to generate
  that list of 20 names ("20 ms"), its names/s (``generate`` of ``--names`` items, no rejecting
  constraint, called again for 0.2 s at least: the page's clock is coarse); Node's module import
  and names/s (the same way); onnxruntime's names/s (a batched numpy sampler over the graph) and
  PyTorch's (``makemore.api.sample``), timed in turns (ratio "ort/pt").

Speeds are medians of ``--repeats`` (a page load, a Node process, a sampling round each). A tool
that is missing (node; chromium, chromedriver and selenium; onnxruntime) leaves its columns "-"
and a note under the table, as does a file a format cannot hold (e.g. an ARPA file of float16).

Usage:
    python benchmarks/bench_export.py ../shared/data/names.txt [--families default mlp lstm]
        [--steps 300] [--weights float32 float16 int8] [--names 500] [--repeats 3] [--no-browser]

Prints a table and writes JSON (default benchmarks/results/export.json).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchlib import run_info, write_json  # benchmarks/benchlib.py
from makemore import api
from makemore.evaluate.scoring import evaluate_nll
from makemore.export import weights_cost
from makemore.export.bundle import WEIGHT_TYPES, dequantized_model
from makemore.models import REGISTRY

REPO = Path(__file__).resolve().parents[1]
PRESET = "default"  # the --families name of the default preset
SUFFIXES = {"html": ".html", "js": ".mjs", "onnx": ".onnx", "arpa": ".arpa"}
PREFIXES = 200  # dev prefixes of the parity check
TOOLS = ("onnxruntime", "node", "chromium")
LEAST_MS = 200  # names/s in Node and Chromium: generate(n=--names) again (next seed) until this long has passed

# Node: import the module, generate 20 items, then --names items (for LEAST_MS at least), and (when asked)
# the prefixes' log-probabilities
NODE_SCRIPT = """\
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const request = JSON.parse(readFileSync(process.argv[2], "utf-8"));
let t0 = performance.now();
const mod = await import(pathToFileURL(request.module).href);
const out = { engine: mod.model.engine, load_ms: performance.now() - t0 };
t0 = performance.now();
mod.generate({ n: 20, seed: request.seed });
out.first20_ms = performance.now() - t0;
[out.found, out.calls, t0] = [0, 0, performance.now()];
do out.found += mod.generate({ n: request.names, seed: request.seed + out.calls++ }).length;
while (performance.now() - t0 < request.least_ms);
out.names_per_s = out.found / ((performance.now() - t0) / 1000);
if (request.prefixes) out.logprobs = mod.nextLogProbs(request.prefixes).map((row) => Array.from(row));
process.stdout.write(JSON.stringify(out));
"""
# Chromium: the page's hook (window.makemore) once its first list is shown, a timed generate, log-probabilities
OPENED = """const m = window.makemore;
return m && m.timings.first_ms !== null ? Object.assign({engine: m.model.engine}, m.timings) : null;"""
GENERATE = """const [options, leastMs] = arguments; let [found, calls] = [0, 0]; const t0 = performance.now();
do found += window.makemore.generate({...options, seed: options.seed + calls++}).items.length;
while (performance.now() - t0 < leastMs);
return [found, performance.now() - t0, calls];"""
LOG_PROBS = "return window.makemore.nextLogProbs(arguments[0]).map((row) => Array.from(row));"


class Bench:
    """What every measurement needs: the options, a work folder, the tools and the notes.

    (Plain classes here, no dataclasses: the tests import this script without registering it as a module.)
    """

    def __init__(self, args: argparse.Namespace, workdir: Path, missing: dict[str, str | None], shot: Any):
        self.args, self.workdir, self.shot = args, workdir, shot  # shot: scripts/screenshot_serve.py
        self.missing = missing  # tool -> why it cannot run (None: it can)
        self.notes: dict[str, list[str]] = {}  # message -> the rows it is about
        self.driver: Any = None  # Chromium's, when it runs

    def note(self, message: str, where: str) -> None:
        self.notes.setdefault(message, []).append(where)

    def attempt(self, tool: str, where: str, measure):
        """``measure()``, or None when ``tool`` is missing or fails (noted: a benchmark of many rows
        goes on; the note keeps the error)."""
        if self.missing.get(tool):
            return None
        try:
            return measure()
        except Exception as exc:  # noqa: BLE001 - any failure of one tool on one row: "-" and a note
            self.note(f"{tool} failed: {type(exc).__name__}: {str(exc).strip()[:300]}", where)
            return None


# --------------------------------------------------------------------------------------------- runs


def run_config(name: str, corpus: str, steps: int) -> api.RunConfig:
    """The family's own defaults (or the default preset) on ``corpus``, for ``steps`` steps."""
    config = api.preset_config(PRESET) if name == PRESET else api.RunConfig(model=name)
    train = config.train
    config.train = dataclasses.replace(
        train,
        steps=steps,
        eval_interval=steps,
        log_interval=max(1, steps // 10),
        warmup_steps=min(train.warmup_steps, steps // 5),
    )
    config.data = dataclasses.replace(config.data, input=corpus)
    return config


def dev_prefixes(data: api.Data, n: int = PREFIXES) -> list[str]:
    """``n`` dev items (test items after them, cycled when fewer), each cut at a seeded random place."""
    items = data.split.dev + data.split.test
    rng = random.Random(0)
    return [item[: rng.randint(0, len(item))] for item in (items * (n // len(items) + 1))[:n]]


@torch.no_grad()
def torch_log_probs(model, vocab: api.Vocab, prefixes: list[str]) -> np.ndarray:
    """``(n, V)`` PyTorch's log-probabilities of the token after each prefix (read after the boundary)."""
    model.eval()
    ids = {c: i + 1 for i, c in enumerate(vocab.chars)}
    out = np.zeros((len(prefixes), vocab.size), dtype=np.float32)
    for length in sorted({len(p) for p in prefixes}):
        rows = [i for i, p in enumerate(prefixes) if len(p) == length]
        idx = torch.tensor([[0, *(ids[c] for c in prefixes[i])] for i in rows])  # (B, 1 + length)
        logits, _ = model.next_token_logits(idx)
        out[rows] = torch.log_softmax(logits.float(), dim=-1).numpy()
    return out


def float16_model(model):
    """A copy of ``model`` with its float matrices and embeddings (two or more dimensions) rounded to
    float16, as the ONNX export stores them; vectors and scalars stay float32."""
    rounded = copy.deepcopy(model)
    state = {
        k: v.half().float() if v.is_floating_point() and v.dim() >= 2 else v for k, v in rounded.state_dict().items()
    }
    rounded.load_state_dict(state)
    return rounded.eval()


def max_error(rows, want: np.ndarray) -> float:
    """Largest |rows - want| where ``want`` is finite (JSON's null read as -inf).

    Raises:
        ValueError: another shape, or the infinite log-probabilities differ.
    """
    got = np.array([[-np.inf if x is None else x for x in row] for row in rows], dtype=np.float64)
    if got.shape != want.shape:
        raise ValueError(f"{got.shape} log-probabilities where PyTorch has {want.shape}")
    finite = np.isfinite(want)
    if (np.isfinite(got) != finite).any() or (got[~finite] != want[~finite]).any():
        raise ValueError("its infinite log-probabilities are not PyTorch's")
    return float(np.abs(got[finite] - want[finite]).max(initial=0.0))


def nll_change(run: api.Run, weights: str, data: api.Data) -> tuple[float | None, float | None]:
    """(dev NLL in float32, its increase with ``weights``): the export's own figure, or for a count model
    (whose weights are its table) the table as exported against the model."""
    if run.model.trains_by_gradient:
        return weights_cost(run, weights, data)
    dev = data.corpus("dev")
    if not len(dev):
        return None, None
    exact = evaluate_nll(run.model, run.model.batcher(dev))
    stored = dequantized_model(run, weights)
    return exact, evaluate_nll(stored, stored.batcher(dev)) - exact


# --------------------------------------------------------------------------------------------- files


def write_files(bench: Bench, run: api.Run, folder: Path, weights: str, where: str) -> dict[str, Path | None]:
    """Each format's file of ``run`` with ``weights`` (None: the format refuses it, noted)."""
    files: dict[str, Path | None] = {}
    for fmt, suffix in SUFFIXES.items():
        files[fmt] = None
        if fmt == "arpa" and (run.model.trains_by_gradient or weights != "float32"):
            continue  # count models only, and its text has no weight types
        try:
            data = api.export_bytes(run, api.ExportConfig(format=fmt, weights=weights))
        except api.MakemoreError as exc:
            bench.note(f"{fmt}: {exc}", where)
            continue
        files[fmt] = folder / f"{weights}{suffix}"
        files[fmt].write_bytes(data)
    return files


# --------------------------------------------------------------------------------------------- onnxruntime


class Graph:
    """An ONNX file in onnxruntime, and one step of it over a batch (whatever state its kind has)."""

    def __init__(self, session: Any, meta: dict):
        self.session, self.meta = session, meta  # meta: the file's "makemore" metadata

    @classmethod
    def load(cls, path: Path) -> Graph:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # as many as PyTorch samples with
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(session, json.loads(session.get_modelmeta().custom_metadata_map["makemore"]))

    def start(self, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The first state (zeros; a KV cache of 0 tokens) and context (boundaries) of ``n`` rows."""
        state = {
            s["input"]: np.zeros([n if a == "batch" else a for a in s["shape"]], np.float32) for s in self.meta["state"]
        }
        return state, np.zeros((n, self.meta["block_size"]), np.int64)

    def step(self, token: np.ndarray, state: dict, context: np.ndarray):
        """Feed ``(B,)`` tokens: ``(log-probabilities (B, V), the new state, the new context)``."""
        if self.meta["kind"] == "window":
            context = np.concatenate([context[:, 1:], token[:, None]], axis=1)  # (B, block_size)
            feeds = {"context": context}
        else:  # a recurrent state or a KV cache: the newest token only
            feeds = {"token": token, **state}
        names = [o["name"] for o in self.meta["outputs"]]
        out = dict(zip(names, self.session.run(names, feeds)))
        return out["logprobs"], {s["input"]: out[s["output"]] for s in self.meta["state"]}, context

    def keep(self, rows: np.ndarray, state: dict, context: np.ndarray):
        """The state and context of the rows ``rows`` (a boolean mask) only."""
        axes = {s["input"]: s["shape"].index("batch") for s in self.meta["state"]}
        return {k: np.compress(rows, v, axis=axes[k]) for k, v in state.items()}, context[rows]


def ort_log_probs(graph: Graph, prefixes: list[str]) -> np.ndarray:
    """``(n, V)`` the graph's log-probabilities after each prefix: all rows fed together, token by token."""
    ids = {c: i + 1 for i, c in enumerate(graph.meta["vocab"]["chars"])}
    sequences = [[0, *(ids[c] for c in p)] for p in prefixes]  # the boundary, then the prefix
    lengths = np.array([len(s) for s in sequences])
    tokens = np.zeros((len(sequences), lengths.max()), np.int64)  # (n, longest): padded with 0
    for i, s in enumerate(sequences):
        tokens[i, : len(s)] = s
    state, context = graph.start(len(prefixes))
    out = np.zeros((len(prefixes), graph.meta["vocab_size"]), np.float32)
    for t in range(tokens.shape[1]):
        logp, state, context = graph.step(tokens[:, t], state, context)
        out[lengths == t + 1] = logp[lengths == t + 1]
    return out


def ort_sample(graph: Graph, n: int, seed: int) -> list[str]:
    """``n`` items drawn with numpy from the graph (temperature 1, no constraints); ended rows are dropped."""
    meta, rng = graph.meta, np.random.default_rng(seed)
    V, chars = meta["num_chars"], meta["vocab"]["chars"]
    state, context = graph.start(n)
    token, rows = np.zeros(n, np.int64), np.arange(n)  # each batch row's last token and item
    tokens = np.zeros((n, meta["max_length"]), np.int64)
    for step in range(meta["max_length"]):
        logp, state, context = graph.step(token, state, context)
        logp = logp[:, :V].astype(np.float64)  # label tokens are never drawn
        if step == 0:
            logp[:, 0] = -np.inf  # no empty items
        cdf = np.cumsum(np.exp(logp - logp.max(axis=1, keepdims=True)), axis=1)  # (B, V)
        token = np.minimum((cdf < rng.random((len(rows), 1)) * cdf[:, -1:]).sum(axis=1), V - 1)
        tokens[rows, step] = token
        going = token != 0
        if not going.any():
            break
        rows, token = rows[going], token[going]
        state, context = graph.keep(going, state, context)
    ends = np.argmin(np.concatenate([tokens, np.zeros((n, 1), np.int64)], axis=1), axis=1)  # each row's first 0
    return ["".join(chars[t - 1] for t in row[:end]) for row, end in zip(tokens.tolist(), ends)]


def sampling_rates(bench: Bench, run: api.Run, graphs: dict[str, Graph]) -> dict[str, list[float]]:
    """Names/s of PyTorch (``api.sample``) and of onnxruntime over each weight type's graph, in turns."""
    names = bench.args.names
    samplers = {"pytorch": lambda n, seed: api.sample(run, api.SampleConfig(num=n, seed=seed))}
    samplers |= {w: (lambda n, seed, g=g: ort_sample(g, n, seed)) for w, g in graphs.items()}
    for sample in samplers.values():
        sample(20, 0)  # warm-up: first calls allocate
    rates: dict[str, list[float]] = {name: [] for name in samplers}
    for seed in range(1, bench.args.repeats + 1):
        for name, sample in samplers.items():
            started = time.perf_counter()
            found = len(sample(names, seed))
            rates[name].append(found / (time.perf_counter() - started))
    return rates


# --------------------------------------------------------------------------------------------- Node, Chromium


def node_figures(bench: Bench, module: Path, prefixes: list[str]) -> dict:
    """One Node process per repeat: import, the first 20 names, ``--names`` names; the log-probabilities once."""
    script = bench.workdir / "node_figures.mjs"
    script.write_text(NODE_SCRIPT)
    runs = []
    for seed in range(1, bench.args.repeats + 1):
        request = bench.workdir / "request.json"
        asked = dict(module=str(module), names=bench.args.names, seed=seed, least_ms=LEAST_MS)
        asked["prefixes"] = prefixes if seed == 1 else None
        request.write_text(json.dumps(asked))
        done = subprocess.run(
            [shutil.which("node"), str(script), str(request)], capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            raise RuntimeError((done.stderr.strip().splitlines() or ["no output"])[-1])
        runs.append(json.loads(done.stdout))
    return {"engine": runs[0]["engine"], "logprobs": runs[0].pop("logprobs"), "runs": runs}


def chromium_figures(bench: Bench, page: Path, prefixes: list[str]) -> dict:
    """One page load per repeat (its own first 20 names), ``--names`` names; the log-probabilities once."""
    driver, shot, runs, logprobs = bench.driver, bench.shot, [], None
    for seed in range(1, bench.args.repeats + 1):
        driver.get(page.as_uri())
        opened = shot.wait_until(driver, lambda d: d.execute_script(OPENED) or shot.error_text(d), "the first list")
        if isinstance(opened, str):
            raise RuntimeError(f"the page shows an error: {opened}")
        found, ms, calls = driver.execute_script(GENERATE, {"n": bench.args.names, "seed": seed}, LEAST_MS)
        runs.append({**opened, "found": found, "calls": calls, "names_per_s": found / (ms / 1000)})
        if logprobs is None:
            logprobs = driver.execute_script(LOG_PROBS, prefixes)
    return {"engine": runs[0]["engine"], "logprobs": logprobs, "runs": runs}


def median_of(figures: dict | None, key: str) -> float | None:
    return None if figures is None else statistics.median(run[key] for run in figures["runs"])


# --------------------------------------------------------------------------------------------- rows


def parity(bench: Bench, tool: str, where: str, figures: dict | None, want: np.ndarray) -> float | None:
    if figures is None:
        return None
    return bench.attempt(tool, where, lambda: max_error(figures.pop("logprobs"), want))


def weight_row(bench: Bench, run: api.Run, name: str, weights: str, files: dict, context: dict) -> dict:
    """One row of the table: ``run`` exported with ``weights`` (``files``), measured."""
    where, prefixes, graph = f"{name} {weights}", context["prefixes"], context["graphs"].get(weights)
    dev_nll, change = nll_change(run, weights, context["data"])
    row: dict[str, Any] = {"family": name, "weights": weights, "dev_nll": dev_nll, "nll_change": change}
    row |= {f"size_{fmt}": (path.stat().st_size if path else None) for fmt, path in files.items()}
    stored = torch_log_probs(dequantized_model(run, weights), run.vocab, prefixes)
    row["error_onnxruntime"] = None
    if graph is not None:
        want = stored  # int8: the page's weights, which the ONNX file stores
        if weights != "int8":
            model = float16_model(run.model) if weights == "float16" else run.model
            want = torch_log_probs(model, run.vocab, prefixes)
        row["error_onnxruntime"] = bench.attempt(
            "onnxruntime", where, lambda: max_error(ort_log_probs(graph, prefixes), want)
        )
    node = chromium = None
    if files["js"] is not None:
        node = bench.attempt("node", where, lambda: node_figures(bench, files["js"], prefixes))
    if files["html"] is not None:
        chromium = bench.attempt("chromium", where, lambda: chromium_figures(bench, files["html"], prefixes))
    row["error_node"] = parity(bench, "node", where, node, stored)
    row["error_chromium"] = parity(bench, "chromium", where, chromium, stored)
    row["chromium_shown_ms"] = median_of(chromium, "shown_at_ms")
    row["chromium_first20_ms"] = median_of(chromium, "first_ms")
    row["chromium_names_per_s"] = median_of(chromium, "names_per_s")
    row["node_load_ms"] = median_of(node, "load_ms")
    row["node_names_per_s"] = median_of(node, "names_per_s")
    rates = context["rates"] or {}
    ort, pytorch = rates.get(weights), rates.get("pytorch")
    row["onnxruntime_names_per_s"] = statistics.median(ort) if ort else None
    row["pytorch_names_per_s"] = statistics.median(pytorch) if pytorch else None
    row["ort_vs_pytorch"] = row["onnxruntime_names_per_s"] / row["pytorch_names_per_s"] if ort and pytorch else None
    row["details"] = {"node": node, "chromium": chromium}  # every run of each
    return row


def measure_family(bench: Bench, name: str) -> tuple[dict, list[dict]]:
    """Train ``name``, export it with every weight type and measure each: (the run's facts, its rows)."""
    folder = bench.workdir / name
    started = time.perf_counter()
    api.train(run_config(name, bench.args.corpus, bench.args.steps), folder / "run", progress=False)
    run = api.load_run(folder / "run")
    trained_s = time.perf_counter() - started
    data = api.training_data(run)
    files = {w: write_files(bench, run, folder, w, f"{name} {w}") for w in bench.args.weights}
    graphs = {}
    for weights, written in files.items():
        if written["onnx"] is not None:
            graph = bench.attempt("onnxruntime", f"{name} {weights}", lambda p=written["onnx"]: Graph.load(p))
            graphs |= {weights: graph} if graph else {}
    rates = bench.attempt("pytorch", name, lambda: sampling_rates(bench, run, graphs))
    context = dict(data=data, prefixes=dev_prefixes(data), graphs=graphs, rates=rates)
    rows = [weight_row(bench, run, name, w, files[w], context) for w in bench.args.weights]
    params = sum(p.numel() for p in run.model.parameters())
    print(
        f"{name}: {params:,} parameters, trained in {trained_s:.0f} s, all done in {time.perf_counter() - started:.0f} s"
    )
    return {"model": run.config.model, "parameters": params, "train_s": trained_s, "sampling_rounds": rates}, rows


# --------------------------------------------------------------------------------------------- output


def kilobytes(key: str):
    return lambda r: None if r.get(key) is None else f"{r[key] / 1000:,.0f}"


def number(key: str, spec: str):
    return lambda r: None if r.get(key) is None else format(r[key], spec)


COLUMNS = [  # (header, width, cell text or None for "-")
    ("family", 11, lambda r: r["family"]),
    ("weights", 7, lambda r: r["weights"]),
    ("html kB", 7, kilobytes("size_html")),
    ("mjs kB", 7, kilobytes("size_js")),
    ("onnx kB", 7, kilobytes("size_onnx")),
    ("arpa kB", 7, kilobytes("size_arpa")),
    ("dNLL", 8, number("nll_change", "+.5f")),
    ("err ort", 7, number("error_onnxruntime", ".0e")),
    ("err node", 8, number("error_node", ".0e")),
    ("err chr", 7, number("error_chromium", ".0e")),
    ("page ms", 7, number("chromium_shown_ms", ".0f")),
    ("20 ms", 5, number("chromium_first20_ms", ".0f")),
    ("chr n/s", 7, number("chromium_names_per_s", ",.0f")),
    ("node ms", 7, number("node_load_ms", ".0f")),
    ("node n/s", 8, number("node_names_per_s", ",.0f")),
    ("ort n/s", 7, number("onnxruntime_names_per_s", ",.0f")),
    ("pt n/s", 7, number("pytorch_names_per_s", ",.0f")),
    ("ort/pt", 6, number("ort_vs_pytorch", ".2f")),
]


def table_line(cells: list[str]) -> str:
    """Cells padded to their columns' widths: family and weights to the left, the figures to the right."""
    return " ".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, (_, w, _)) in enumerate(zip(cells, COLUMNS)))


def print_table(rows: list[dict], notes: dict[str, list[str]]) -> None:
    print("\n" + table_line([header for header, _, _ in COLUMNS]))
    for row in rows:
        print(table_line([cell(row) or "-" for _, _, cell in COLUMNS]))
    if notes:
        print("\nnotes:")
    for message, where in notes.items():
        print(f"- {message} ({', '.join(dict.fromkeys(where))})")


def tools_missing(args) -> dict[str, str | None]:
    """Why each tool cannot run on this machine (None: it can)."""
    shot = screenshot_serve()
    browser = shot.missing_browser()
    return {
        "pytorch": None,
        "onnxruntime": None
        if importlib.util.find_spec("onnxruntime")
        else "not installed (pip install 'makemore[export]')",
        "node": None if shutil.which("node") else "node is not on PATH",
        "chromium": "--no-browser" if not args.browser else (f"missing {', '.join(browser)}" if browser else None),
    }


def screenshot_serve():
    """scripts/screenshot_serve.py, which starts headless Chromium for the browser tests too."""
    if "screenshot_serve" not in sys.modules:
        spec = importlib.util.spec_from_file_location("screenshot_serve", REPO / "scripts" / "screenshot_serve.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # (its dataclasses look their module up there)
        spec.loader.exec_module(module)
    return sys.modules["screenshot_serve"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", help="words file to train on, e.g. ../shared/data/names.txt")
    families = [PRESET, *REGISTRY]
    parser.add_argument("--families", nargs="+", default=families, choices=families, help="default: the preset too")
    parser.add_argument("--steps", type=int, default=300, help="training steps of each family")
    parser.add_argument("--weights", nargs="+", default=list(WEIGHT_TYPES), choices=WEIGHT_TYPES)
    parser.add_argument("--names", type=int, default=500, help="items generated for names/s")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (the median is reported)")
    parser.add_argument("--browser", action=argparse.BooleanOptionalAction, default=True, help="measure in Chromium")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/export.json"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
        bench = Bench(args, Path(workdir), tools_missing(args), screenshot_serve())
        for tool in TOOLS:
            if bench.missing[tool]:
                bench.note(f"{tool}: {bench.missing[tool]}", "every row")
        if not bench.missing["chromium"]:
            bench.driver = bench.attempt(
                "chromium", "every row", lambda: stack.enter_context(bench.shot.chromium(workdir))
            )
            bench.missing["chromium"] = None if bench.driver else "did not start"
        result = {**run_info("export", args), "tools": bench.missing, "families": {}, "rows": []}
        for name in args.families:
            result["families"][name], rows = measure_family(bench, name)
            result["rows"] += rows
    print(
        f"\n{args.steps} training steps; sizes in kB (1,000 bytes); speeds: medians of {args.repeats}, {args.names} names"
    )
    print_table(result["rows"], bench.notes)
    result["notes"] = bench.notes
    write_json(args.out, result)


if __name__ == "__main__":
    main()
