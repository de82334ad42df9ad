"""Shared bits of the benchmark scripts: timing, percentiles, writing a results file a person reads."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def summary(values: list[float]) -> str:
    return (f"n={len(values)} p50={percentile(values, 50) * 1000:.0f} ms p99={percentile(values, 99) * 1000:.0f} ms "
            f"mean={statistics.mean(values) * 1000:.0f} ms max={max(values) * 1000:.0f} ms")


@contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    t0 = time.monotonic()
    yield box
    box.append(time.monotonic() - t0)


def write(name: str, title: str, lines: list[str]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    head = [f"# {title}", "",
            f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node() or 'host'}: "
            f"{os.cpu_count()} cores, Python {platform.python_version()}.", ""]
    path.write_text("\n".join(head + lines) + "\n")
    print("\n".join(head + lines))
    return path
