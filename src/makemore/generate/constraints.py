"""Constraints on sampled items: which hold by construction, which by rejection, and the budget.

Excluded characters are masked out of every draw, the prefix is conditioned on and the
lengths are forced (``sampling.generate_tokens``): those hold exactly. A suffix, substrings
that must or must not appear and a regular expression are checked on the decoded items of
each batch and the rest are dropped (rejection), within a budget of draws and seconds
(``SampleStats``, ``BudgetExhausted``). A request that no item can meet is refused before
anything is generated (``Rules``); one that nothing meets after enough draws to be sure the
budget cannot be enough stops early (``Rules.hopeless``).

Regular expressions are compiled and matched by the ``regex`` package, for the CLI, the API
and the web page alike (``compile_regex``). Measured against ``re`` and ``google-re2``: ``re``
backtracks without bound (``^(([a-z])+.)+[A-Z]([a-z])+$`` on random letters: 0.03 s for 26,
0.3 s for 30, 3x more every 2 letters: a minute for 40) and cannot be interrupted, so one match
could outlast ``time_limit``; ``regex`` matched 40 such letters in 1.5 ms, takes a ``timeout``
on each match (so the time limit holds even for the patterns it does backtrack on, like
``^(a|aa)+b`` on 40 a's, about a minute), reads ``re``'s syntax and errors an impossible repeat
count instead of raising OverflowError. ``google-re2`` is linear-time, but has no
backreferences nor lookarounds (patterns that work with ``re`` would be refused) and its
binding was slower per match (3.3 us against 0.6 us for ``regex``, 2.5 us with a timeout, on
120,000 short names).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from makemore import validation
from makemore.data.corpus import BOUNDARY, Vocab
from makemore.errors import ConfigError, MakemoreError
from makemore.generate.config import compile_regex, rejects, validate_fields  # noqa: F401 - used here and by callers

DEFAULT_TIME_LIMIT = 30.0  # seconds, when a constraint rejects items and no time_limit is given
TRIES_PER_ITEM, MIN_TRIES = 1000, 100_000  # default max_tries: 1,000 draws per item, at least 100,000
GIVE_UP_BATCHES = 20  # batches in a row whose items unique/new_only all drop before sampling gives up


def shortest_with(prefix: str, suffix: str) -> int:
    """Length of the shortest string that starts with ``prefix`` and ends with ``suffix``."""
    lp, ls = len(prefix), len(suffix)
    for length in range(max(lp, ls), lp + ls + 1):
        if prefix[length - ls :] == suffix[: lp + ls - length]:  # where they overlap, they agree
            return length
    return lp + ls  # pragma: no cover - the loop always returns by length lp + ls


def _check_possible(config, vocab: Vocab, max_len: int) -> None:
    """Refuse a request no item can meet (checked against the model's vocabulary)."""
    excluded = set(config.exclude_chars)
    required = [("prefix", config.prefix), ("suffix", config.suffix), *(("contains", s) for s in config.contains)]
    for name, text in required:
        try:
            vocab.encode(text)
        except MakemoreError as exc:
            validation.fail(config, name, str(exc))
        banned = next((c for c in text if c in excluded), None)
        if banned is not None:
            validation.fail(config, name, f"{text!r} has {banned!r}, one of exclude_chars", ("exclude_chars",))
        forbidden = next((s for s in config.not_contains if s in text), None)
        if forbidden is not None:
            validation.fail(
                config, name, f"{text!r} contains {forbidden!r}, which not_contains forbids", ("not_contains",)
            )
        if len(text) > max_len:
            validation.fail(config, name, f"is {len(text)} characters long, more than max_len {max_len}", ("max_len",))
    shortest = shortest_with(config.prefix, config.suffix)
    if shortest > max_len:
        validation.fail(
            config,
            "suffix",
            f"an item with prefix {config.prefix!r} and suffix {config.suffix!r} has at least {shortest} characters, "
            f"more than max_len {max_len}",
            ("prefix", "max_len"),
        )
    masked = excluded | {s for s in config.not_contains if len(s) == 1}
    if not set(vocab.chars) - masked:  # an item has at least one character
        name = "exclude_chars" if excluded else "not_contains"
        also = "" if not excluded or set(vocab.chars) <= excluded else " (with the characters of not_contains)"
        problem = f"excludes every character{also}, so no item can be made (an item has at least one)"
        validation.fail(config, name, problem, ("not_contains",))


@dataclass
class SampleStats:
    """How a request went: what was asked, found and drawn, and whether the budget ran out."""

    asked: int = 0  # items asked for (the pool, with similar_to)
    found: int = 0  # items accepted so far
    tried: int = 0  # rows generated so far
    seconds: float = 0.0  # time spent generating so far
    stopped: str | None = None  # "max_tries" or "time_limit" when the budget ran out, "hopeless" when it would
    draws_left: int = 0  # with "hopeless": the draws the budget had left (max_tries, or what the time allows)
    started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def acceptance(self) -> float:
        """Fraction of the rows drawn that were accepted (1 before any draw)."""
        return self.found / self.tried if self.tried else 1.0


class BudgetExhausted(ConfigError):
    """The draws or the seconds of a request ran out before ``num`` items met its constraints.

    Raised after the items found have been yielded; ``sample`` attaches them as ``items``.

    Attributes:
        stats: what was asked, found and drawn.
        items: the items found (filled in by ``sampling.sample``; empty for the iterators).
    """

    def __init__(self, stats: SampleStats):
        self.stats, self.items = stats, []
        found = f"{stats.found:,} of {stats.asked:,}" if stats.found else f"none of {stats.asked:,}"
        rate = f"acceptance {100 * stats.acceptance:.3g}%"
        if stats.stopped == "hopeless":
            super().__init__(
                None,
                f"found {found} items in {stats.tried:,} draws ({stats.seconds:.1f} s); stopped early: with none "
                f"of {stats.tried:,} draws meeting the constraints, fewer than 3 in {stats.tried:,} do (95% "
                f"confidence), too few for {stats.asked:,} items in the {stats.draws_left:,} draws that max_tries "
                "and time_limit leave; loosen the constraints",
                related=("max_tries", "time_limit"),
            )
            return
        if stats.stopped == "max_tries":
            spent = f"in {stats.tried:,} draws ({stats.seconds:.1f} s, {rate}), all that max_tries allows"
        else:
            spent = f"in {stats.seconds:.1f} s, the time_limit ({stats.tried:,} draws, {rate})"
        super().__init__(
            None,
            f"found {found} items {spent}; a larger max_tries or time_limit may find more",
            related=("max_tries", "time_limit"),
        )


class Rules:
    """The constraints of one request, checked against the model's vocabulary.

    Args:
        config: a ``SampleConfig``.
        vocab: the model's vocabulary.
        max_len: the longest item this request generates.
        asked: how many items are asked for (sets the default ``max_tries``).
    Raises:
        ConfigError: no item can meet the constraints (a character the model never saw,
            an excluded character in the prefix, suffix or a ``contains``, a suffix that
            does not fit in ``max_len``, ...).
    """

    def __init__(self, config, vocab: Vocab, max_len: int, asked: int):
        _check_possible(config, vocab, max_len)
        self.config = config
        # single characters that no item may contain are never drawn: exact, and no rejection
        masked = set(config.exclude_chars) | {s for s in config.not_contains if len(s) == 1}
        ids = [i + 1 for i, c in enumerate(vocab.chars) if c in masked]
        ids += range(vocab.num_chars, vocab.size)  # label tokens start items, they are never drawn
        self.banned = torch.zeros(vocab.size, dtype=torch.bool).index_fill_(0, torch.tensor(ids), True) if ids else None
        self.not_contains = tuple(s for s in config.not_contains if len(s) > 1)
        self.pattern = compile_regex(config)
        self.met = 0  # items that met the rejection constraints so far
        self.rejects = rejects(config)
        tries = config.max_tries if config.max_tries is not None else max(MIN_TRIES, TRIES_PER_ITEM * asked)
        seconds = config.time_limit
        if seconds is None:
            seconds = DEFAULT_TIME_LIMIT if self.rejects else 0.0
        self.max_tries, self.time_limit = tries or None, seconds or None

    def keep(self, items: list[str], stats: SampleStats) -> list[str]:
        """The items that meet the rejection constraints, in order.

        The regular expression is matched with a timeout of the time left (when there is a
        time limit): at the limit the items not yet matched are dropped and the budget is spent.
        """
        config = self.config
        if config.suffix:
            items = [s for s in items if s.endswith(config.suffix)]
        for part in config.contains:
            items = [s for s in items if part in s]
        for part in self.not_contains:
            items = [s for s in items if part not in s]
        if self.pattern is not None:
            items = self._matching(items, stats)
        self.met += len(items)
        return items

    def _matching(self, items: list[str], stats: SampleStats) -> list[str]:
        search = self.pattern.search
        if self.time_limit is None:
            return [s for s in items if search(s)]
        deadline, clock = stats.started + self.time_limit, time.monotonic
        out = []
        try:  # each match may take the time left, no more (a backtracking pattern stops at the limit)
            out.extend(s for s in items if search(s, timeout=max(deadline - clock(), 0.0)))
        except TimeoutError:
            pass  # ``spent`` now says time_limit
        return out

    def hopeless(self, stats: SampleStats, needed: int) -> bool:
        """Whether to stop early: no draw met the constraints in so many that the budget left
        is surely too small for ``needed`` items (``stats.stopped`` becomes "hopeless").

        With 0 of m draws accepted, the acceptance rate p is below 3/m with 95% confidence
        (the rule of three: (1 - 3/m)^m ~ e^-3 ~ 0.05). At that rate the d draws left would
        give 3 d / m items on average; when that is fewer than ``needed``, even the highest
        rate the draws so far allow would not fill the request, so it stops. The draws left
        are those of max_tries and, with a time limit, those the time left allows at the speed
        so far (whichever is fewer). Depends on counts only, without a time limit.
        """
        m = stats.tried
        if self.met or not m or not self.rejects:  # (unique and new_only give up by GIVE_UP_BATCHES)
            return False
        stats.seconds = time.monotonic() - stats.started
        left = [self.max_tries - m] if self.max_tries is not None else []
        if self.time_limit is not None and stats.seconds > 0:
            left.append(int(m / stats.seconds * max(self.time_limit - stats.seconds, 0.0)))
        if not left or min(left) <= 0 or 3 * min(left) / m >= needed:  # (none left: the budget's own message)
            return False
        stats.stopped, stats.draws_left = "hopeless", int(min(left))
        return True

    def draws_left(self, stats: SampleStats) -> int | None:
        """Rows the budget still allows (None: no limit on draws)."""
        return None if self.max_tries is None else self.max_tries - stats.tried

    def spent(self, stats: SampleStats) -> bool:
        """Whether the budget has run out (``stats.stopped`` says which part); updates the time."""
        stats.seconds = time.monotonic() - stats.started
        if self.max_tries is not None and stats.tried >= self.max_tries:
            stats.stopped = "max_tries"
        elif self.time_limit is not None and stats.seconds >= self.time_limit:
            stats.stopped = "time_limit"
        return stats.stopped is not None


def mask_logits(logits: torch.Tensor, banned: torch.Tensor | None, end_allowed: bool) -> torch.Tensor:
    """Forbid the ``banned`` tokens (and the boundary while ``end_allowed`` is false) in ``logits`` (R, V).

    A row left with no allowed token the model gives any probability draws uniformly among
    the allowed ones, so every constraint still holds and the draw is defined.

    Args:
        logits: (R, V) next-token logits.
        banned: (V,) bool, tokens never drawn (never the boundary), or None.
        end_allowed: whether the item may end here (its length has reached ``min_len``).
    Returns:
        New (R, V) logits.
    """
    allowed = torch.ones(logits.size(-1), dtype=torch.bool, device=logits.device)
    if banned is not None:
        allowed &= ~banned.to(logits.device)
    allowed[BOUNDARY] = end_allowed
    logits = logits.masked_fill(~allowed, float("-inf"))
    dead = ~(logits > float("-inf")).any(dim=-1)  # (R,)
    if bool(dead.any()):
        logits[dead] = torch.zeros_like(logits[0]).masked_fill(~allowed, float("-inf"))
    return logits


def known_marks(known, items: list[str]) -> list[bool]:
    """Whether each item is in ``known``: a set of strings, or ``itemsets.KnownItems``
    (the training file's items, looked up for the whole batch at once)."""
    if hasattr(known, "contains"):
        return known.contains(items).tolist()
    return [item in known for item in items]


def accepted(items: list[str], known, seen: set[str] | None, rejected: dict[str, int]) -> list[str]:
    """The items not in ``known`` (new_only; a set or ``KnownItems``) nor in ``seen`` (unique),
    in order (``seen`` and the ``rejected`` counts are updated)."""
    out = []
    marks = known_marks(known, items) if known is not None else [False] * len(items)
    for item, is_known in zip(items, marks):
        if is_known:
            rejected["new_only"] += 1
            continue
        if seen is not None:
            if item in seen:
                rejected["unique"] += 1
                continue
            seen.add(item)
        out.append(item)
    return out


def gave_up(asked: int, found: int, tried: int, rejected: dict[str, int]) -> ConfigError:
    """The error of a request whose items unique/new_only keep dropping."""
    if rejected["unique"] >= rejected["new_only"]:
        cause = "unique: the model keeps making items it already made"
    else:
        cause = "new_only: the items the model makes are in the training file"
    return ConfigError(
        None,
        f"gave up after {tried} draws ({GIVE_UP_BATCHES} batches in a row without a new item), with {found} of "
        f"{asked} items; {cause} (a higher temperature makes more different ones)",
        related=("unique", "new_only", "temperature"),
    )


def batch_rows(config, want: int, filtering: bool, rules: Rules, stats: SampleStats) -> int:
    """Rows of the next batch: what is still wanted, more when items may be dropped.

    With a rejection constraint, enough for the acceptance seen so far (1 in 2 before any
    draw; the whole ``batch_size`` while nothing was accepted). Depends only on counts, so
    the items stay the same for a seed whatever the machine's speed.
    """
    if rules.rejects:
        rate = stats.found / stats.tried if stats.tried else 0.5
        rows = config.batch_size if rate == 0 else max(64, math.ceil(1.2 * want / rate))
    else:
        rows = max(2 * want, 64) if filtering else want
    rows = min(config.batch_size, rows)
    left = rules.draws_left(stats)
    return rows if left is None else min(rows, left)


def longest_item(config, default_max_len: int, model_limit: int | None) -> int:
    """The longest item to generate: ``config.max_len``, else the default, within the model's limit."""
    max_len = default_max_len if config.max_len is None else config.max_len
    if model_limit is not None and max_len > model_limit:
        if config.max_len is not None:
            validation.fail(config, "max_len", f"{config.max_len} is more than this model can generate ({model_limit})")
        max_len = model_limit
    if config.min_len > max_len:
        validation.fail(
            config,
            "min_len",
            f"{config.min_len} is more than the longest item this model makes ({max_len}; see max_len)",
            ("max_len",),
        )
    return max_len
