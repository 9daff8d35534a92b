"""ARPA export of count n-gram models: the back-off format that KenLM, SRILM and other toolkits read.

Words. Each character is a word and an item is a sentence: "emma" is ``<s> e m m a </s>``.
A character an ARPA word cannot hold (whitespace, control and other non-printable characters)
is written ``<U+XXXX>``, its code point in at least four hex digits (a space is ``<U+0020>``);
the file's ``#`` header lines (before ``\\data\\``, where KenLM and SRILM allow comments) list
the escapes used. A single character can never be mistaken for an escape, ``<s>``, ``</s>`` or
``<unk>``. ``<unk>`` is written with log10 probability -99 (makemore refuses unknown
characters, so it never predicts one), and so is every probability 0 (``k = 0`` or
``discount = 0``): -99 is the ARPA convention for log10(0), as KenLM refuses infinite weights.

Labels. A labelled model reads an item of label L after its start token ``<L>``: in the file
that token is the word ``<s:L>``, which plays the part of ``<s>``. Score an item of label L as
``<s:L> e m m a </s>`` from an empty history and leave out the score of ``<s:L>`` itself
(KenLM: ``bos=False``). ``<s>`` is there (-99; KenLM needs it) but starts nothing. A label name
with whitespace or a non-printable character is refused.

Padding. Our models read an item's first character after ``order - 1`` boundary tokens
(``0 0 0 e`` at order 4), a back-off reader after one ``<s>``. A context ``0 .. 0 s c1 .. cj``
(padding, the start token s, characters) is the ARPA history ``s c1 .. cj``: a reader conditions
on it only at an item's start, so the n-grams ``s c1 .. cj w`` hold our order-n probabilities
P(w | 0 .. 0 s c1 .. cj), and the history backs off to ``c1 .. cj``.

Exactness. A back-off reader computes P(w | h) = p(h w) when the n-gram ``h w`` is stored, else
bow(h) P(w | h'), h' dropping the oldest word. Both smoothings are of that form, exactly:

* Kneser-Ney: P_m(w | h) = max(a(h, w) - D, 0) / a(h) + g(h) P_{m-1}(w | h'), g(h) = D N1+(h .)
  / a(h). For every w that h never saw the first term is 0, so the seen (h, w) with their
  interpolated probabilities and bow(h) = g(h) are exact. A start history interpolates through
  the padded contexts ``0 0 s c``, ``0 s c``, ``s c`` before ``c``: its bow is the product of
  their g, its stored words those any of them saw.
* add-k: P(w | h) = (c(h, w) + k) / (c(h) + kV), which for a w that h never saw is
  kV / (c(h) + kV) times 1/V. So the seen n-grams, bow(h) = kV / (c(h) + kV) and uniform lower
  orders (1/V, back-off weight 1) are exact, unseen contexts (uniform in our model) included:
  an add-k file holds the seen n-grams, not the full table of every context and character.

Every prefix and suffix of a stored n-gram is stored too (readers such as KenLM need them) with
the probability back-off already gives it, so adding them changes nothing a reader computes.
Values are written with 6 decimals (each off by at most 5e-7 in log10).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import torch

from makemore.data.corpus import Vocab
from makemore.errors import MakemoreError
from makemore.models.ngram import NGramModel
from makemore.store.runs import Run

LOG10_ZERO = -99.0  # log10(0) as ARPA files write it
_DIGITS = 6  # decimals written


@dataclass
class Level:
    """One order m of a count model: its stored contexts and their next-token distributions."""

    contexts: torch.Tensor  # (C, m - 1) int64 tokens, oldest first
    probs: torch.Tensor  # (C, V) float64 P_m(w | h)
    seen: torch.Tensor  # (C, V) bool: the w stored under h (the others back off)
    gamma: torch.Tensor  # (C,) float64 weight of the order below (add-k: of the uniform 1/V)


def _context_tokens(ids: torch.Tensor, length: int, V: int) -> torch.Tensor:
    """(C,) context ids in base V (newest token least significant) -> (C, length) tokens, oldest first."""
    powers = torch.tensor([V ** (length - 1 - j) for j in range(length)], dtype=torch.int64)
    return (ids[:, None] // powers) % V


def ngram_levels(model: NGramModel) -> tuple[dict[int, Level], str]:
    """The stored orders of an n-gram model, in float64 from its count tables.

    Returns:
        ``(levels, description)``: order -> Level (add-k stores only its order; Kneser-Ney
        every order), and a line describing the model for the file's header.
    """
    V, config = model.vocab_size, model.config
    state = model.state_dict()
    levels: dict[int, Level] = {}
    for m in range(1, model.order + 1):
        if f"order{m}_counts" not in state:
            continue
        ids = state[f"order{m}_context_ids"].cpu()
        counts = state[f"order{m}_counts"].cpu().double()  # (C, V)
        totals = counts.sum(1, keepdim=True)  # (C, 1), >= 1 for a stored context
        seen = counts > 0
        if config.smoothing == "add-k":
            k = float(config.k)
            probs = (counts + k) / (totals + k * V)
            gamma = k * V / (totals + k * V)
        else:
            D = float(config.discount)
            gamma = D * seen.sum(1, keepdim=True).double() / totals
            if m == 1:
                lower = torch.full((1, V), 1.0 / V, dtype=torch.float64)
            else:  # every stored context's suffix is stored one order below
                below = state[f"order{m - 1}_context_ids"].cpu()
                lower = levels[m - 1].probs[torch.searchsorted(below, ids % V ** (m - 2))]
            probs = (counts - D).clamp(min=0) / totals + gamma * lower
        levels[m] = Level(_context_tokens(ids, m - 1, V), probs, seen, gamma.squeeze(1))
    kn = config.smoothing == "kneser-ney"
    smoothing = f"kneser-ney, discount={config.discount}" if kn else f"add-k, k={config.k}"
    return levels, f"character n-gram model of order {model.order} ({smoothing}), {V} tokens"


# How each count family's distributions are read (ARPA export is per family).
_LEVELS = {NGramModel: ngram_levels}


class BackoffTables:
    """An ARPA model being built: n-grams (tuples of word ids) -> log10 probability, histories -> log10
    back-off weight."""

    def __init__(self, order: int):
        self.order = order
        self.logp: dict[tuple[int, ...], float] = {}
        self.bow: dict[tuple[int, ...], float] = {}

    def query(self, history: tuple[int, ...], word: int) -> float:
        """log10 P(word | history) by back-off (every word must have a unigram)."""
        total = 0.0
        while (history + (word,)) not in self.logp:
            total += self.bow.get(history, 0.0)
            history = history[1:]
        return total + self.logp[history + (word,)]

    def add(self, history: tuple[int, ...], probs: torch.Tensor, seen: torch.Tensor, gamma: float | None):
        """Store ``history w`` for each seen w (``probs``: (V,) P(w | history)) and the history's bow."""
        words = seen.nonzero().squeeze(1)
        for w, value in zip(words.tolist(), _log10(probs[words]).tolist()):
            self.logp[history + (w,)] = value
        if gamma is not None:
            self.bow[history] = max(math.log10(gamma), LOG10_ZERO) if gamma > 0 else LOG10_ZERO

    def close(self) -> None:
        """Add every missing prefix and suffix of a stored n-gram (and every history's own
        n-gram) with the probability back-off gives it, so readers that need them find them."""
        for history in self.bow:
            if history not in self.logp:
                self.logp[history] = self.query(history[:-1], history[-1])
        by_length: dict[int, list[tuple[int, ...]]] = {m: [] for m in range(1, self.order + 1)}
        for gram in self.logp:
            by_length[len(gram)].append(gram)
        for m in range(self.order, 1, -1):
            for gram in by_length[m]:
                for sub in (gram[:-1], gram[1:]):
                    if sub not in self.logp:
                        self.logp[sub] = self.query(sub[:-1], sub[-1])
                        by_length[m - 1].append(sub)


def _log10(p: torch.Tensor) -> torch.Tensor:
    return torch.log10(p).clamp(min=LOG10_ZERO)


def _histories(contexts: torch.Tensor, V: int, num_chars: int) -> list[tuple[tuple[int, ...], bool]]:
    """The ARPA history of each context and whether it starts with a start word.

    A context ``0 .. 0 s c1 .. cj`` (s the boundary or a label token) is ``(start(s), c1, .., cj)``,
    start(0) being ``<s>`` (word id V) and a label token its own word; a context of characters
    only is itself.
    """
    out = []
    for row in contexts.tolist():
        starts = [i for i, t in enumerate(row) if t == 0 or t >= num_chars]
        if not starts:
            out.append((tuple(row), False))
            continue
        p = starts[-1]
        out.append(((V if row[p] == 0 else row[p], *row[p + 1 :]), True))
    return out


def build_tables(levels: dict[int, Level], order: int, vocab: Vocab) -> BackoffTables:
    """The back-off tables equal to a count model's ``levels`` (see the module docstring).

    Word ids: token t is word t as a target (0: ``</s>``), V is ``<s>``, V + 1 ``<unk>``. An order-1
    model is written as order 2, its bigrams ``<s> w`` repeating the unigrams (KenLM reads order 2 up).

    Args:
        levels: the model's stored orders (``ngram_levels``).
        order: the model's order.
        vocab: its vocabulary (V = ``vocab.size`` tokens).
    Returns:
        the tables, every prefix and suffix of a stored n-gram stored.
    """
    V, num_chars = vocab.size, vocab.num_chars
    tables = BackoffTables(max(order, 2))
    fitted = 1 in levels and len(levels[1].probs) > 0
    unigram = levels[1].probs[0] if fitted else torch.full((V,), 1.0 / V, dtype=torch.float64)
    everything = torch.ones(V, dtype=torch.bool)
    tables.add((), unigram, everything, None)  # nothing below the unigrams
    tables.logp[(V,)] = tables.logp[(V + 1,)] = LOG10_ZERO  # <s> and <unk> are never predicted
    if order == 1:  # KenLM reads order 2 and up: the bigrams <s> w repeat the unigrams
        tables.add((V,), unigram, everything, 1.0)
    starts: dict[tuple[int, ...], list[tuple[int, int]]] = {}  # start history -> (order, row) of its contexts
    for m, level in sorted(levels.items()):
        if m == 1:
            continue
        for row, (history, start) in enumerate(_histories(level.contexts, V, num_chars)):
            if start:
                starts.setdefault(history, []).append((m, row))
            else:
                tables.add(history, level.probs[row], level.seen[row], float(level.gamma[row]))
    for history, members in starts.items():
        # the padded contexts of one start history, interpolated from the longest one down
        top, top_row = max(members)
        seen = torch.stack([levels[m].seen[row] for m, row in members]).any(0)
        gamma = math.prod(float(levels[m].gamma[row]) for m, row in members)
        tables.add(history, levels[top].probs[top_row], seen, gamma)
    tables.close()
    return tables


def escape(char: str) -> str:
    """A character as an ARPA word: itself, or ``<U+XXXX>`` when it is whitespace or not printable."""
    return f"<U+{ord(char):04X}>" if char.isspace() or not char.isprintable() else char


def arpa_words(vocab: Vocab) -> list[str]:
    """The word of each word id (see ``build_tables``).

    Raises:
        MakemoreError: a label name an ARPA word cannot hold.
    """
    for name in vocab.label_names:
        bad = next((c for c in name if c.isspace() or not c.isprintable()), None)
        if bad is not None:
            raise MakemoreError(
                f"arpa: label {name!r} holds {escape(bad)} ({unicodedata.name(bad, 'a control character')}), "
                "which an ARPA word cannot hold"
            )
    return ["</s>", *map(escape, vocab.chars), *(f"<s:{name}>" for name in vocab.label_names), "<s>", "<unk>"]


def _header(description: str, vocab: Vocab) -> list[str]:
    lines = [
        f"# makemore ARPA export: {description}",
        '# characters are words: the item "emma" is the sentence "<s> e m m a </s>"',
        "# log10(0) is written -99; <unk> is never predicted",
    ]
    for char in vocab.chars:
        if escape(char) != char:
            name = unicodedata.name(char, "(control)")
            lines.append(f"# {escape(char)} is the character U+{ord(char):04X} {name}")
    if vocab.label_names:
        lines.append("# an item of label L is the sentence <s:L> c1 .. cn </s>, scored from an empty history")
    return lines


def _format(value: float) -> str:
    return f"{value:.{_DIGITS}f}"


def arpa_text(tables: BackoffTables, words: list[str], header: list[str]) -> str:
    """The ARPA file of ``tables``: header comments, counts, one section per order, sorted n-grams.

    Args:
        tables: the n-grams and back-off weights.
        words: the word of each word id (``arpa_words``).
        header: comment lines, each starting with ``#``.
    """
    grams: dict[int, list[tuple[int, ...]]] = {m: [] for m in range(1, tables.order + 1)}
    for gram in tables.logp:
        grams[len(gram)].append(gram)
    lines = [*header, "", "\\data\\", *(f"ngram {m}={len(g)}" for m, g in grams.items())]
    for m, section in grams.items():
        lines += ["", f"\\{m}-grams:"]
        for gram in sorted(section):
            text = f"{_format(tables.logp[gram])}\t{' '.join(words[w] for w in gram)}"
            if gram in tables.bow:  # only histories (shorter than the order) have one
                text += f"\t{_format(tables.bow[gram])}"
            lines.append(text)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def arpa_bytes(run: Run) -> bytes:
    """A count model as an ARPA back-off n-gram file (UTF-8), exact (see the module docstring).

    Args:
        run: a loaded run of a count model (labelled or not).
    Returns:
        the file's bytes.
    Raises:
        MakemoreError: the model is not a count model, or a label cannot be an ARPA word.
    """
    model = run.model
    if model.trains_by_gradient:
        raise MakemoreError(
            f"arpa: a {run.config.model} model is not a count n-gram model, which is all an ARPA file "
            "holds; export it with --format onnx or --format html"
        )
    read = _LEVELS.get(type(model))
    if read is None:
        raise MakemoreError(f"arpa: no ARPA export for {run.config.model} models")
    words = arpa_words(run.vocab)
    levels, description = read(model)
    tables = build_tables(levels, model.block_size + 1, run.vocab)
    return arpa_text(tables, words, _header(description, run.vocab)).encode("utf-8")
