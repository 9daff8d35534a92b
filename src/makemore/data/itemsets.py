"""Items compared in bulk: hashes of encoded items, exact comparison of pairs, first occurrences
(``--dedupe``) and membership in a training file (``KnownItems``, for ``new_only``).

An item's hash is two polynomial hashes of its tokens modulo two primes near 2^31, packed
into one non-negative int64 (62 bits), computed for a chunk of the corpus at a time with
tensor ops. A hash only proposes: items with equal hashes are compared token by token, so
a collision never makes two different items equal (nor drops one, nor marks it known).
"""

from __future__ import annotations

import torch

from makemore.data.corpus import BOUNDARY, EncodedCorpus, Vocab

_MODULI = (2_147_483_647, 1_000_000_007)  # primes: every product below stays under 2^62
_BASES = (1_000_003, 3_141_592)
CHUNK_TOKENS = 1 << 22  # token positions per tensor op (bounds the int64 temporaries)


def _powers(longest: int) -> list[torch.Tensor]:
    """For each modulus, (longest + 1,) int64 base^k mod p."""
    out = []
    for base, p in zip(_BASES, _MODULI):
        values, v = [], 1
        for _ in range(longest + 1):
            values.append(v)
            v = v * base % p
        out.append(torch.tensor(values, dtype=torch.int64))
    return out


def _chunks(lengths: torch.Tensor) -> list[tuple[int, int]]:
    """Runs ``[a, b)`` of items holding about ``CHUNK_TOKENS`` tokens each (at least one item)."""
    n = lengths.numel()
    ends = torch.cumsum(lengths + 1, 0)
    total = int(ends[-1]) if n else 0
    cuts = torch.searchsorted(ends, torch.arange(CHUNK_TOKENS, max(total, CHUNK_TOKENS), CHUNK_TOKENS)) + 1
    bounds = torch.unique(torch.cat([torch.tensor([0, n]), cuts.clamp(max=n)])).tolist()
    return list(zip(bounds[:-1], bounds[1:]))


def item_hashes(corpus: EncodedCorpus, *, with_labels: bool = False) -> torch.Tensor:
    """(n,) int64 hash of each item's tokens (and, ``with_labels``, of its start token).

    The corpus must hold its items one after another in ``tokens`` (as every corpus made
    here does: ``from_words``, ``from_lines``, ``subset``, ``shard``).
    """
    n = len(corpus)
    out = torch.zeros(n, dtype=torch.int64)
    powers = _powers(corpus.max_len)
    for a, b in _chunks(corpus.lengths):
        first = int(corpus.starts[a])
        stream = corpus.tokens[first : int(corpus.starts[b - 1] + corpus.lengths[b - 1]) + 1].long()  # (M,)
        boundary = stream == BOUNDARY
        item_of = torch.cumsum(boundary, 0) - 1  # (M,) each position's item, from a
        within = torch.arange(stream.numel()) - (corpus.starts[a:b] - first)[item_of] - 1  # -1 on boundaries
        parts = []
        for power, p in zip(powers, _MODULI):
            terms = torch.where(boundary, 0, (stream + 1) * power[within.clamp(min=0)] % p)
            h = torch.zeros(b - a, dtype=torch.int64).index_add_(0, item_of, terms) % p
            if with_labels and corpus.start_tokens is not None:
                h = (h * _BASES[0] + corpus.start_tokens[a:b].long() + 1) % p
            parts.append(h)
        out[a:b] = parts[0] * (1 << 31) + parts[1]
    return out


def equal_items(a: EncodedCorpus, ia: torch.Tensor, b: EncodedCorpus, ib: torch.Tensor, with_labels: bool = False):
    """(P,) bool: whether item ``ia[k]`` of ``a`` has the same tokens as item ``ib[k]`` of ``b``
    (and, ``with_labels``, the same start token), compared token by token."""
    same = a.lengths[ia] == b.lengths[ib]
    if with_labels and a.start_tokens is not None and b.start_tokens is not None:
        same &= a.start_tokens[ia] == b.start_tokens[ib]
    pairs = same.nonzero().squeeze(1)  # the pairs of equal lengths: compare their tokens
    for lo, hi in _chunks(a.lengths[ia[pairs]]):
        chunk = pairs[lo:hi]
        length = a.lengths[ia[chunk]]  # (C,)
        pair_of = torch.repeat_interleave(torch.arange(chunk.numel()), length)  # (M,)
        within = torch.arange(pair_of.numel()) - (torch.cumsum(length, 0) - length)[pair_of] + 1
        left = a.tokens[a.starts[ia[chunk]][pair_of] + within]
        right = b.tokens[b.starts[ib[chunk]][pair_of] + within]
        same[chunk[pair_of[left != right].unique()]] = False
    return same


def first_occurrences(corpus: EncodedCorpus, *, with_labels: bool = True) -> torch.Tensor:
    """(k,) int64 indices of the items that do not repeat an earlier one, in order: what
    ``dict.fromkeys`` keeps (for a labelled corpus, of (label, item) pairs).

    Items are grouped by hash (a stable sort, so each group is in item order), each item is
    compared with the first of its group, and a group where some item differs from its first
    (a hash collision) is settled item by item.
    """
    hashes, order = torch.sort(item_hashes(corpus, with_labels=with_labels), stable=True)
    new_group = torch.ones(hashes.numel(), dtype=torch.bool)
    new_group[1:] = hashes[1:] != hashes[:-1]
    group = torch.cumsum(new_group, 0) - 1  # (n,) group of each sorted position
    first = order[new_group][group]  # (n,) the first item of each position's group
    later = ~new_group
    same = equal_items(corpus, order[later], corpus, first[later], with_labels)
    repeated = torch.zeros(len(corpus), dtype=torch.bool)
    repeated[order[later][same]] = True
    collided = group[later][~same].unique()
    if collided.numel():
        _settle(corpus, order[torch.isin(group, collided)], repeated, with_labels)
    return (~repeated).nonzero().squeeze(1)


def _settle(corpus: EncodedCorpus, members: torch.Tensor, repeated: torch.Tensor, with_labels: bool) -> None:
    """Mark exactly which ``members`` (the items of groups with a hash collision, each group
    in item order) repeat an earlier item. Collisions are rare: one Python step per member."""
    seen = set()
    for i in members.tolist():
        tokens = corpus.item_tokens(i)
        key = tuple(tokens if with_labels else tokens[1:])
        repeated[i] = key in seen
        seen.add(key)


class KnownItems:
    """The items of a training file, for ``new_only`` and the new/known marks of sampled items.

    ``item in known`` and ``known.contains(items)`` (many at once) answer exactly, without a
    Python string per training item: the items' hashes are sorted once, a query's hash is
    looked up with ``torch.searchsorted``, and a hit is compared token by token with the
    training items of that hash. Labels are ignored (an item is known whatever its label).

    Args:
        corpus: the training file's items.
        vocab: the vocabulary ``corpus`` is encoded with.
    """

    def __init__(self, corpus: EncodedCorpus, vocab: Vocab):
        self.corpus = EncodedCorpus(corpus.tokens, corpus.starts, corpus.lengths)
        self.vocab = vocab
        self._chars = set(vocab.chars)
        self.hashes, self.order = torch.sort(item_hashes(self.corpus))

    def __len__(self) -> int:
        return len(self.corpus)

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and bool(self.contains([item])[0])

    def contains(self, items: list[str]) -> torch.Tensor:
        """(len(items),) bool: whether each item is one of the training items."""
        out = torch.zeros(len(items), dtype=torch.bool)
        readable = [i for i, item in enumerate(items) if set(item) <= self._chars]  # others cannot be known
        if not readable or not len(self):
            return out
        query = EncodedCorpus.from_words([items[i] for i in readable], self.vocab)
        hashes = item_hashes(query)
        lo = torch.searchsorted(self.hashes, hashes)
        hi = torch.searchsorted(self.hashes, hashes, right=True)
        hit = (hi > lo).nonzero().squeeze(1)
        found = torch.zeros(hashes.numel(), dtype=torch.bool)
        found[hit] = equal_items(query, hit, self.corpus, self.order[lo[hit]])
        # a hit that differs from the first training item of its hash: compare with the others (repeats, collisions)
        rest = hit[~found[hit] & (hi[hit] - lo[hit] > 1)]
        if rest.numel():
            count = hi[rest] - lo[rest] - 1
            q = torch.repeat_interleave(rest, count)
            at = torch.repeat_interleave(lo[rest] + 1 - (torch.cumsum(count, 0) - count), count) + torch.arange(
                q.numel()
            )
            same = equal_items(query, q, self.corpus, self.order[at])
            found[q[same]] = True
        out[torch.tensor(readable)] = found
        return out
