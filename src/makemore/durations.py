"""Durations as users type them (``--time 1m30s``) and as makemore prints them; torch-free."""

from __future__ import annotations

import math
import re

from makemore.errors import MakemoreError

MAX_TIME_BUDGET = 7 * 24 * 3600.0  # a week: a longer --time is a typo, not a plan


_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?")
_DURATION_HELP = "a duration like 90s, 5m, 1h, 1m30s or plain seconds"


def parse_duration(text: str) -> float:
    """Seconds of a duration: ``90s``, ``5m``, ``1h``, ``1m30s``, ``1.5h`` or plain seconds (``90``).

    Args:
        text: the duration (case and surrounding spaces ignored).
    Returns:
        the duration in seconds, a finite number above 0.
    Raises:
        MakemoreError: anything else (a unit other than h/m/s, 0, a negative, more than a week).
    """
    raw = text.strip().lower() if isinstance(text, str) else ""
    seconds = None
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        seconds = float(raw)
    elif raw:
        match = _DURATION.fullmatch(raw)
        if match and any(match.groupdict().values()):
            parts = {k: float(v) for k, v in match.groupdict().items() if v}
            seconds = 3600 * parts.get("h", 0) + 60 * parts.get("m", 0) + parts.get("s", 0)
    if seconds is None:
        raise MakemoreError(f"expected {_DURATION_HELP}, got {text!r}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise MakemoreError(f"must be more than 0 seconds, got {text!r}")
    if seconds > MAX_TIME_BUDGET:
        raise MakemoreError(f"at most {format_duration(MAX_TIME_BUDGET)} (a week), got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """How a budget is shown: ``45 -> '45s'``, ``90 -> '1m30s'``, ``300 -> '5m'``, ``2.5 -> '2.5s'``."""
    if seconds < 60 or seconds != int(seconds):
        return f"{seconds:g}s"
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{unit}" for v, unit in ((h, "h"), (m, "m"), (s, "s")) if v)
