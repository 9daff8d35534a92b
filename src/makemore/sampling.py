"""Batched sampling shared by every model.

Rows are generated together, one token per step for the whole batch, through
``model.next_token_logits`` (which carries a KV cache or recurrent state where a model has
one). Generation stops as soon as every row has emitted the boundary token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from makemore import validation
from makemore.data import BOUNDARY, Vocab
from makemore.errors import ConfigError, MakemoreError
from makemore.runs import Run, training_data

MAX_ITEMS = 1_000_000  # most items one request may ask for (sample -n)
GIVE_UP_BATCHES = 20  # batches in a row that add no item before sampling gives up


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
    compact_fraction: float = 0.25,
) -> torch.Tensor:
    """Generate ``num`` rows of tokens.

    Rows that have ended are dropped from the model's batch (and from its cache, through
    ``model.select_cache_rows``) once at least ``compact_fraction`` of the batch has ended,
    so late steps only compute the rows still growing. Only rows still growing draw from
    ``generator``, in row order, so the result does not depend on ``compact_fraction``.

    Args:
        model: any makemore model (set to eval mode by the caller).
        prefix_ids: (P,) character ids every row starts with.
        generator: CPU RNG used for every draw.
        min_len, max_len: item length bounds in characters (prefix included).
        compact_fraction: drop ended rows from the batch once this fraction has ended.
    Returns:
        (num, 1 + L) tokens: the start boundary, the prefix, then the generated tokens; after
        a row's end boundary everything is 0.
    """
    device = next(iter(model.buffers()), next(iter(model.parameters()), torch.zeros(0))).device
    prefix_ids = prefix_ids.to(torch.int64)
    P = prefix_ids.numel()
    if P > max_len:
        validation.fail(None, "prefix", f"is {P} characters long, more than max_len {max_len}", ("max_len",))
    out = torch.zeros(num, max_len + 2, dtype=torch.int64)  # start, up to max_len characters, end
    out[:, 1 : 1 + P] = prefix_ids
    idx = out[:, : 1 + P].to(device)  # (B, t) what the model's batch has seen
    rows = torch.arange(num)  # row of ``out`` for each row of the model's batch
    running = torch.ones(num, dtype=torch.bool)  # (B,) rows of the batch still growing
    cache = None
    width = 1 + P
    for length in range(P, max_len + 1):  # length = characters so far
        if not bool(running.any()):
            break
        logits, cache = model.next_token_logits(idx, cache)  # (B, V)
        if length == max_len:  # every row still growing ends here
            next_token = torch.zeros(idx.size(0), dtype=torch.int64)
        else:
            logits = logits.float()[running.to(device)]  # (R, V) the rows that draw
            if length < min_len:
                logits[:, BOUNDARY] = float("-inf")
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


def _max_len(config: SampleConfig, default_max_len: int, model_limit: int | None) -> int:
    """The longest item to generate: ``max_len``, else the default, within the model's limit."""
    max_len = config.max_len or default_max_len
    if model_limit is not None and max_len > model_limit:
        if config.max_len:
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


def _accepted(
    items: list[str], config: SampleConfig, known: set[str] | None, seen: set[str], rejected: dict[str, int]
) -> list[str]:
    """The items ``new_only`` and ``unique`` let through, in order (``seen`` and the
    ``rejected`` counts are updated)."""
    out = []
    for item in items:
        if config.new_only and item in known:
            rejected["new_only"] += 1
            continue
        if config.unique:
            if item in seen:
                rejected["unique"] += 1
                continue
            seen.add(item)
        out.append(item)
    return out


def _gave_up(config: SampleConfig, found: int, tried: int, rejected: dict[str, int]) -> ConfigError:
    if rejected["unique"] >= rejected["new_only"]:
        cause = "unique: the model keeps making items it already made"
    else:
        cause = "new_only: the items the model makes are in the training file"
    return ConfigError(
        None,
        f"gave up after {tried} draws ({GIVE_UP_BATCHES} batches in a row without a new item), with {found} of "
        f"{config.num} items; {cause} (a higher temperature makes more different ones)",
        related=("unique", "new_only", "temperature"),
    )


def sample_items(model, vocab: Vocab, config: SampleConfig, **options: Any) -> list[str]:
    """Generate ``config.num`` items as strings: the list of ``iter_items`` (same arguments)."""
    return list(iter_items(model, vocab, config, **options))


def iter_items(
    model,
    vocab: Vocab,
    config: SampleConfig,
    *,
    default_max_len: int,
    model_limit: int | None = None,
    known_items: set[str] | None = None,
) -> Iterator[str]:
    """Generate ``config.num`` items, yielding them as they are made, a batch at a time.

    Args:
        model: the model (its train/eval mode is restored afterwards).
        vocab: the model's vocabulary.
        config: sampling options.
        default_max_len: item length bound used when ``config.max_len`` is 0.
        model_limit: the most characters the model can generate (positional limit), if any.
        known_items: the training file's items, needed for ``new_only``.
    Yields:
        The items, in generation order.
    Raises:
        ConfigError: an impossible option (before anything is generated), or when
            ``GIVE_UP_BATCHES`` batches in a row add no item (``unique``/``new_only``
            reject them all); the items found so far have been yielded by then.
    """
    max_len = _max_len(config, default_max_len, model_limit)
    try:
        prefix_ids = vocab.encode(config.prefix) if config.prefix else torch.zeros(0, dtype=torch.int64)
    except MakemoreError as exc:
        validation.fail(config, "prefix", str(exc))
    if config.new_only and known_items is None:
        validation.fail(config, "new_only", "needs the training items, which could not be read")
    generator = torch.Generator().manual_seed(config.seed)
    options = dict(temperature=config.temperature, top_k=config.top_k, top_p=config.top_p, min_len=config.min_len)
    filtering = config.new_only or config.unique
    was_training = model.training
    model.eval()
    seen: set[str] = set()
    rejected = {"new_only": 0, "unique": 0}
    found = tried = idle = 0
    try:
        while found < config.num:
            want = config.num - found
            batch = min(config.batch_size, max(2 * want, 64) if filtering else want)
            tokens = generate_tokens(
                model, batch, prefix_ids=prefix_ids, generator=generator, max_len=max_len, **options
            )
            tried += batch
            accepted = _accepted(decode_rows(tokens, vocab), config, known_items, seen, rejected)[:want]
            yield from accepted
            found += len(accepted)
            idle = 0 if accepted else idle + 1
            if idle >= GIVE_UP_BATCHES:
                raise _gave_up(config, found, tried, rejected)
    finally:
        model.train(was_training)


def sample(run: Run, config: SampleConfig) -> list[str]:
    """Generate items with a trained run's model (see ``SampleConfig``; the list of ``iter_sample``)."""
    return list(iter_sample(run, config))


def iter_sample(run: Run, config: SampleConfig) -> Iterator[str]:
    """The items of ``sample`` as they are made.

    Items are at most ``config.max_len`` characters long, or when that is 0 twice the
    longest training item (at least 16) or what the model can generate, whichever is less.
    ``new_only`` reads the training file again (only when its checksum is the recorded one).
    """
    known = None
    if config.new_only:
        try:
            known = set(training_data(run).words)
        except MakemoreError as exc:
            validation.fail(config, "new_only", f"cannot use the training file: {exc}")
    longest = run.meta["data"]["longest_item"]
    yield from iter_items(
        run.model,
        run.vocab,
        config,
        default_max_len=max(16, 2 * longest),
        model_limit=run.model_limit,
        known_items=known,
    )
