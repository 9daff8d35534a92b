"""Messages of a command run by several processes (``torchrun ... -m makemore``): one, not one each.

Every process torchrun starts parses the same arguments and checks the same settings, so a
usage or config error happens in all of them at once. Rank 0 prints it and exits; the other
ranks wait ``GRACE_S`` first, and torchrun, seeing rank 0 fail, stops them before they print.
A rank that fails alone (nothing stops it) still prints its own error after the wait, so no
error is ever lost. The rank comes from torchrun's environment (``RANK``, ``WORLD_SIZE``),
read without importing torch.
"""

from __future__ import annotations

import os
import sys
import time

GRACE_S = 5.0  # torchrun checks its workers every 0.1 s (--monitor-interval)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


def launched() -> bool:
    """Whether a launcher (torchrun) started this process as one of several."""
    return _env_int("WORLD_SIZE", 1) > 1


def rank() -> int:
    """This process's rank (0 when it runs alone)."""
    return _env_int("RANK", 0) if launched() else 0


def is_main() -> bool:
    """Rank 0, or a process on its own: the one that prints."""
    return rank() == 0


def _wait(seconds: float) -> None:
    time.sleep(seconds)


def report(message: str) -> None:
    """Print one line on stderr once for all processes (see the module docstring)."""
    if not is_main():
        sys.stderr.flush()
        _wait(GRACE_S)  # torchrun stops this process here when rank 0 failed too
    print(message, file=sys.stderr, flush=True)


def note(message: str) -> None:
    """A warning or notice on stderr: rank 0 only (the other ranks would repeat it)."""
    if is_main():
        print(message, file=sys.stderr)
