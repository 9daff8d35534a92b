"""Write a deterministic synthetic words file of any size, for benchmarks and scale tests.

Two kinds of list:

* ``names`` (default): items sampled from a count n-gram model (Kneser-Ney, order 4 by
  default) fitted on a words file (default: the built-in names corpus), so lengths and letters
  are realistic; many items repeat training names, as they would in a real big list.
* ``packages``: package-style names, 1 to 6 lowercase words of a words file joined by ``-``
  (the number of words falls off geometrically: half the items are one word), giving the
  long tail of lengths of a registry's package names (most under 15 characters, a few over 50).

The same arguments write the same file (seeded; no dependence on the machine). Names are
sampled a million at a time with tensor ops (10,000,000 in about a minute on 2 cores).

Usage:
    python scripts/make_synthetic_corpus.py -n 1000000 -o big.txt
    python scripts/make_synthetic_corpus.py -n 10000000 -o big10m.txt
    python scripts/make_synthetic_corpus.py --kind packages --words /usr/share/dict/words -n 100000 -o pkgs.txt
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import torch

from makemore import api
from makemore.data.wordsfile import parse_lines
from makemore.files import atomic_write_bytes

CHUNK = 1_000_000  # items sampled together


def _fit(words: str, order: int):
    """An order-``order`` Kneser-Ney model of ``words`` (default: the built-in corpus) and its vocabulary."""
    config = api.RunConfig(
        model="ngram",
        model_config=api.make_config("ngram", {"order": order, "smoothing": "kneser-ney"}),
        data=api.DataConfig(input=words),
    )
    with tempfile.TemporaryDirectory() as tmp:
        api.train(config, tmp + "/run", progress=False)
        run = api.load_run(tmp + "/run")
    return run.model, run.vocab, run.meta["data"]["longest_item"]


@torch.no_grad()
def _sample_rows(model, rows: int, max_len: int, g: torch.Generator) -> torch.Tensor:
    """(rows, max_len) tokens of items of 1 to ``max_len`` characters (0 after an item's end),
    all rows drawn together, one position at a time, by inverse CDF from ``g``."""
    out = torch.zeros(rows, max_len, dtype=torch.int64)
    context = torch.zeros(rows, model.block_size, dtype=torch.int64)
    live = torch.arange(rows)  # rows still growing (an item ends at max_len characters)
    for t in range(max_len):
        logprobs, _ = model(context)  # (R, V)
        probs = logprobs.double().exp()
        if t == 0:
            probs[:, 0] = 0.0  # at least one character
        cdf = probs.cumsum(1)
        u = torch.rand(live.numel(), generator=g, dtype=torch.float64) * cdf[:, -1]
        token = (cdf < u[:, None]).sum(1).clamp_(max=probs.size(1) - 1)  # (R,)
        out[live, t] = token
        going = token != 0
        live, context = live[going], torch.cat([context[:, 1:], token[:, None]], 1)[going]
        if not live.numel():
            break
    return out


def sampled_names(n: int, words: str, order: int, seed: int) -> bytes:
    """The UTF-8 lines of ``n`` items sampled from an order-``order`` Kneser-Ney model of
    ``words``: ``CHUNK`` items at a time, from one seeded generator, with tensor ops."""
    model, vocab, longest = _fit(words, order)
    table = torch.tensor([0, *map(ord, vocab.chars)], dtype=torch.int32)
    newline = torch.full((1,), ord("\n"), dtype=torch.int32)
    g = torch.Generator().manual_seed(seed)
    parts = []
    for i in range(0, n, CHUNK):
        rows = _sample_rows(model, min(CHUNK, n - i), max(16, 2 * longest), g)
        codepoints = torch.cat([table[rows], newline.expand(rows.size(0), 1)], 1).flatten()
        parts.append(codepoints[codepoints != 0].numpy().tobytes().decode("utf-32-le").encode("utf-8"))
    return b"".join(parts)


def package_names(n: int, words: str, seed: int) -> list[str]:
    """``n`` package-style names: 1-6 lowercase words of ``words`` joined by hyphens."""
    vocab = sorted(
        {w.lower() for w in Path(words).read_text(encoding="utf-8").split() if re.fullmatch(r"[A-Za-z]+", w)}
    )
    if not vocab:
        raise SystemExit(f"{words}: no words of letters a-z")
    g = torch.Generator().manual_seed(seed)
    # the number of parts, geometric from the seeded generator: P(k) = 2^-k, at most 6
    u = torch.rand(n, generator=g, dtype=torch.float64)
    parts = (1 + torch.floor(torch.log2(1 / (1 - u)))).clamp(max=6).long()
    picks = torch.randint(0, len(vocab), (int(parts.sum()),), generator=g).tolist()
    out, at = [], 0
    for k in parts.tolist():
        out.append("-".join(vocab[j] for j in picks[at : at + k]))
        at += k
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--num", type=int, required=True, help="items to write")
    parser.add_argument("-o", "--output", required=True, help="the words file to write")
    parser.add_argument("--kind", choices=("names", "packages"), default="names")
    parser.add_argument("--words", default="", help="source words file (names: default the built-in corpus)")
    parser.add_argument("--order", type=int, default=4, help="names: the n-gram order")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error(f"--num must be at least 1, got {args.num}")
    if args.kind == "packages" and not args.words:
        parser.error("--kind packages needs --words (for example /usr/share/dict/words)")
    if args.kind == "names":
        data = sampled_names(args.num, args.words, args.order, args.seed)
    else:
        data = "".join(item + "\n" for item in package_names(args.num, args.words, args.seed)).encode("utf-8")
    atomic_write_bytes(args.output, data)
    lengths = parse_lines(data, max_len=len(data)).lengths.double()
    print(
        f"{args.output}: {lengths.numel():,} items, mean length {lengths.mean():.1f}, "
        f"median {lengths.median():.0f}, longest {lengths.max():.0f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
