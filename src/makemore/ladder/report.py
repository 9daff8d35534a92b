"""The ladder's report: ``report.md`` (one table row per rung, the plot, samples) and ``dev-nll.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from makemore import files, plots

PLOT_FILE = "dev-nll.png"
COLUMNS = (  # header, result key (a dotted path into the result), format
    ("rung", "name", "{}"),
    ("model", "model", "{}"),
    ("parameters", "parameters", "{:,}"),  # a count model: its tables' entries
    ("train NLL", "train_nll", "{:.4f}"),
    ("dev NLL", "dev_nll", "{:.4f}"),
    ("test NLL", "test_nll", "{:.4f}"),
    ("training s", "train_seconds", "{:.1f}"),
    ("steps/s", "steps_per_s", "{:,.0f}"),
    ("samples/s", "samples_per_s", "{:,.0f}"),
    ("unique", "sample_metrics.unique", "{:.3f}"),
    ("in train", "sample_metrics.in_train", "{:.3f}"),
    ("new", "sample_metrics.new", "{:.3f}"),
    ("length TV", "sample_metrics.length_tv", "{:.3f}"),
    ("char TV", "sample_metrics.char_tv", "{:.3f}"),
    ("sample NLL", "sample_metrics.mean_nll", "{:.4f}"),
)


def _value(result: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        result = result.get(part) if isinstance(result, dict) else None
    return result


def _cell(result: dict[str, Any], key: str, fmt: str) -> str:
    value = _value(result, key)
    return "-" if value is None else fmt.format(value)


def table(state: dict[str, Any], names: list[str]) -> str:
    """The Markdown table of the rungs ``names`` that have a result, in that order."""
    lines = ["| " + " | ".join(h for h, _, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name in names:
        if name in state["rungs"]:
            result = {"name": name, **state["rungs"][name]}
            lines.append("| " + " | ".join(_cell(result, key, fmt) for _, key, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def _escape(item: str) -> str:
    return item.replace("\\", "\\\\").replace("`", "\\`")


def report_markdown(state: dict[str, Any], names: list[str]) -> str:
    """``report.md``'s text."""
    data = state["data"]
    corpus = data.get("input") or "builtin:names"
    splits = f"; dev {data['dev_input']}" if data.get("dev_input") else ""
    splits += f"; test {data['test_input']}" if data.get("test_input") else ""
    samples = state["samples"]
    parts = [
        "# The ladder",
        "",
        f"Corpus: `{corpus}`{splits}. Seed {state['seed']}. NLL: nats per character (item ends included) of "
        f"each split. Sample metrics: of {samples:,} items each rung generates (temperature 1, no constraints), "
        "the share unique, in the training split and new (in no split), and the total variation distances "
        "(0.5 * sum |p - q|) of their lengths and characters to the training items' (`makemore eval --samples`). "
        "Parameters of a count model: the entries of its tables. Training s: the time in the training loop (a "
        "count model: counting); samples/s: those items generated.",
        "",
        table(state, names),
        "",
        f"![dev NLL against training time]({PLOT_FILE})",
        "",
        "## Samples",
        "",
    ]
    for name in names:
        if name in state["rungs"]:
            items = ", ".join(f"`{_escape(item)}`" for item in state["rungs"][name]["samples"])
            parts.append(f"- **{name}**: {items}")
    return "\n".join(parts) + "\n"


def write_report(out: Path, state: dict[str, Any], names: list[str]) -> None:
    """Write ``out/report.md`` and ``out/dev-nll.png`` (atomically) for the rungs ``names``."""
    curves, points = {}, {}
    for name in names:
        result = state["rungs"].get(name)
        if result is None or result.get("dev_nll") is None:
            continue
        if result.get("curve"):
            curves[name] = result["curve"]
        else:
            points[name] = (result.get("train_seconds") or 0.0, result["dev_nll"])
    plots.write_png(plots.plot_ladder(curves, points).figure, out / PLOT_FILE)
    files.atomic_write_text(out / "report.md", report_markdown(state, names))
