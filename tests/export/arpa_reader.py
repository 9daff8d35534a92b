"""A small ARPA reader for the tests, written from the format's definition (not from makemore's writer).

It parses the header counts and the n-gram sections strictly (each count must match its section,
the highest order has no back-off weights, ``\\end\\`` closes the file) and answers queries with
the standard back-off rule: P(w | h) = p(h w) when ``h w`` is stored, else bow(h) P(w | h'),
where h' drops the oldest word and a missing bow is 0 (log10 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

LN10 = math.log(10)


@dataclass
class ArpaModel:
    order: int
    counts: dict[int, int]  # from the \data\ header
    comments: list[str]  # the '#' lines before \data\
    logp: dict[tuple[str, ...], float] = field(default_factory=dict)
    bow: dict[tuple[str, ...], float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> ArpaModel:
        """Parse an ARPA file; AssertionError on anything malformed."""
        lines = iter(text.split("\n"))
        comments = []
        line = next(lines)
        while line != "\\data\\":
            assert line.startswith("#") or not line.strip(), f"text before \\data\\: {line!r}"
            if line.strip():
                comments.append(line)
            line = next(lines)
        counts = {}
        for line in lines:
            if not line.strip():
                break
            name, _, value = line.partition("=")
            assert name == f"ngram {len(counts) + 1}", line
            counts[len(counts) + 1] = int(value)
        model = cls(max(counts), counts, comments)
        for m in range(1, model.order + 1):
            line = next(lines)
            while not line.strip():
                line = next(lines)
            assert line == f"\\{m}-grams:", line
            for _ in range(counts[m]):
                model._read_ngram(next(lines), m)
            assert not next(lines).strip(), f"more {m}-grams than the header says"
        rest = [line for line in lines if line.strip()]
        assert rest == ["\\end\\"], rest[:3]
        return model

    def _read_ngram(self, line: str, m: int) -> None:
        fields = line.split("\t")
        assert len(fields) in (2, 3), line
        words = tuple(fields[1].split(" "))
        assert len(words) == m and all(words), line
        assert words not in self.logp, f"duplicate n-gram {line!r}"
        self.logp[words] = float(fields[0])
        assert self.logp[words] <= 0, line
        if len(fields) == 3:
            assert m < self.order, f"a back-off weight on a highest-order n-gram: {line!r}"
            self.bow[words] = float(fields[2])

    def missing_contexts(self) -> list[tuple[str, ...]]:
        """Prefixes and suffixes of stored n-grams that are not stored (readers such as KenLM need them)."""
        subs = [sub for gram in self.logp if len(gram) > 1 for sub in (gram[:-1], gram[1:])]
        return [sub for sub in subs if sub not in self.logp]

    def log10_prob(self, history: tuple[str, ...], word: str) -> float:
        """log10 P(word | history) by back-off; the history is cut to its last order - 1 words."""
        history = history[max(len(history) - (self.order - 1), 0) :] if self.order > 1 else ()
        total = 0.0
        while history + (word,) not in self.logp:
            assert history, f"unknown word {word!r}"
            total += self.bow.get(history, 0.0)
            history = history[1:]
        return total + self.logp[history + (word,)]

    def sentence_log10(self, words: list[str], start: str = "<s>") -> float:
        """log10 P of ``words`` and ``</s>`` after the history ``start`` (the start itself not scored)."""
        history: tuple[str, ...] = (start,)
        total = 0.0
        for word in [*words, "</s>"]:
            total += self.log10_prob(history, word)
            history = history + (word,)
        return total
