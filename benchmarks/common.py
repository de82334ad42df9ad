"""Shared bits of the benchmark scripts: timing, percentiles, writing a results file a person reads."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sendmail_fleet import playbook as ansible_playbook
from sendmail_fleet.cpu import busy_share, machine_cpu

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


@dataclass
class CpuUse:
    """CPU seconds a timed piece of work used."""
    machine: float  # every core's busy time (user .. steal): the controller and the lab's containers together
    controller: float  # user + system of the processes this one waited for: ansible-playbook and its workers


@contextmanager
def cpu_used() -> Iterator[list[CpuUse]]:
    """The CPU seconds used while the block ran, machine-wide and by the processes it started and waited for. With
    the lab on the same machine, machine / cores is the least wall time the work could take here."""
    box: list[CpuUse] = []
    m0, r0 = machine_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    yield box
    r1, m1 = resource.getrusage(resource.RUSAGE_CHILDREN), machine_cpu()
    box.append(CpuUse(round(m1[0] - m0[0], 1), round((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), 1)))


@contextmanager
def cpu_samples(every: float = 0.25) -> Iterator[list[tuple[float, float]]]:
    """(Unix time, the machine's busy CPU seconds so far) every `every` seconds while the block runs, read in a
    thread: with a task profile's times, sendmail_fleet.cpu.busy_between gives each stretch of a run its CPU."""
    box: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while True:
            box.append((time.time(), machine_cpu()[0]))
            if stop.wait(every):
                return
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        stop.set()
        thread.join()
        box.append((time.time(), machine_cpu()[0]))


def settle(idle: float = 0.85, window: float = 2.0, deadline: float = 180.0) -> float:
    """Wait until the machine is quiet: at least `idle` of its CPU time idle over `window` seconds, twice in a row;
    at most `deadline` seconds. Returns the seconds waited. A lab just provisioned keeps the cores busy for a while
    (services and timers of the new packages starting), which a timed run right after it would pay for."""
    t0, quiet = time.monotonic(), 0
    while quiet < 2 and time.monotonic() - t0 < deadline:
        before = machine_cpu()
        time.sleep(window)  # the measuring interval itself
        quiet = quiet + 1 if 1 - busy_share(before, machine_cpu()) >= idle else 0
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
