"""Write a deterministic synthetic words file of any size, for benchmarks and scale tests.

Two kinds of list:

* ``names`` (default): items sampled from a count n-gram model (Kneser-Ney, order 4 by
  default) fitted on a words file (default: the built-in names corpus), so lengths and letters
  are realistic; many items repeat training names, as they would in a real big list.
* ``packages``: package-style names, 1 to 6 lowercase words of a words file joined by ``-``
  (the number of words falls off geometrically: half the items are one word), giving the
  long tail of lengths of a registry's package names (most under 15 characters, a few over 50).

The same arguments write the same file (seeded; no dependence on the machine).

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
from makemore.files import atomic_write_text

CHUNK = 100_000  # items sampled per call


def sampled_names(n: int, words: str, order: int, seed: int) -> list[str]:
    """``n`` items sampled from an order-``order`` Kneser-Ney model of ``words``."""
    config = api.RunConfig(
        model="ngram",
        model_config=api.make_config("ngram", {"order": order, "smoothing": "kneser-ney"}),
        data=api.DataConfig(input=words),
    )
    with tempfile.TemporaryDirectory() as tmp:
        api.train(config, tmp + "/run", progress=False)
        run = api.load_run(tmp + "/run")
    out: list[str] = []
    for i in range(0, n, CHUNK):
        sample = api.SampleConfig(num=min(CHUNK, n - i), seed=seed + i // CHUNK, min_len=1, max_tries=0, time_limit=0)
        out.extend(api.sample(run, sample))
    return out


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
        items = sampled_names(args.num, args.words, args.order, args.seed)
    else:
        items = package_names(args.num, args.words, args.seed)
    atomic_write_text(args.output, "".join(item + "\n" for item in items))
    lengths = torch.tensor([len(x) for x in items], dtype=torch.float64)
    print(
        f"{args.output}: {len(items):,} items, mean length {lengths.mean():.1f}, "
        f"median {lengths.median():.0f}, longest {lengths.max():.0f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
