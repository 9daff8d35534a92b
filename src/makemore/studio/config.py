"""``makemore studio``'s options, declared once (torch-free, as ``makemore.config``: ``--help`` reads them)."""

from __future__ import annotations

from dataclasses import dataclass

from makemore import options
from makemore.options import CLI, option

DEFAULT_WORKSPACE = "./makemore-studio"
# torch threads of the studio's server: one, the training child another (docs/studio.md measures the split)
STUDIO_THREADS = 1


@dataclass
class StudioConfig:
    """Where the studio keeps its lists and runs, and where it listens (command line only)."""

    workspace: str = option(DEFAULT_WORKSPACE, "folder of the studio's lists, runs and favourites (created on first "
                            f"use; default {DEFAULT_WORKSPACE})", metavar="DIR", surfaces=(CLI,))  # fmt: skip
    host: str = option("127.0.0.1", "address to listen on (default 127.0.0.1: this machine only; any other requires "
                       "the token printed in the URL)", surfaces=(CLI,))  # fmt: skip
    port: int = option(8000, "port to listen on (default 8000; 0 = a free one)", least=0, most=65535,
                       surfaces=(CLI,))  # fmt: skip
    quiet: bool = option(False, "no line per request on stderr", short="-q", surfaces=(CLI,))

    def __post_init__(self) -> None:
        options.check(self)
