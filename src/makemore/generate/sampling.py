"""Sampling items: ``SampleConfig`` and the requests of a run, on the batched generation of
``generation.py`` (every row of a batch grows together; no item is empty).

Constraints on the items (``constraints.py``) hold by masking, forcing and conditioning where
they can, else by rejection within a budget; ``similar_to`` ranks a pool of items
(``ranking.py``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import torch

from makemore import validation
from makemore.data.corpus import Vocab
from makemore.data.itemsets import KnownItems
from makemore.errors import MakemoreError
from makemore.generate import constraints
from makemore.generate.conditional import label_distribution
from makemore.generate.config import MAX_ITEMS, POOL_PER_ITEM, SampleConfig  # noqa: F401 - where callers find them
from makemore.generate.constraints import (
    GIVE_UP_BATCHES,
    BudgetExhausted,
    Rules,
    SampleStats,
    known_marks,
    mask_logits,  # noqa: F401 - where the tests and callers have found it
)
from makemore.generate.generation import (
    decode_rows,
    filter_logits,  # noqa: F401 - where the tests and callers have found it
    generate_tokens,
)
from makemore.generate.ranking import ItemScore, rank_similar, score_items
from makemore.models import LanguageModel
from makemore.store.runs import Run, training_data

Known = set[str] | KnownItems  # the training file's items: a set, or looked up in bulk


class Sampler:
    """Generates items with one model, meeting every constraint of a ``SampleConfig``.

    The one place items are sampled: ``batches()``, ``items()``, ``all()`` and ``scored()``
    consume the same generation. With ``similar_to``, a pool of ``config.pool_size`` distinct
    items is generated first and the ``num`` closest come at the end, closest first
    (``ranking.rank_similar``). ``Sampler.of(run, config)`` samples a trained run.

    Args:
        model: the model (its train/eval mode is restored after each use).
        vocab: the model's vocabulary.
        config: sampling options.
        default_max_len: item length bound used when ``config.max_len`` is None.
        model_limit: the most characters the model can generate (positional limit), if any.
        known_items: the training file's items (a set, or ``KnownItems``): needed for
            ``new_only``, and ``scored()`` marks the known items with them.
        label_counts: a model trained on labels: training items per label, the default mix
            of labels when ``config.label`` is empty.
        stats: filled in with what was asked, found and drawn, as it goes.
    Raises:
        ConfigError: an impossible request (before anything is generated).
    """

    def __init__(
        self,
        model: LanguageModel,
        vocab: Vocab,
        config: SampleConfig,
        *,
        default_max_len: int,
        model_limit: int | None = None,
        known_items: Known | None = None,
        label_counts: dict[str, int] | None = None,
        stats: SampleStats | None = None,
    ):
        self.model, self.vocab, self.config, self.known_items = model, vocab, config, known_items
        self.max_len = constraints.longest_item(config, default_max_len, model_limit)
        try:
            self.prefix_ids = vocab.encode(config.prefix) if config.prefix else torch.zeros(0, dtype=torch.int64)
        except MakemoreError as exc:
            validation.fail(config, "prefix", str(exc))
        if config.new_only and known_items is None:
            validation.fail(config, "new_only", "needs the training items, which could not be read")
        self.label_mix = label_distribution(vocab, label_counts or {}, config.label)  # (L,); () unlabelled
        self.label_probs = self.label_mix.float()  # what rows draw their labels from
        self.rules = Rules(config, vocab, self.max_len, config.pool_size)
        self.stats = stats if stats is not None else SampleStats()

    @classmethod
    def of(
        cls, run: Run, config: SampleConfig, *, known_items: Known | None = None, stats: SampleStats | None = None
    ) -> Sampler:
        """A sampler of a trained run's model.

        A run trained on case-folded items reads the constraints in lower case (``folded``).
        Items are at most ``config.max_len`` characters long, or when that is None twice the
        longest training item (at least 16) or what the model can generate, whichever is less.
        ``new_only`` reads the training file again (only when its checksum is the recorded
        one), unless ``known_items`` gives its items.
        """
        config = folded(run, config)
        if config.new_only and known_items is None:
            try:
                known_items = training_items(run)
            except MakemoreError as exc:
                validation.fail(config, "new_only", f"cannot use the training file: {exc}")
        return cls(
            run.model,
            run.vocab,
            config,
            default_max_len=max(16, 2 * run.description.data.longest_item),
            model_limit=run.model_limit,
            known_items=known_items,
            label_counts=run.label_counts,
            stats=stats,
        )

    def batches(self) -> Iterator[list[str]]:
        """Lists of items (possibly empty), in generation order.

        Raises:
            ConfigError: when ``GIVE_UP_BATCHES`` batches in a row add no item
                (``unique``/``new_only`` reject them all).
            BudgetExhausted: ``max_tries`` or ``time_limit`` ran out with fewer items than
                asked, or no draw can meet the constraints; the items found have been yielded.
        """
        was_training = self.model.training
        self.model.eval()
        try:
            batches = self._generate(self.config.pool_size)
            yield from self._ranked(batches) if self.config.similar_to else batches
        finally:
            self.model.train(was_training)

    def items(self) -> Iterator[str]:
        """The items of ``batches()``, one at a time."""
        for batch in self.batches():
            yield from batch

    def all(self) -> list[str]:
        """The items as a list.

        Raises:
            BudgetExhausted: as ``batches()``, with the items found as its ``items``.
        """
        out: list[str] = []
        try:
            out.extend(self.items())
        except BudgetExhausted as exc:
            exc.items = out
            raise
        return out

    def scored(self) -> Iterator[ItemScore]:
        """The items, each with its mean NLL per character (as ``score`` gives it), whether it
        is a known item (None without ``known_items``) and, with ``similar_to``, its edit
        distance. Each batch is scored together."""
        label_probs, known = self.label_mix, self.known_items
        for batch in self.batches():
            # the batch's known items, looked up together: ``score_items`` then asks a small set
            marks = None if known is None else {s for s, k in zip(batch, known_marks(known, batch)) if k}
            yield from score_items(
                self.model,
                self.vocab,
                batch,
                known_items=marks,
                similar_to=self.config.similar_to,
                label_probs=label_probs,
            )

    def _generate(self, count: int) -> Iterator[list[str]]:
        """Batches of accepted items until ``count`` are found."""
        config, rules, stats, vocab = self.config, self.rules, self.stats, self.vocab
        generator = torch.Generator().manual_seed(config.seed)
        known = self.known_items if config.new_only else None
        unique = config.unique or bool(config.similar_to)
        seen: set[str] | None = set() if unique else None
        if config.similar_to:  # the pool never holds the word itself: it is not similar to itself, it is it
            seen.add(config.similar_to)
        rejected = {"new_only": 0, "unique": 0}
        stats.asked, stats.found, stats.tried, stats.stopped, idle = count, 0, 0, None, 0
        stats.started = time.monotonic()
        while stats.found < count:
            if rules.spent(stats):
                raise BudgetExhausted(stats)
            want = count - stats.found
            rows = constraints.batch_rows(config, want, config.new_only or unique, rules, stats)
            starts = None
            if self.label_probs.numel():  # each row's label, drawn before its characters
                starts = vocab.num_chars + torch.multinomial(
                    self.label_probs, rows, replacement=True, generator=generator
                )
            tokens = generate_tokens(
                self.model,
                rows,
                generator=generator,
                banned=rules.banned,
                start_ids=starts,
                temperature=config.temperature,
                top_k=config.top_k,
                top_p=config.top_p,
                min_len=config.min_len,
                prefix_ids=self.prefix_ids,
                max_len=self.max_len,
            )
            stats.tried += rows
            candidates = rules.keep(decode_rows(tokens, vocab), stats)
            accepted = constraints.accepted(candidates, known, seen, rejected)[:want]
            stats.found += len(accepted)
            yield accepted
            idle = 0 if accepted else idle + bool(candidates)  # a batch that met no constraint is the budget's
            if idle >= GIVE_UP_BATCHES:
                raise constraints.gave_up(count, stats.found, stats.tried, rejected)
            if rules.hopeless(stats, config.num if config.similar_to else count):  # (similar_to: num of a pool)
                raise BudgetExhausted(stats)
        stats.seconds = time.monotonic() - stats.started

    def _ranked(self, batches: Iterator[list[str]]) -> Iterator[list[str]]:
        """The ``num`` items of the pool ``batches`` makes closest to ``similar_to``, as one batch."""
        pool: list[str] = []
        short = None
        try:
            for batch in batches:
                pool.extend(batch)
        except BudgetExhausted as exc:
            short = exc
        config = self.config
        ranked = rank_similar(self.model, self.vocab, pool, config.similar_to, config.num, self.label_probs.double())
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


def folded(run: Run, config: SampleConfig) -> SampleConfig:
    """``config`` as ``run`` reads it: a run trained on case-folded items folds the text of the
    constraints (``El`` is ``el``) and matches the regex ignoring case."""
    if not run.casefolded:
        return config
    fold = run.fold
    return dataclasses.replace(
        config,
        prefix=fold(config.prefix),
        suffix=fold(config.suffix),
        contains=tuple(map(fold, config.contains)),
        not_contains=tuple(map(fold, config.not_contains)),
        exclude_chars=fold(config.exclude_chars),
        similar_to=fold(config.similar_to),
        regex=f"(?i){config.regex}" if config.regex and not config.regex.startswith("(?i)") else config.regex,
    )


def sample(run: Run, config: SampleConfig, stats: SampleStats | None = None) -> list[str]:
    """Generate items with a trained run's model: ``Sampler.of(run, config).all()``.

    Raises:
        BudgetExhausted: fewer than ``config.num`` items met the constraints within the
            budget; the items found are its ``items``.
    """
    return Sampler.of(run, config, stats=stats).all()
