"""A trained run as one self-contained HTML file that generates offline (``makemore export --format html``).

The file is ``web/page.html`` filled in: ``web/page.css`` inline, one inline script of ``web/runtime.js``,
``web/sampler.js`` and ``web/page.js``, and two JSON blocks (``<script type="application/json">``): the
model's bundle (``bundle.bundle_dict``) and the page's settings, whose ``generate`` list is what
``makemore serve`` answers to ``GET /api/options`` (``options.page_controls`` of ``SampleConfig``), so the
page builds the same generate controls from the same declarations. Nothing is loaded from anywhere: the
page opens from ``file://`` or any static host with the network off, and its Content-Security-Policy
forbids every connection.
"""

from __future__ import annotations

import html
import re
from typing import Any

from makemore import options
from makemore.data.datasets import Data
from makemore.errors import MakemoreError
from makemore.export.bundle import bundle_dict
from makemore.export.js import script_json, web_source
from makemore.generate.config import SampleConfig
from makemore.store.runs import Run

SCRIPTS = ("runtime.js", "sampler.js", "page.js")  # one inline script, in this order
_SLOT = re.compile(r"\{\{(\w+)\}\}")
_ENDS_SCRIPT = re.compile(r"</script|<!--", re.IGNORECASE)  # what would end (or confuse) an inline script


def page_settings(run: Run, bundle: dict[str, Any]) -> dict[str, Any]:
    """What the page reads besides the bundle: its name, the weight type, the server's length limit of a
    request (``params.length_limit``) and the generate controls (as ``GET /api/options`` gives them).

    Args:
        run: the exported run.
        bundle: its bundle (``bundle.bundle_dict``).
    Returns:
        a JSON-ready dict.
    """
    from makemore.serve import params  # (here: the server imports the API, which may import this module)

    return {
        "name": bundle["meta"]["name"],
        "family": bundle["family"],
        "weights": bundle["weights"],
        "length_limit": params.length_limit(run.description.data.longest_item),
        "generate": list(options.page_controls(SampleConfig, params.MAX_TEXT)),
    }


def _inline_script() -> str:
    """runtime.js, sampler.js and page.js as one script's text.

    Raises:
        MakemoreError: a source holds text that would end an inline script early.
    """
    parts = []
    for name in SCRIPTS:
        source = web_source(name)
        if _ENDS_SCRIPT.search(source):
            raise MakemoreError(f"web/{name} cannot be inlined in a page: it contains '</script' or '<!--'")
        parts.append(f"// --- {name}\n{source}")
    return "\n".join(parts)


def page_from_bundle(bundle: dict[str, Any], settings: dict[str, Any]) -> bytes:
    """The HTML page of a bundle.

    Args:
        bundle: the model's bundle (``bundle.bundle_dict``).
        settings: the page's settings (``page_settings``).
    Returns:
        the page's UTF-8 bytes.
    """
    slots = {
        "title": html.escape(f"makemore: {settings['name']}"),
        "style": web_source("page.css"),
        "page": script_json(settings),  # (<, > and & escaped: no "</script>" can appear in the JSON)
        "bundle": script_json(bundle),
        "script": _inline_script(),
    }
    template = web_source("page.html")
    # one pass over the template: text put in a slot is never read again as a slot
    return _SLOT.sub(lambda m: slots[m.group(1)], template).encode("utf-8")


def html_bytes(run: Run, weights: str = "float32", *, data: Data | None = None) -> bytes:
    """One self-contained HTML file that generates and scores with ``run``'s model in a browser, offline.

    Args:
        run: a loaded run (any family).
        weights: "float32", "float16" or "int8" (``bundle.bundle_dict``).
        data: the run's training data already read (``training_data(run)``); else read again.
    Returns:
        the page's UTF-8 bytes.
    Raises:
        MakemoreError: what ``bundle_dict`` refuses (an unknown weight type, a table too large, the
            training file missing or changed), or a missing web file.
    """
    bundle = bundle_dict(run, weights, data=data)
    return page_from_bundle(bundle, page_settings(run, bundle))
