"""Range and type checks for config fields: each raises a ``ConfigError`` naming the field.

Every config validates itself once, in ``__post_init__``, with these helpers, so a value is
checked where it enters (a dataclass built by the API, the CLI or from a checkpoint header).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from makemore.errors import ConfigError


def _owner(config: Any) -> str | None:
    """The config class's name, for a config or a config class (None for an argument)."""
    if config is None:
        return None
    return config.__name__ if isinstance(config, type) else type(config).__name__


def fail(config: Any, field: str | None, problem: str, related: tuple[str, ...] = ()) -> None:
    """Raise the ConfigError of ``config.field`` (``config``: a config, its class, or None for
    a function argument)."""
    raise ConfigError(field, problem, owner=_owner(config), related=related)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integers(config: Any, least: int, *fields: str, note: str = "") -> None:
    """Each field is an integer ``>= least``."""
    for field in fields:
        value = getattr(config, field)
        if not _is_int(value) or value < least:
            fail(config, field, f"must be an integer at least {least}{note}, got {value!r}")


def number(
    config: Any,
    field: str,
    *,
    least: float | None = None,
    most: float | None = None,
    below: float | None = None,
    above: float | None = None,
    value: Any = None,
) -> None:
    """``config.field`` (or ``value`` for an argument) is a finite number in the given bounds."""
    value = getattr(config, field) if config is not None else value
    bounds = []
    if least is not None:
        bounds.append(f">= {least:g}")
    if above is not None:
        bounds.append(f"> {above:g}")
    if most is not None:
        bounds.append(f"<= {most:g}")
    if below is not None:
        bounds.append(f"< {below:g}")
    ok = _is_number(value) and math.isfinite(value)
    ok = ok and (least is None or value >= least) and (above is None or value > above)
    ok = ok and (most is None or value <= most) and (below is None or value < below)
    if not ok:
        limits = " " + " and ".join(bounds) if bounds else ""
        fail(config, field, f"must be a finite number{limits}, got {value!r}")


def rates(config: Any, *fields: str) -> None:
    """Each field is a probability in [0, 1) (a dropout rate)."""
    for field in fields:
        number(config, field, least=0, below=1)


def one_of(config: Any, field: str, choices: Iterable[str], what: str | None = None) -> None:
    """``config.field`` is one of ``choices``."""
    choices = tuple(choices)
    value = getattr(config, field)
    if value not in choices:
        label = f"unknown {what} {value!r}" if what else f"unknown value {value!r}"
        fail(config, field, f"{label} (choose from: {', '.join(choices)})")


def flags(config: Any, *fields: str) -> None:
    """Each field is a bool."""
    for field in fields:
        value = getattr(config, field)
        if not isinstance(value, bool):
            fail(config, field, f"must be true or false, got {value!r}")


def text(config: Any, *fields: str) -> None:
    """Each field is a string."""
    for field in fields:
        value = getattr(config, field)
        if not isinstance(value, str):
            fail(config, field, f"must be a string, got {value!r}")
