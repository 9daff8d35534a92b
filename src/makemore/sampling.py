"""Batched sampling shared by every model.

Rows are generated together, one token per step for the whole batch, through
``model.next_token_logits`` (which carries a KV cache or recurrent state where a model has
one). Generation stops as soon as every row has emitted the boundary token. Constraints on
the items (``constraints.py``) hold by masking, forcing and conditioning where they can, else
by rejection within a budget; ``similar_to`` ranks a pool of items (``ranking.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from makemore import constraints, validation
from makemore.conditional import check_label_specs, label_distribution
from makemore.constraints import GIVE_UP_BATCHES, BudgetExhausted, Rules, SampleStats, known_marks, mask_logits
from makemore.data import BOUNDARY, Vocab
from makemore.errors import MakemoreError
from makemore.itemsets import KnownItems
from makemore.ranking import ItemScore, rank_similar, score_items
from makemore.runs import Run, training_data

Known = set[str] | KnownItems  # the training file's items: a set, or looked up in bulk
MAX_ITEMS = 1_000_000  # most items one request may ask for (sample -n, --pool)
POOL_PER_ITEM = 10  # default pool of similar_to: 10 items generated per item returned


@dataclass
class SampleConfig:
    """Options for generating items."""

    num: int = 20  # how many items
    seed: int = 0  # RNG seed (same seed, same items)
    temperature: float = 1.0  # < 1 sharper, > 1 flatter; 0 = greedy
    top_k: int = 0  # keep the k most likely tokens (0 = all)
    top_p: float = 1.0  # nucleus: keep the smallest set with this much probability (1 = all)
    prefix: str = ""  # every item starts with this
    min_len: int = 0  # no item shorter than this (in characters, prefix included)
    max_len: int = 0  # no item longer than this (0 = model's limit or 2x the longest training item)
    new_only: bool = False  # drop items that are in the training file
    unique: bool = False  # drop repeats
    batch_size: int = 1000  # rows generated together
    suffix: str = ""  # every item ends with this
    contains: tuple[str, ...] = ()  # every item contains each of these
    not_contains: tuple[str, ...] = ()  # no item contains any of these
    exclude_chars: str = ""  # no item contains any of these characters (they are never drawn)
    regex: str = ""  # every item matches this regular expression (re.search: anchor it with ^ and $)
    max_tries: int | None = None  # most rows drawn in all (None: 1,000 per item, at least 100,000; 0 = no limit)
    time_limit: float | None = None  # seconds (None: 30 when a constraint drops items, else none; 0 = none)
    similar_to: str = ""  # return the items closest to this word (edit distance), closest first
    pool: int = 0  # with similar_to: items generated to choose from (0 = 10 per item asked)
    label: tuple[str, ...] = ()  # models trained on labels: LABEL or LABEL=WEIGHT (default: as in training)

    def __post_init__(self) -> None:
        validation.integers(self, 0, "num", "min_len")
        if self.num > MAX_ITEMS:
            validation.fail(self, "num", f"at most {MAX_ITEMS:,} items at a time, got {self.num:,}")
        validation.integers(self, 0, "max_len", note=" (0 = the model's default)")
        validation.integers(self, 1, "batch_size")
        validation.integers(self, 0, "top_k", note=" (0 = all)")
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed < 2**64):
            validation.fail(self, "seed", f"must be an integer from 0 to 2**64 - 1, got {self.seed!r}")
        validation.number(self, "temperature", least=0)
        validation.number(self, "top_p", above=0, most=1)
        validation.text(self, "prefix")
        validation.flags(self, "new_only", "unique")
        if self.max_len and self.min_len > self.max_len:
            validation.fail(self, "min_len", f"{self.min_len} is more than max_len {self.max_len}", ("max_len",))
        constraints.validate_fields(self)
        self.label = check_label_specs(self.label)
        validation.integers(self, 0, "pool", note=" (0 = 10 per item asked)")
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


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Apply temperature, top-k and top-p to ``logits`` (B, V); returns new logits."""
    if temperature <= 0:
        keep = logits == logits.max(dim=-1, keepdim=True).values
        return logits.masked_fill(~keep, float("-inf"))
    logits = logits / temperature
    if 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop_sorted = (cum - torch.softmax(sorted_logits, dim=-1)) >= top_p  # mass before this token already enough
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _draw(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row of ``logits`` (R, V), drawn on the CPU from ``generator``."""
    return torch.multinomial(torch.softmax(logits, dim=-1).cpu(), 1, generator=generator).squeeze(1)


@torch.no_grad()
def generate_tokens(
    model,
    num: int,
    *,
    prefix_ids: torch.Tensor,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    min_len: int = 0,
    max_len: int = 32,
    banned: torch.Tensor | None = None,
    start_ids: torch.Tensor | None = None,
    compact_fraction: float = 0.25,
) -> torch.Tensor:
    """Generate ``num`` rows of tokens.

    Rows that have ended are dropped from the model's batch (and from its cache, through ``model.select_cache_rows``)
    once at least ``compact_fraction`` of the batch has ended, so late steps only compute the rows still growing.
    Only rows still growing draw from ``generator``, in row order: the result does not depend on ``compact_fraction``.

    Args:
        model: any makemore model (set to eval mode by the caller).
        prefix_ids: (P,) character ids every row starts with.
        generator: CPU RNG used for every draw.
        min_len, max_len: item length bounds in characters (prefix included).
        banned: (V,) bool, tokens never drawn (excluded characters, label tokens), or None.
        start_ids: (num,) the token each row starts from (its label's token), or None: the boundary.
        compact_fraction: drop ended rows from the batch once this fraction has ended.
    Returns:
        (num, 1 + L) tokens: the start token, the prefix, then the generated tokens (0 after a row's end).
    """
    device = next(iter(model.buffers()), next(iter(model.parameters()), torch.zeros(0))).device
    P = prefix_ids.numel()
    if P > max_len:
        validation.fail(None, "prefix", f"is {P} characters long, more than max_len {max_len}", ("max_len",))
    out = torch.zeros(num, max_len + 2, dtype=torch.int64)  # start, up to max_len characters, end
    out[:, 0], out[:, 1 : 1 + P] = BOUNDARY if start_ids is None else start_ids, prefix_ids
    idx = out[:, : 1 + P].to(device)  # (B, t) what the model's batch has seen
    rows = torch.arange(num)  # row of ``out`` for each row of the model's batch
    running = torch.ones(num, dtype=torch.bool)  # (B,) rows of the batch still growing
    cache, width = None, 1 + P
    for length in range(P, max_len + 1):  # length = characters so far
        if not bool(running.any()):
            break
        logits, cache = model.next_token_logits(idx, cache)  # (B, V)
        if length == max_len:  # every row still growing ends here
            next_token = torch.zeros(idx.size(0), dtype=torch.int64)
        else:
            logits = logits.float()[running.to(device)]  # (R, V) the rows that draw
            if banned is not None or length < min_len:
                logits = mask_logits(logits, banned, end_allowed=length >= min_len)
            drawn = _draw(filter_logits(logits, temperature, top_k, top_p), generator)  # (R,)
            next_token = torch.zeros(idx.size(0), dtype=torch.int64).masked_scatter_(running, drawn)
        out[rows, 1 + length] = next_token
        width = 2 + length
        running &= next_token != BOUNDARY
        idx = torch.cat([idx, next_token.unsqueeze(1).to(device)], dim=1)
        ended = idx.size(0) - int(running.sum())
        if ended and ended >= compact_fraction * idx.size(0):
            keep = running.nonzero().squeeze(1)  # (R,)
            cache = model.select_cache_rows(cache, keep.to(device))
            idx, rows, running = idx[keep.to(device)], rows[keep], running[keep]
    return out[:, :width]


def decode_rows(tokens: torch.Tensor, vocab: Vocab) -> list[str]:
    """Strings of generated rows (start boundary dropped, cut at the end boundary)."""
    body = tokens[:, 1:].cpu()
    ended = (body == BOUNDARY).cumsum(dim=1) > 0
    codepoints = torch.tensor([0, *map(ord, vocab.chars)], dtype=torch.int32)[body.masked_fill(ended, BOUNDARY)]
    # items never contain a line break: one '\n' after each row separates them
    newline = torch.full((body.size(0), 1), ord("\n"), dtype=torch.int32)
    flat = torch.cat([codepoints, newline], dim=1).flatten()  # (N * (L + 1),)
    text = flat[flat != 0].numpy().tobytes().decode("utf-32-le", "surrogatepass")
    return text.split("\n")[:-1]


def _generate(
    model, vocab: Vocab, config: SampleConfig, rules: Rules, stats: SampleStats, *, count: int, unique: bool, **options
) -> Iterator[list[str]]:
    """Batches of accepted items until ``count`` are found (see ``iter_item_batches``)."""
    generator = torch.Generator().manual_seed(config.seed)
    known = options.pop("known_items")
    known = known if config.new_only else None
    label_probs = options.pop("label_probs")
    draw = dict(temperature=config.temperature, top_k=config.top_k, top_p=config.top_p, min_len=config.min_len)
    seen: set[str] | None = set() if unique else None
    rejected = {"new_only": 0, "unique": 0}
    stats.asked, stats.found, stats.tried, stats.stopped, idle = count, 0, 0, None, 0
    stats.started = time.monotonic()
    while stats.found < count:
        if rules.spent(stats):
            raise BudgetExhausted(stats)
        want = count - stats.found
        rows = constraints.batch_rows(config, want, config.new_only or unique, rules, stats)
        starts = None
        if label_probs.numel():  # each row's label, drawn before its characters
            starts = vocab.num_chars + torch.multinomial(label_probs, rows, replacement=True, generator=generator)
        tokens = generate_tokens(
            model, rows, generator=generator, banned=rules.banned, start_ids=starts, **draw, **options
        )
        stats.tried += rows
        candidates = rules.keep(decode_rows(tokens, vocab))
        accepted = constraints.accepted(candidates, known, seen, rejected)[:want]
        stats.found += len(accepted)
        yield accepted
        idle = 0 if accepted else idle + bool(candidates)  # a batch that met no constraint is the budget's
        if idle >= GIVE_UP_BATCHES:
            raise constraints.gave_up(count, stats.found, stats.tried, rejected)
    stats.seconds = time.monotonic() - stats.started


def sample_items(model, vocab: Vocab, config: SampleConfig, **options: Any) -> list[str]:
    """Generate ``config.num`` items as strings: the list of ``iter_items`` (same arguments).

    Raises:
        BudgetExhausted: as ``iter_items``, with the items found as its ``items``.
    """
    return _collect(iter_items(model, vocab, config, **options))


def _collect(items: Iterator[str]) -> list[str]:
    out: list[str] = []
    try:
        out.extend(items)
    except BudgetExhausted as exc:
        exc.items = out
        raise
    return out


def iter_items(model, vocab: Vocab, config: SampleConfig, **options: Any) -> Iterator[str]:
    """The items of ``iter_item_batches`` (same arguments), one at a time."""
    for batch in iter_item_batches(model, vocab, config, **options):
        yield from batch


def iter_item_batches(
    model,
    vocab: Vocab,
    config: SampleConfig,
    *,
    default_max_len: int,
    model_limit: int | None = None,
    known_items: Known | None = None,
    stats: SampleStats | None = None,
    label_counts: dict[str, int] | None = None,
) -> Iterator[list[str]]:
    """Generate ``config.num`` items, a batch at a time, meeting every constraint of ``config``.

    With ``similar_to``, a pool of ``config.pool_size`` distinct items is generated first
    and the ``num`` closest are yielded at the end, closest first (``ranking.rank_similar``).

    Args:
        model: the model (its train/eval mode is restored afterwards).
        vocab: the model's vocabulary.
        config: sampling options.
        default_max_len: item length bound used when ``config.max_len`` is 0.
        model_limit: the most characters the model can generate (positional limit), if any.
        known_items: the training file's items (a set, or ``KnownItems``), needed for ``new_only``.
        stats: filled in with what was asked, found and drawn, as it goes.
        label_counts: a model trained on labels: training items per label, the default mix
            of labels when ``config.label`` is empty.
    Yields:
        Lists of items (possibly empty), in generation order.
    Raises:
        ConfigError: an impossible request (before anything is generated), or when
            ``GIVE_UP_BATCHES`` batches in a row add no item (``unique``/``new_only``
            reject them all).
        BudgetExhausted: ``max_tries`` or ``time_limit`` ran out with fewer items than
            asked; the items found have been yielded by then.
    """
    max_len = constraints.longest_item(config, default_max_len, model_limit)
    try:
        prefix_ids = vocab.encode(config.prefix) if config.prefix else torch.zeros(0, dtype=torch.int64)
    except MakemoreError as exc:
        validation.fail(config, "prefix", str(exc))
    if config.new_only and known_items is None:
        validation.fail(config, "new_only", "needs the training items, which could not be read")
    label_probs = label_distribution(vocab, label_counts or {}, config.label).float()  # (L,); () unlabelled
    rules = Rules(config, vocab, max_len, config.pool_size)
    stats = stats if stats is not None else SampleStats()
    options = dict(prefix_ids=prefix_ids, max_len=max_len, known_items=known_items, label_probs=label_probs)
    unique = config.unique or bool(config.similar_to)
    was_training = model.training
    model.eval()
    try:
        batches = _generate(model, vocab, config, rules, stats, count=config.pool_size, unique=unique, **options)
        yield from _ranked(batches, model, vocab, config, label_probs) if config.similar_to else batches
    finally:
        model.train(was_training)


def _ranked(batches: Iterator[list[str]], model, vocab: Vocab, config: SampleConfig, label_probs: torch.Tensor):
    """The ``num`` items of the pool ``batches`` makes closest to ``similar_to``, as one batch."""
    pool: list[str] = []
    short = None
    try:
        for batch in batches:
            pool.extend(batch)
    except BudgetExhausted as exc:
        short = exc
    ranked = rank_similar(model, vocab, pool, config.similar_to, config.num, label_probs.double())
    yield ranked
    if short is not None and len(ranked) < config.num:
        raise short


def training_items(run: Run) -> KnownItems:
    """The items of the file ``run`` was trained on (read again, only if its checksum matches),
    for ``item in known`` and ``known.contains(items)`` (``itemsets.KnownItems``: no Python
    string per training item, so a training file of millions of items is fine).

    Raises:
        MakemoreError: the file is missing, unreadable or not the one the run was trained on.
    """
    return training_data(run).known_items()


def sample(run: Run, config: SampleConfig, stats: SampleStats | None = None) -> list[str]:
    """Generate items with a trained run's model (see ``SampleConfig``; the list of ``iter_sample``).

    Raises:
        BudgetExhausted: fewer than ``config.num`` items met the constraints within the
            budget; the items found are its ``items``.
    """
    return _collect(iter_sample(run, config, stats))


def iter_sample(run: Run, config: SampleConfig, stats: SampleStats | None = None) -> Iterator[str]:
    """The items of ``sample`` as they are made (see ``iter_sample_batches``)."""
    for batch in iter_sample_batches(run, config, stats):
        yield from batch


def iter_sample_batches(
    run: Run, config: SampleConfig, stats: SampleStats | None = None, known_items: Known | None = None
) -> Iterator[list[str]]:
    """The items of ``sample``, a batch at a time (``iter_item_batches`` with the run's model).

    Items are at most ``config.max_len`` characters long, or when that is 0 twice the
    longest training item (at least 16) or what the model can generate, whichever is less.
    ``new_only`` reads the training file again (only when its checksum is the recorded one),
    unless ``known_items`` gives its items.
    """
    if config.new_only and known_items is None:
        try:
            known_items = training_items(run)
        except MakemoreError as exc:
            validation.fail(config, "new_only", f"cannot use the training file: {exc}")
    longest = run.meta["data"]["longest_item"]
    yield from iter_item_batches(
        run.model,
        run.vocab,
        config,
        default_max_len=max(16, 2 * longest),
        model_limit=run.model_limit,
        known_items=known_items,
        stats=stats,
        label_counts=run.label_counts,
    )


def iter_sample_scores(
    run: Run, config: SampleConfig, *, known_items: Known | None = None, stats: SampleStats | None = None
) -> Iterator[ItemScore]:
    """The items of ``iter_sample``, each with its mean NLL per character (as ``score`` gives
    it), whether it is in ``known_items`` (None when not given) and, with ``similar_to``, its
    edit distance. Each batch is scored together.
    """
    label_probs = label_distribution(run.vocab, run.label_counts, config.label)
    for batch in iter_sample_batches(run, config, stats, known_items):
        # the batch's known items, looked up together: ``score_items`` then asks a small set
        marks = None if known_items is None else {s for s, k in zip(batch, known_marks(known_items, batch)) if k}
        yield from score_items(
            run.model, run.vocab, batch, known_items=marks, similar_to=config.similar_to, label_probs=label_probs
        )
