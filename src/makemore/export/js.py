"""A trained run as one JavaScript module file (``.mjs``): no imports, its runtime and weights inside.

The file is ``web/runtime.js``, ``web/sampler.js``, the bundle (``bundle.bundle_dict``) as a
``const``, then these exports, usable from Node 20 (``import {generate} from "./names.mjs"``) and
from a browser or a bundler::

    generate(options = {}) -> string[]
        the items, e.g. generate({n: 10, seed: 1, suffix: "a"}); ``options`` has the field
        names of ``POST /api/generate`` (n, seed, temperature, top_k, top_p, prefix, suffix,
        contains, not_contains, exclude_chars, min_len, max_len, label, new_only, unique, ...).
        Bad options throw an Error whose message names the field.
    generateDetailed(options = {}) -> {items: [{item, nll, label, known}], stats, warning}
        the same draw with each item's score and label, and what the sampler tried.
    score(item, label?) -> number
        the mean NLL per character, its end included: what ``makemore score`` prints.
    nextLogProbs(prefixes, label?) -> Float32Array[]
        a test hook: for each prefix (a string of the model's characters, read as it is), the
        natural-log probabilities of every token id after it (``info.vocab`` names the ids).
    info
        {name, family, weights, labels, chars, vocab, maxLength, casefold, devNll}.
    model
        the runtime's model (``web/runtime.js``: start, push, keep, logProbs, vocab ...), for
        sampling loops of one's own.
    default: an object of all of the above.

Everything runs synchronously when called; the model is built when the module is first imported.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from makemore import __version__
from makemore.data.datasets import Data
from makemore.errors import MakemoreError
from makemore.export.bundle import bundle_dict
from makemore.store.runs import Run

_EXPORTS = """
const MODEL = makemoreLoad(BUNDLE);

/** Generated items (strings); options as POST /api/generate's JSON fields, e.g. {n: 10, seed: 1}. */
export function generate(options = {}) {
  return makemoreGenerate(MODEL, options).items.map((r) => r.item);
}

/** The full result of a draw: {items: [{item, nll, label, known}], stats: {asked, found, tried}, warning}. */
export function generateDetailed(options = {}) {
  return makemoreGenerate(MODEL, options);
}

/** Mean NLL per character of `item` (its end included), as `makemore score` prints it. */
export function score(item, label) {
  return makemoreScore(MODEL, item, label);
}

/** Test hook: each prefix's next-token log-probabilities (a Float32Array over info.vocab). */
export function nextLogProbs(prefixes, label) {
  return MODEL.nextLogProbs(prefixes, label);
}

export const info = Object.freeze({
  name: BUNDLE.meta.name,
  family: BUNDLE.family,
  weights: BUNDLE.weights,
  labels: Object.freeze([...MODEL.labels]),
  chars: Object.freeze([...BUNDLE.vocab.chars]),
  vocab: Object.freeze([...MODEL.vocab]),
  maxLength: MODEL.maxLength,
  casefold: Boolean(BUNDLE.meta.casefold),
  devNll: BUNDLE.meta.dev_nll,
});

/** The runtime's model itself (start, push, keep, logProbs: see runtime.js), for custom sampling. */
export const model = MODEL;

export default { generate, generateDetailed, score, nextLogProbs, info, model };
"""


def web_source(name: str) -> str:
    """The text of ``web/NAME`` (``runtime.js``, ``sampler.js``) shipped with makemore.

    Raises:
        MakemoreError: the file is not there (an incomplete installation).
    """
    try:
        return resources.files("makemore.export").joinpath("web", name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MakemoreError(f"makemore is installed without its export file web/{name}") from None


def script_json(value: Any) -> str:
    """``value`` as JSON that is also safe inside an HTML ``<script>``: ASCII only, with ``<``, ``>``
    and ``&`` escaped (``\\u003c`` ...), so no ``</script>`` or ``<!--`` can appear in it."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def module_from_bundle(bundle: dict[str, Any], sampler_js: str | None = None) -> bytes:
    """The ``.mjs`` module of a bundle (``bundle.bundle_dict``).

    Args:
        bundle: the model's bundle.
        sampler_js: the sampler's source; None: makemore's ``web/sampler.js``.
    Returns:
        the module's UTF-8 bytes.
    """
    sampler = web_source("sampler.js") if sampler_js is None else sampler_js
    header = (
        f"// makemore {__version__}: the {script_json(bundle['family'])} model {script_json(bundle['meta']['name'])} "
        f"({bundle['weights']} weights) as a JavaScript module with no imports.\n"
        "// Exports generate(options), generateDetailed(options), score(item, label), nextLogProbs(prefixes, label), "
        "info, model.\n"
    )
    parts = [header, web_source("runtime.js"), sampler, f"const BUNDLE = {script_json(bundle)};\n", _EXPORTS]
    return "\n".join(parts).encode("utf-8")


def module_bytes(run: Run, weights: str = "float32", *, data: Data | None = None) -> bytes:
    """One ES module (``.mjs``) that generates and scores with ``run``'s model (see the module docstring).

    Args:
        run: a loaded run (any family).
        weights: "float32", "float16" or "int8" (``bundle.bundle_dict``).
        data: the run's training data already read (``training_data(run)``); else read again.
    Returns:
        the module's UTF-8 bytes.
    Raises:
        MakemoreError: what ``bundle_dict`` refuses, or a missing web file.
    """
    return module_from_bundle(bundle_dict(run, weights, data=data))
