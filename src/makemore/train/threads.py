"""How many intra-op threads PyTorch uses on CPU (``--threads``; 0 = auto).

Two threads train makemore's models 1.3-1.6x faster than one on a free 2-core machine, but
2.5-3x slower than one when another process holds a core: at every parallel operation one
thread waits for the other, which is not getting its core (``benchmarks/bench_threads.py``).
So auto counts the cores that are free when a command starts: the usable cores less the CPU
time other processes took on them over a short look at ``/proc/stat`` (``os.getloadavg``
where there is none), each process of a distributed job taking its share. An
``OMP_NUM_THREADS`` set in the environment is a choice already made (torchrun sets it to 1 for
several processes per node): auto takes it as it is.

The count is chosen once per run and recorded with it: PyTorch's kernels give slightly
different bits with different thread counts (LayerNorm's and oneDNN's LSTM backward split
their sums by thread), so a run keeps one count from start to end, a resumed run takes the
recorded one, and ``--threads N`` (or ``OMP_NUM_THREADS``) repeats a run bit for bit on
another machine state; two fresh auto runs of one seed agree when the machine is as busy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

import torch

AUTO = 0
LOOK_SECONDS = 0.1  # how long auto watches the CPUs at least (/proc/stat counts in 10 ms ticks)
SLACK = 0.3  # a core counts as free while other processes use less than 0.3 of it


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_ticks(cpus: set[int] | None) -> tuple[float, float] | None:
    """(busy, total) clock ticks of ``cpus`` (None: all) since boot, from ``/proc/stat``."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            lines = [line.split() for line in fh if line.startswith("cpu") and line[3:4].isdigit()]
    except OSError:
        return None
    busy = total = 0.0
    for fields in lines:
        if cpus is not None and int(fields[0][3:]) not in cpus:
            continue
        ticks = [float(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - ticks[4]
    return (busy, total) if total else None


class CpuLook:
    """Watches the CPU time other processes take on this process's CPUs, from now on.

    Start one before other work (loading data) and ask ``busy_elsewhere`` after it: the look
    then costs nothing, as this process's own CPU time is taken out.
    """

    def __init__(self) -> None:
        try:
            self.cpus: set[int] | None = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self.cpus = None
        self.started, self.ticks, self.mine = time.perf_counter(), _cpu_ticks(self.cpus), _own_seconds()

    def busy_elsewhere(self, least: float = LOOK_SECONDS, sleep: Callable[[float], None] = time.sleep) -> float:
        """Cores' worth of CPU others used since the look started (waiting until ``least``
        seconds have passed)."""
        if self.ticks is None:  # no /proc/stat: the 1-minute load average, less this process
            try:
                return max(0.0, os.getloadavg()[0] - 1.0)
            except (AttributeError, OSError):
                return 0.0
        remaining = least - (time.perf_counter() - self.started)
        if remaining > 0:
            sleep(remaining)
        after, mine = _cpu_ticks(self.cpus), _own_seconds()
        if after is None or after[1] <= self.ticks[1]:
            return 0.0
        n = len(self.cpus) if self.cpus else (os.cpu_count() or 1)
        seconds = time.perf_counter() - self.started
        busy_cores = n * (after[0] - self.ticks[0]) / (after[1] - self.ticks[1])
        return max(0.0, busy_cores - (mine - self.mine) / seconds)


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def busy_elsewhere(seconds: float = LOOK_SECONDS, sleep: Callable[[float], None] = time.sleep) -> float:
    """Cores' worth of CPU time that other processes use on our CPUs, over ``seconds`` from now."""
    return CpuLook().busy_elsewhere(seconds, sleep)


def from_environment(environ: Mapping[str, str] | None = None) -> int:
    """The thread count ``OMP_NUM_THREADS`` asks for, 0 when unset or not a positive integer."""
    value = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 0


def choose(
    threads: int,
    *,
    share: int = 1,
    busy: Callable[[], float] | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """The intra-op thread count for ``threads`` (0: auto, from the cores free now).

    Args:
        threads: a count, or 0 (auto).
        share: processes of one job on these cores (each gets its part).
        busy: cores' worth of CPU other processes use (default: ``busy_elsewhere``).
        environ: where auto looks for ``OMP_NUM_THREADS`` (default: ``os.environ``).
    Returns:
        the count: ``threads`` if given, else ``OMP_NUM_THREADS`` if set, else the free cores' share.
    """
    if threads > 0:
        return threads
    if from_environment(environ):
        return from_environment(environ)
    cores = usable_cores()
    free = cores - (busy or busy_elsewhere)()
    return max(1, min(cores, int(free + SLACK)) // max(1, share))


def apply(count: int) -> int:
    """Set PyTorch's intra-op threads to ``count``; returns the count it had."""
    before = torch.get_num_threads()
    if before != count:
        torch.set_num_threads(count)
    return before
