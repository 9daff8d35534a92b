"""What the server answers, without HTTP: runs loaded once, requests in, JSON-ready dicts (or PNG
bytes) out, through the public API. Unit-testable without a socket.

Everything a request can read is read at start-up (``load_app``): each run's checkpoint, the items
of its training file (for the new / in-training-data marks, the dev/test NLL and the bigram counts)
and its ``metrics.jsonl`` (the loss curve); the studio adds runs the same way (``App.add_run``). After
that no request reaches the filesystem: the plots are rendered in memory, once each, and kept.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from makemore import api, options, plots
from makemore.errors import ConfigError, MakemoreError
from makemore.serve import params
from makemore.serve.params import RequestError, bad

PLOTS = ("bigram", "loss")


@dataclass
class ServedRun:
    """One run of the command line, with what was read for it at start-up."""

    id: int
    name: str
    run: api.Run
    known: Any  # the training file's items (None: the file could not be read)
    note: str | None  # why the training file could not be read
    data: api.Data | None = None  # the training file read again (None: it could not be read)
    train: api.EncodedCorpus | None = None  # the training split (what a count model counted)
    counts: torch.Tensor | None = None  # (V, V) bigram counts of the training split
    curve: list[dict] | None = None  # metrics rows
    curve_note: str | None = None  # why there is no loss curve
    lock: threading.Lock = field(default_factory=threading.Lock)  # one request at a time uses the model
    nll: dict[str, float | None] | None = None  # dev/test NLL, computed on the first info request
    counted: dict[str, int] | None = None  # a count model's examples and contexts, on the first info request

    @property
    def max_length(self) -> int:
        return params.length_limit(self.run.description.data.longest_item)


def load_served(run_id: int, path: str | Path, name: str) -> ServedRun:
    """Load one run and read its training file and metrics (a file that cannot be read is noted).

    Raises:
        MakemoreError: the run cannot be loaded.
    """
    run = api.load_run(path)
    served = ServedRun(run_id, name, run, known=None, note=None)
    try:
        data = api.training_data(run)
    except MakemoreError as exc:
        served.note = str(exc)
    else:
        served.known = data.known_items()  # looked up in bulk: no Python string per training item
        served.data = data
        served.train = data.corpus("train")
        served.counts = api.bigram_counts(run, data)  # from the items already read
    try:
        served.curve = api.training_curve(path)
    except MakemoreError as exc:
        served.curve_note = str(exc)
    return served


def display_names(paths: list[str | Path]) -> list[str]:
    """Each run's name: its directory's name, or the path as given where two names are the same."""
    names = [Path(p).name or str(p) for p in paths]
    return [name if names.count(name) == 1 else str(p) for name, p in zip(names, paths)]


def counted(model: torch.nn.Module, train: api.EncodedCorpus) -> dict[str, int]:
    """What a count model counted in its training split: the examples (each a next character or an
    item's end, after its context) and the distinct contexts among them (as its ``fit_batcher`` sees them)."""
    X = model.batcher(train).X  # (N, block_size) every context window
    if X.size(1) == 0:  # order 1: one empty context
        contexts = int(X.size(0) > 0)
    else:
        contexts = torch.unique(X, dim=0).size(0)
    return {"examples": X.size(0), "contexts": contexts}


def clean(value: Any) -> Any:
    """``value`` as strict JSON can hold it: tuples as lists, NaN and infinities as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


class App:
    """The API of ``makemore serve`` over runs loaded once.

    Runs can be added, renamed and removed while the server answers (the studio's runs): an id is
    never reused, and a removed run's id answers 404.

    Args:
        runs: the served runs, ids 0, 1, ... in order.
    """

    def __init__(self, runs: list[ServedRun]):
        self.served: list[ServedRun | None] = list(runs)  # None: a removed run (its id is not reused)
        self._runs_lock = threading.Lock()  # add/remove/rename against each other
        self._plot_lock = threading.Lock()  # matplotlib draws one figure at a time
        self._plots: dict[tuple[int, str], bytes | RequestError] = {}
        self._export_lock = threading.Lock()  # one export at a time; each file made once, then kept
        self._exports: dict[tuple[int, str, str], bytes | RequestError] = {}

    def close(self) -> None:
        """Drop the rendered plots (the app holds no files or other resources)."""
        with self._plot_lock:
            self._plots.clear()
        with self._export_lock:
            self._exports.clear()

    def _run(self, value: Any) -> ServedRun:
        served = self.served  # read once: a run added meanwhile is appended to the same list
        s = served[params.run_id(0 if value is None else value, len(served))]
        if s is None:
            raise RequestError(404, f"run: run {value} was removed")
        return s

    def add_run(self, path: str | Path, name: str) -> int:
        """Load the run in ``path`` and serve it under a new id.

        Returns:
            its id (in ``/api/runs``, ``/api/generate``...).
        Raises:
            MakemoreError: the run cannot be loaded.
        """
        with self._runs_lock:
            run_id = len(self.served)
            self.served.append(None)  # the id is taken now; the slow load runs outside the lock
        served = load_served(run_id, path, name)
        self.served[run_id] = served
        return run_id

    def remove_run(self, run_id: int) -> None:
        """Stop serving run ``run_id`` (its plots and exports are dropped; the id is not reused)."""
        with self._runs_lock:
            if 0 <= run_id < len(self.served):
                self.served[run_id] = None
        with self._plot_lock:
            self._plots = {k: v for k, v in self._plots.items() if k[0] != run_id}
        with self._export_lock:
            self._exports = {k: v for k, v in self._exports.items() if k[0] != run_id}

    def rename_run(self, run_id: int, name: str) -> None:
        """Show run ``run_id`` as ``name`` (the name of its exports too)."""
        with self._runs_lock:
            s = self.served[run_id] if 0 <= run_id < len(self.served) else None
            if s is not None:
                s.name = name

    def runs(self) -> dict:
        """``GET /api/runs``: one entry per run."""
        return clean(
            {
                "runs": [
                    {
                        "id": s.id,
                        "name": s.name,
                        "model": s.run.config.model,
                        "labels": list(s.run.vocab.label_names),
                        "casefolded": s.run.casefolded,  # reads what is typed in lower case
                        "parameters": s.run.description.model.parameters,
                        "dev_loss": s.run.description.metrics.get("dev_loss"),
                        "length_limit": s.max_length,  # most characters of min_len, max_len, a scored text
                    }
                    for s in self.served
                    if s is not None
                ]
            }
        )

    def options(self) -> dict:
        """``GET /api/options``: the page's generate controls, from ``SampleConfig``'s declarations, and
        its sample-quality controls, from ``EvalConfig``'s (``options.page_controls``: name, label, help,
        kind, default, limits, placeholder)."""
        controls = {"generate": api.SampleConfig, "metrics": api.EvalConfig}  # metrics: the Explore view's
        return clean({name: list(options.page_controls(cls, params.MAX_TEXT)) for name, cls in controls.items()})

    def info(self, query: dict[str, str]) -> dict:
        """``GET /api/info?run=ID``: the run's description, with its dev/test NLL.

        ``trains_by_gradient`` tells a count model (fitted in one pass: no steps, batch or learning rate;
        ``train`` is then None) from the others; ``counted`` is what a count model counted (None for the
        others, or when the training file could not be read).
        """
        params.check_fields(query, ("run",))
        s = self._run(query.get("run"))
        description, model = s.run.description, s.run.model
        if s.nll is None and s.data is not None:
            with s.lock:
                s.nll = api.evaluate(s.run, ("dev", "test"), s.data)
                if not model.trains_by_gradient and s.train is not None:
                    s.counted = counted(model, s.train)
        data = dataclasses.asdict(description.data)
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items() if k not in ("sha256", "casefolded")}
        return clean(
            {
                "run": s.id,
                "name": s.name,
                "model": s.run.config.model,
                "model_config": description.model.config,
                "parameters": description.model.parameters,
                "vocab": "".join(s.run.vocab.chars),
                "labels": list(s.run.vocab.label_names),
                "casefolded": s.run.casefolded,
                "data": data,
                "trains_by_gradient": model.trains_by_gradient,
                "train": dataclasses.asdict(description.config.train) if model.trains_by_gradient else None,
                "step": description.step,
                "counted": s.counted,
                "metrics": description.metrics,
                "nll": s.nll,
                "note": s.note,
            }
        )

    def plot(self, kind: str, query: dict[str, str]) -> bytes:
        """``GET /api/plot/KIND?run=ID``: the run's bigram counts or loss curve as PNG bytes."""
        params.check_fields(query, ("run",))
        s = self._run(query.get("run"))
        with self._plot_lock:
            if (s.id, kind) not in self._plots:
                self._plots[s.id, kind] = self._draw(s, kind)
        result = self._plots[s.id, kind]
        if isinstance(result, RequestError):
            raise result
        return result

    def export(self, query: dict[str, str]) -> tuple[bytes, str]:
        """``GET /api/export?run=ID&format=html&weights=float16``: the run as one file (``makemore export``).

        Returns:
            the file's bytes and its name (the run's name and the format's suffix).
        """
        params.check_fields(query, ("run", "format", "weights"))
        s = self._run(query.get("run"))
        fields = {k: v for k, v in query.items() if k != "run"}
        try:
            config = api.ExportConfig(**options.from_json(api.ExportConfig, {"format": "html", **fields}))
        except MakemoreError as exc:
            raise bad(str(exc)) from None
        key = (s.id, config.format, config.weights)
        with self._export_lock:
            if key not in self._exports:
                with s.lock:
                    try:
                        self._exports[key] = api.export_bytes(s.run, config, s.data)
                    except MakemoreError as exc:
                        self._exports[key] = bad(str(exc))
            result = self._exports[key]
        if isinstance(result, RequestError):
            raise result
        suffix = {"html": "html", "js": "mjs", "onnx": "onnx", "arpa": "arpa"}[config.format]
        return result, f"{s.name}.{suffix}"

    def metrics(self, query: dict[str, str]) -> dict:
        """``GET /api/metrics?run=ID&samples=N&seed=S``: the quality of N items generated with seed S
        (``api.sample_metrics``: shares unique / in train, dev, test / new, distances, mean NLL)."""
        config = params.metrics_config(query)
        s = self._run(query.get("run"))
        if s.data is None:
            raise bad(f"samples: they are compared with the training data, which could not be read ({s.note})")
        with s.lock:
            try:
                metrics = api.sample_metrics(s.run, config.samples, config.seed, data=s.data)
            except MakemoreError as exc:
                raise bad(params.render(exc)) from None
        return clean(metrics.as_dict())

    def _draw(self, s: ServedRun, kind: str) -> bytes | RequestError:
        """Render one plot as PNG bytes in memory (or the error, kept too)."""
        try:
            if kind == "bigram":
                if s.counts is None:
                    return bad(f"bigram: no bigram counts: {s.note}")
                plot = plots.plot_bigram_counts(s.counts, s.run.vocab.display_labels())
            else:
                if s.curve is None:
                    return bad(f"loss: no loss curve: {s.curve_note}")
                plot = plots.plot_loss_curves(s.curve)
        except MakemoreError as exc:
            return bad(f"{kind}: {exc}")
        return plots.png_bytes(plot.figure)

    def generate(self, body: dict[str, Any]) -> dict:
        """``POST /api/generate``: items with their scores and marks.

        A budget (``params.MAX_TRIES``, ``params.TIME_LIMIT``) that runs out returns the items found
        with a warning; with none found it is a 400.
        """
        s = self._run(body.get("run"))
        config = params.sample_config(body, s.run.vocab, s.max_length)
        if config.new_only and s.known is None:
            raise bad(f"new_only: needs the training items, which could not be read ({s.note})")
        items, warning, stats = [], None, api.SampleStats()
        started = time.monotonic()
        with s.lock:
            try:
                items.extend(api.Sampler.of(s.run, config, known_items=s.known, stats=stats).scored())
            except api.BudgetExhausted as exc:
                warning = (
                    params.render(exc)
                    if stats.stopped == "hopeless"
                    else (
                        f"found {len(items)} of {config.num} items in {stats.tried:,} draws ({stats.seconds:.1f} s), "
                        f"all one request may use (max_tries {params.MAX_TRIES:,}, time_limit {params.TIME_LIMIT:g} s); "
                        "loosen the constraints or ask for fewer"
                    )
                )
            except ConfigError as exc:  # an impossible request, or unique/new_only gave up
                warning = params.render(exc)
            except MakemoreError as exc:
                raise bad(params.render(exc)) from None
        if warning is not None and not items:
            raise bad(warning)
        return clean(
            {
                "items": [{"item": i.item, "nll": i.nll, "known": i.known, "distance": i.distance} for i in items],
                "seed": config.seed,
                "stats": {
                    "asked": config.num,
                    "found": len(items),
                    "tried": stats.tried,
                    "seconds": round(time.monotonic() - started, 4),
                },
                "warning": warning,
            }
        )

    def score(self, body: dict[str, Any]) -> dict:
        """``POST /api/score``: the mean NLL of a text, per character, and P(label | text) for labelled runs."""
        s = self._run(body.get("run"))
        text, label = params.score_params(body, s.run.vocab, s.max_length)
        vocab = s.run.vocab
        shown = dict(zip(vocab.labels(), vocab.display_labels()))  # as score --detail: a space is '␣'
        with s.lock:
            try:
                (result,) = api.score(s.run, [text], label=label)
                classes = api.classify(s.run, [text])[0].posteriors if vocab.label_names else None
            except MakemoreError as exc:
                message = params.render(exc).removeprefix("score: ")
                raise bad(message if message.startswith("label:") else f"text: {message}") from None
        if label is None and classes is not None:
            label = classes[0][0]  # api.score scores it under its most probable label
        chars = [
            {
                "context": "".join(shown[t] for t in c.context),
                "char": shown[c.char],
                "prob": c.prob,
                "logprob": c.logprob,
            }
            for c in result.chars
        ]
        return clean(
            {
                "word": result.word,
                "nll": result.nll,
                "label": label,
                "chars": chars,
                "classes": None if classes is None else [{"label": k, "p": p} for k, p in classes],
            }
        )


def load_app(paths: list[str | Path]) -> App:
    """Load every run of the command line (a run that cannot be loaded is an error).

    Raises:
        MakemoreError: a run cannot be loaded.
    """
    names = display_names(paths)
    return App([load_served(i, path, name) for i, (path, name) in enumerate(zip(paths, names))])
