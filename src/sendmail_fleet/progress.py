"""Progress for long work: elapsed time, then what is happening; on a terminal, one live line redrawn in place.

`Progress` prints the lines; `RunView` turns an Ansible run's events (plugins/callback/progress.py) into one line
per finished phase, a live line (hosts done, the phase each host is in, who is still busy) and, at the end, the
failing hosts with their task and message.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

LIVE_INTERVAL = 0.2  # seconds between redraws of the live line
LONG_TASK = 2.0  # a phase's line names its longest task when that took at least this long


class Progress:
    def __init__(self, quiet: bool = False, verbose: bool = False, stream: IO[str] | None = None,
                 tty: bool | None = None) -> None:
        self.start = time.monotonic()
        self.quiet, self.verbose = quiet, verbose
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._live = ""
        self._drawn = 0.0
        # Threads report at once (the demo's checks, one thread per VPS): a line is written whole, in one call, under
        # the lock, or two lines could run into one (print writes the text and its newline apart).
        self._lock = threading.RLock()

    def _stamp(self) -> str:
        return f"[{time.monotonic() - self.start:6.1f}s]"

    def say(self, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            self._erase()
            self.stream.write(f"{self._stamp()} {message}\n")
            self.stream.flush()
            if self._live:
                self._draw()

    def detail(self, message: str) -> None:
        """A line only for -v: build steps, each check's reply."""
        if self.verbose:
            self.say(message)

    def live(self, message: str) -> None:
        """The line redrawn in place on a terminal (at most every LIVE_INTERVAL); nothing elsewhere."""
        with self._lock:
            self._live = message
            if self.tty and not self.quiet and time.monotonic() - self._drawn >= LIVE_INTERVAL:
                self._erase()
                self._draw()

    def end_live(self) -> None:
        with self._lock:
            self._erase()
            self._live = ""

    def _draw(self) -> None:
        if not self.tty or not self._live:
            return
        width = shutil.get_terminal_size((120, 24)).columns - 1
        self.stream.write(f"{self._stamp()} {self._live}"[:width])
        self.stream.flush()
        self._drawn = time.monotonic()

    def _erase(self) -> None:
        if self.tty and self._live:
            self.stream.write("\r\x1b[K")

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        """'message ...' then 'message: done in Ns'; on a terminal the first is the live line, so a step that
        prints nothing else takes one line."""
        t0 = time.monotonic()
        if self.tty:
            self.live(f"{message} ...")
        else:
            self.say(f"{message} ...")
        yield
        self.end_live()
        self.say(f"{message}: done in {time.monotonic() - t0:.1f}s")


def short_task(name: str, most: int = 44) -> str:
    """'sendmail : Deploy | Install, restart and verify ...' -> 'Install, restart and verify ...' (cut to most)."""
    what = name.split(" : ", 1)[-1].split(" | ", 1)[-1]
    return what if len(what) <= most else what[: most - 1] + "…"


def hosts_text(hosts: list[str], most: int = 4) -> str:
    """'vps3, vps8' or 'vps1, vps2, vps3, vps4 and 3 more'."""
    shown = ", ".join(hosts[:most])
    return shown + (f" and {len(hosts) - most} more" if len(hosts) > most else "")


@dataclass
class Failure:
    host: str
    task: str
    message: str


@dataclass
class _Phase:
    label: str
    start: float
    hosts: set[str] = field(default_factory=set)
    busy_for: dict[str, float] = field(default_factory=dict)  # host -> seconds spent in this phase's tasks
    changed: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    task: str = ""  # the task running now, and since when
    task_start: float = 0.0
    longest: tuple[float, str] = (0.0, "")  # the phase's longest task: seconds, name

    def next_task(self, name: str, t: float) -> None:
        if self.task and t - self.task_start > self.longest[0]:
            self.longest = (t - self.task_start, self.task)
        self.task, self.task_start = name, t


class RunView:
    """Follows one ansible-playbook run through its events. feed() returns the lines to print for good: a phase
    (a role's consecutive tasks, facts, handlers) when it ends, with its host count, wall time and slowest host."""

    def __init__(self) -> None:
        self.t = 0.0
        self.task = ""
        self.role = ""
        self.hosts: dict[str, str] = {}  # host -> the phase it is in
        self.started: dict[str, float] = {}  # host -> when it started its current task (busy hosts only)
        self.failures: dict[str, Failure] = {}  # host -> its last failure
        self.stats: dict[str, dict[str, int]] | None = None
        self.phase: _Phase | None = None

    @staticmethod
    def label(role: str, task: str, handler: bool) -> str:
        base = role or ("facts" if task == "Gathering Facts" else "play")
        return f"{base} handlers" if handler else base

    def feed(self, event: dict[str, Any]) -> list[str]:
        self.t = float(event.get("t", self.t))
        kind = event.get("e")
        out: list[str] = []
        if kind == "task":
            self.task = str(event.get("name", ""))
            label = self.label(str(event.get("role", "")), self.task, bool(event.get("handler")))
            if self.phase is None or self.phase.label != label:
                out += self._end_phase()
                self.phase = _Phase(label, self.t)
            self.phase.next_task(self.task, self.t)
        elif kind == "start" and self.phase is not None:
            host = str(event["host"])
            self.hosts[host] = self.phase.label
            self.started[host] = self.t
            self.phase.hosts.add(host)
        elif kind == "result":
            host, status = str(event["host"]), str(event.get("status"))
            began = self.started.pop(host, self.t)
            if self.phase is not None:
                self.phase.hosts.add(host)
                self.phase.busy_for[host] = self.phase.busy_for.get(host, 0.0) + self.t - began
                if status == "changed":
                    self.phase.changed.add(host)
                if status in ("failed", "unreachable"):
                    self.phase.failed.add(host)
            if status in ("failed", "unreachable"):  # a role's task name reads "role : Phase | What" already
                self.failures[host] = Failure(host, str(event.get("task", "")), str(event.get("msg") or status))
        elif kind == "stats":
            self.stats = {h: dict(c) for h, c in dict(event.get("hosts", {})).items()}
            out += self._end_phase()
        return out

    def _end_phase(self) -> list[str]:
        p, self.phase = self.phase, None
        if p is None or not p.hosts:
            return []
        line = f"  {p.label:<22} {len(p.hosts):>3} host{'s' if len(p.hosts) != 1 else ' '} {self.t - p.start:6.1f}s"
        if len(p.busy_for) > 1:
            slow = max(p.busy_for, key=lambda h: p.busy_for[h])
            line += f"  slowest {slow} {p.busy_for[slow]:.1f}s"
        if p.changed:
            line += f"  changed on {len(p.changed)}"
        if p.failed:
            line += f"  FAILED on {hosts_text(sorted(p.failed))}"
        p.next_task("", self.t)
        secs, name = p.longest
        if secs >= LONG_TASK and secs < self.t - p.start - 0.05:  # a phase of one task: the line says it all
            line += f"  longest: {short_task(name)} {secs:.1f}s"
        return [line]

    def live(self) -> str:
        """Hosts done / total, the phase the busy hosts are in and who they are."""
        total = len(self.hosts)
        busy = sorted(self.started)
        failed = [h for h in self.failures if self.stats is None]
        head = f"{total - len(busy)}/{total} hosts done with the current task"
        phases: dict[str, list[str]] = {}
        for h in busy:
            phases.setdefault(self.hosts.get(h, "?"), []).append(h)
        where = "; ".join(f"{p}: {hosts_text(hs)} busy" for p, hs in phases.items())
        task = self.task if len(self.task) <= 60 else self.task[:59] + "…"
        parts = [head, f"{self.phase.label if self.phase else '-'}: {task}"]
        if where:
            parts.append(where)
        if failed:
            parts.append(f"failed: {hosts_text(sorted(failed))}")
        return " · ".join(parts)

    def failed_hosts(self) -> list[Failure]:
        """The hosts the recap counts as failed or unreachable, each with its last failure (rescued and ignored
        failures do not count)."""
        if self.stats is None:
            return list(self.failures.values())
        bad = [h for h, c in self.stats.items() if c.get("failures", 0) or c.get("unreachable", 0)]
        return [self.failures.get(h, Failure(h, "?", "failed (see the log)")) for h in bad]

    def summary(self) -> str:
        """'11 hosts: 77 changed, 0 failed' from the recap."""
        if not self.stats:
            return "no recap"
        changed = sum(c.get("changed", 0) for c in self.stats.values())
        return f"{len(self.stats)} hosts, {changed} changes, {len(self.failed_hosts())} failed"
