"""Shared bits of the benchmark scripts: timing, percentiles, writing a results file a person reads."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sendmail_fleet import playbook as ansible_playbook

RESULTS = Path(__file__).resolve().parent / "results"


def arguments(doc: str | None, add: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The script's command line, read before it touches anything: --help prints its docstring (what it measures,
    what it removes or rebuilds) and an unknown option or a missing argument ends it with usage. Most benchmarks
    take the lab down first, so a mistyped option must not start one."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if add:
        add(parser)
    return parser.parse_args()


def playbook(inventory: Path, name: str, *args: str, env: dict[str, str] | None = None,
             accelerated: bool = True) -> None:
    """ansible-playbook on the lab; a failed run ends the benchmark with the end of its output."""
    run = ansible_playbook.run(inventory, name, *args, capture=True, env=env, accelerated=accelerated)
    if run.returncode != 0:
        raise SystemExit(f"{name} failed:\n{run.stdout[-3000:]}")


def _cpu_times() -> tuple[float, float]:
    """(idle, total) jiffies of all cores since boot, from /proc/stat's first line."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user .. steal


def settle(idle: float = 0.85, window: float = 2.0, deadline: float = 180.0) -> float:
    """Wait until the machine is quiet: at least `idle` of its CPU time idle over `window` seconds, twice in a row;
    at most `deadline` seconds. Returns the seconds waited. A lab just provisioned keeps the cores busy for a while
    (services and timers of the new packages starting), which a timed run right after it would pay for."""
    t0, quiet = time.monotonic(), 0
    while quiet < 2 and time.monotonic() - t0 < deadline:
        i0, a0 = _cpu_times()
        time.sleep(window)  # the measuring interval itself
        i1, a1 = _cpu_times()
        quiet = quiet + 1 if (i1 - i0) / max(a1 - a0, 1.0) >= idle else 0
    return time.monotonic() - t0


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
