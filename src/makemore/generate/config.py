"""``SampleConfig``: every sampling option declared once (help, spellings, limits, surfaces),
and the checks of its fields that need no model (constraint fields, regular expressions,
``LABEL[=WEIGHT]`` specs).

This module imports no torch: the command line builds the ``sample`` flags from it at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import regex

from makemore import options, validation
from makemore.errors import ConfigError
from makemore.options import CLI, JSON, option

MAX_ITEMS = 1_000_000  # most items one request may ask for (sample -n, --pool)
POOL_PER_ITEM = 10  # default pool of similar_to: 10 items generated per item returned
ON_SERVER = (CLI, JSON)  # offered to the API but not a control of the page
CLI_ONLY = (CLI,)  # the server sets these itself (params.py: its own budget and batch)
LENGTH = "length"  # Option.server_most of a length: the run's limit (serve/params.length_limit)


@dataclass
class SampleConfig:
    """Options for generating items."""

    num: int = option(20, "how many items", short="-n", json="n", label="number", least=0, server_most=1000)
    seed: int = option(
        0, "random seed: the same seed gives the same items (default: a new one each time)", checked=False,
        placeholder="random", page_default="",
    )  # fmt: skip
    temperature: float = option(1.0, "sampling temperature: < 1 sharper, > 1 flatter; 0 = greedy", least=0)
    top_k: int = option(0, "sample from the k most likely characters (0 = all)", label="top-k", least=0,
                        note=" (0 = all)")  # fmt: skip
    top_p: float = option(1.0, "nucleus sampling: the smallest set with this much probability (1 = all)",
                          label="top-p", above=0, most=1)  # fmt: skip
    prefix: str = option("", "every item starts with this")
    min_len: int = option(0, "no item shorter than this (in characters, prefix included)", label="shortest", least=0,
                          server_most=LENGTH, placeholder="any", page_default="")  # fmt: skip
    max_len: int | None = option(
        None, "no item longer than this, in characters (default: the model's limit or 2x the longest training item)",
        label="longest", least=1, note=" (leave it out for the model's limit)", server_most=LENGTH, placeholder="any",
    )  # fmt: skip
    new_only: bool = option(
        False,
        "drop items present in the run's data: the training file (with your own splits, the dev and test files too)",
        page_default=True,
    )
    unique: bool = option(False, "drop repeated items", label="no repeats")
    batch_size: int = option(1000, "rows generated together", least=1, surfaces=CLI_ONLY)
    suffix: str = option("", "every item ends with this", checked=False)
    contains: tuple[str, ...] = option((), "every item contains each of these (repeatable)", metavar="S",
                                       checked=False, placeholder="ar, el")  # fmt: skip
    not_contains: tuple[str, ...] = option((), "no item contains any of these (repeatable)", metavar="S",
                                           checked=False, placeholder="q, xx")  # fmt: skip
    exclude_chars: str = option("", "no item contains any of these characters (they are never drawn)",
                                label="excluded characters", metavar="CHARS", checked=False,
                                placeholder="qxz")  # fmt: skip
    regex: str = option("", "every item matches this regular expression (re.search: anchor it with ^ and $)",
                        metavar="R", checked=False, placeholder="^[^aeiou]+$")  # fmt: skip
    max_tries: int | None = option(
        None, "most items drawn in all (default 1,000 per item asked, at least 100,000; 0 = no limit)", metavar="N",
        checked=False, surfaces=CLI_ONLY,
    )  # fmt: skip
    time_limit: float | None = option(
        None, "stop with what was found after this many seconds (default 30 with suffix, contains, not_contains "
        "or regex; 0 = none)", metavar="SECONDS", checked=False, surfaces=CLI_ONLY,
    )  # fmt: skip
    similar_to: str = option("", "return the items closest to this word (edit distance; ties: the more plausible "
                             "first), closest first; never the word", metavar="WORD", checked=False,
                             placeholder="emma")  # fmt: skip
    pool: int = option(0, "with similar_to: items generated to pick from (0 = 10 per item asked)", least=0,
                       note=" (0 = 10 per item asked)", server_most=10_000, surfaces=ON_SERVER)  # fmt: skip
    label: tuple[str, ...] = option(
        (), "a model trained on labels: items of this label, LABEL or LABEL=WEIGHT (repeatable; default: the "
        "labels as often as in training)", metavar="LABEL[=WEIGHT]", checked=False, page_choices="labels",
    )  # fmt: skip

    def __post_init__(self) -> None:
        options.check(self)
        if self.num > MAX_ITEMS:
            validation.fail(self, "num", f"at most {MAX_ITEMS:,} items at a time, got {self.num:,}")
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed < 2**64):
            validation.fail(self, "seed", f"must be an integer from 0 to 2**64 - 1, got {self.seed!r}")
        if self.max_len is not None and self.min_len > self.max_len:
            validation.fail(self, "min_len", f"{self.min_len} is more than max_len {self.max_len}", ("max_len",))
        validate_fields(self)
        self.label = check_label_specs(self.label)
        if self.pool and not self.similar_to:
            validation.fail(self, "pool", "is the pool similar_to picks from; give similar_to too", ("similar_to",))
        if self.pool > MAX_ITEMS or (self.pool and self.pool < self.num):
            validation.fail(
                self, "pool", f"must be from num ({self.num:,}) to {MAX_ITEMS:,}, got {self.pool:,}", ("num",)
            )

    @property
    def pool_size(self) -> int:
        """Items generated for one request: ``num``, or with ``similar_to`` the pool to rank."""
        if not self.similar_to:
            return self.num
        return self.pool or max(self.num, min(MAX_ITEMS, POOL_PER_ITEM * self.num))


_TEXT_FIELDS = ("suffix", "exclude_chars", "regex", "similar_to")


def validate_fields(config: SampleConfig) -> None:
    """Check the constraint fields of a ``SampleConfig`` (lists become tuples).

    Raises:
        ConfigError: naming the field (a bad type, an empty substring, a line break, a
            regular expression that does not compile, a budget that could never stop).
    """
    validation.text(config, *_TEXT_FIELDS)
    for name in ("contains", "not_contains"):
        value = getattr(config, name)
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            validation.fail(config, name, f"must be a list of strings, got {value!r}")
        if not all(isinstance(s, str) and s for s in value):
            validation.fail(config, name, f"must be non-empty strings, got {list(value)!r}")
        setattr(config, name, tuple(value))
    for name in ("suffix", "similar_to", "contains", "not_contains"):
        value = getattr(config, name)
        if any("\n" in s or "\r" in s for s in ([value] if isinstance(value, str) else value)):
            validation.fail(config, name, "items never contain a line break")
    compile_regex(config)
    if config.max_tries is not None:
        validation.integers(config, 0, "max_tries", note=" (0 = no limit)")
    if config.time_limit is not None:
        validation.number(config, "time_limit", least=0)
    if rejects(config) and config.max_tries == 0 and config.time_limit == 0:
        validation.fail(
            config, "max_tries", "0 (no limit) needs a time_limit, or sampling may never end", ("time_limit",)
        )


def compile_regex(config: SampleConfig) -> regex.Pattern | None:
    """``config.regex`` compiled (None when empty): the one reading of a pattern everywhere.

    Raises:
        ConfigError: on ``regex``, for a pattern that does not compile, including a repeat
            count too large (``a{4294967296}``), which Python's ``re`` raises as OverflowError.
    """
    if not config.regex:
        return None
    try:
        return regex.compile(config.regex)
    except (regex.error, OverflowError, ValueError, RecursionError, MemoryError) as exc:
        problem = " ".join(str(exc).split()) or type(exc).__name__
        validation.fail(config, "regex", f"not a valid regular expression ({problem})")


def rejects(config: SampleConfig) -> bool:
    """Whether some constraint is met by dropping items (not by generating them)."""
    long_not_contains = any(len(s) > 1 for s in config.not_contains)
    return bool(config.suffix or config.contains or long_not_contains or config.regex)


def parse_label(spec: str) -> tuple[str, float]:
    """``"elf"`` -> ("elf", 1.0); ``"elf=0.7"`` -> ("elf", 0.7).

    A label whose text holds ``=`` is given whole when what follows the last ``=`` is not
    a number (``"a=b"`` -> ("a=b", 1.0)).

    Raises:
        ConfigError: (field ``label``) an empty label, or a weight that is not positive.
    """
    name, sep, weight = spec.rpartition("=")
    if not sep:
        name, value = spec, 1.0
    else:
        try:
            value = float(weight)
        except ValueError:
            name, value = spec, 1.0
    if not name.strip():
        raise ConfigError("label", f"{spec!r}: empty label (give LABEL or LABEL=WEIGHT)", owner="SampleConfig")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError("label", f"{spec!r}: the weight must be a positive number", owner="SampleConfig")
    return name, value


def check_label_specs(specs) -> tuple[str, ...]:
    """``SampleConfig.label`` as a tuple of checked ``LABEL[=WEIGHT]`` strings (a string is one label)."""
    if isinstance(specs, (list, str)):
        specs = (specs,) if isinstance(specs, str) else tuple(specs)
    if not (isinstance(specs, tuple) and all(isinstance(x, str) for x in specs)):
        raise ConfigError("label", f"must be label names (LABEL or LABEL=WEIGHT), got {specs!r}", owner="SampleConfig")
    for spec in specs:
        parse_label(spec)
    return specs
