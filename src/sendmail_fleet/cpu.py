"""How busy the machine's cores were: CPU seconds from /proc/stat, for the benchmarks and the lab tests' summary."""

from __future__ import annotations

import itertools
import os
from pathlib import Path


def machine_cpu(stat: Path = Path("/proc/stat")) -> tuple[float, float]:
    """(busy, total) CPU seconds of every core together since boot. Busy is user, nice, system, irq, softirq and
    steal; idle and iowait are not. Take two readings: their difference is what the cores did meanwhile."""
    fields = [float(x) for x in stat.read_text().split("\n", 1)[0].split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - fields[3] - fields[4]) / tick, sum(fields) / tick


def busy_share(before: tuple[float, float], after: tuple[float, float]) -> float:
    """The share of the cores' time between two readings of machine_cpu that was busy (0 to 1)."""
    return (after[0] - before[0]) / max(after[1] - before[1], 1e-9)


def busy_between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """Busy CPU seconds from `start` to `end`, from samples (time, busy CPU seconds so far) in time order: the
    cumulative count read at both ends by straight lines between the samples around them (held flat outside)."""
    def at(t: float) -> float:
        if t <= samples[0][0]:
            return samples[0][1]
        for (t0, b0), (t1, b1) in itertools.pairwise(samples):
            if t <= t1:
                return b0 + (b1 - b0) * (t - t0) / (t1 - t0) if t1 > t0 else b1
        return samples[-1][1]
    return max(0.0, at(end) - at(start))
