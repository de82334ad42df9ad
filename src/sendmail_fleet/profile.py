"""Where a playbook run's time goes, from the JSON the task_profile callback writes
(plugins/callback/task_profile.py): time by kind of work, the costliest tasks, and Ansible's own cost per task.

With the linear strategy every task waits for its slowest host, so a task's wall time (its start to the last
host's return) is what it adds to the run; the sum over tasks is the run's wall time, less the gaps between
tasks.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .textable import align

# Actions that never touch a host: their time is Ansible's own work per task (templating, scheduling, results).
CONTROLLER_ONLY = {"set_fact", "assert", "debug", "fail", "meta", "include_tasks", "include_role", "import_tasks",
                   "import_role", "include_vars", "add_host", "group_by", "validate_argument_spec"}


@dataclass(frozen=True)
class Result:
    host: str
    status: str
    changed: bool
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Task:
    play: str
    name: str
    role: str
    action: str
    handler: bool
    start: float
    results: tuple[Result, ...]

    @property
    def wall(self) -> float:
        return max((r.end for r in self.results), default=self.start) - self.start

    @property
    def short_action(self) -> str:
        return self.action.rsplit(".", 1)[-1]

    @property
    def bare(self) -> str:
        """The task's own name, without the "role : " Ansible puts before the name of a role's task."""
        prefix = f"{self.role} : "
        return self.name[len(prefix):] if self.role and self.name.startswith(prefix) else self.name

    @property
    def label(self) -> str:
        return f"{self.role} : {self.bare}" if self.role else self.name


@dataclass(frozen=True)
class Profile:
    wall: float
    tasks: tuple[Task, ...]

    @classmethod
    def load(cls, path: Path) -> Profile:
        raw = json.loads(path.read_text())
        tasks = tuple(Task(t["play"], t["name"], t["role"], t["action"], t["handler"], t["start"],
                           tuple(Result(**r) for r in t["results"])) for t in raw["tasks"])
        return cls(raw["wall"], tasks)


@dataclass(frozen=True)
class Segment:
    """A stretch of a run: from its first task's start to the next segment's first task (the last, to the run's end)."""
    name: str
    start: float
    seconds: float
    tasks: tuple[Task, ...]

    def hosts_that_ran(self, bare: str) -> set[str]:
        """The hosts that ran (did not skip) a task of this name in the segment."""
        return {r.host for t in self.tasks if t.bare == bare for r in t.results if r.status != "skipped"}


def segments(profile: Profile, cut: Callable[[Task], str | None]) -> list[Segment]:
    """The run cut where `cut` names a task: a segment of that name begins at the task. Tasks before the first cut
    form a segment named "start"; the time from the run's start to its first task is in the first segment."""
    bounds: list[tuple[str, int]] = []
    for i, t in enumerate(profile.tasks):
        name = cut(t)
        if name is not None:
            bounds.append((name, i))
    if not bounds or bounds[0][1] != 0:
        bounds.insert(0, ("start", 0))
    out = []
    for k, (name, i) in enumerate(bounds):
        j = bounds[k + 1][1] if k + 1 < len(bounds) else len(profile.tasks)
        begin = 0.0 if k == 0 else profile.tasks[i].start
        end = profile.tasks[j].start if j < len(profile.tasks) else profile.wall
        out.append(Segment(name, begin, end - begin, profile.tasks[i:j]))
    return out


# Kinds of work, first match wins.
KINDS: list[tuple[str, Callable[[Task], bool]]] = [
    ("packages (apt: index, download, dpkg)", lambda t: t.short_action in ("apt", "package")),
    ("sendmail switch and restarts (host-side transaction, handlers)",
     lambda t: t.handler or t.bare.startswith(("Deploy |", "Restart |"))),
    ("m4 builds and sendmail checks", lambda t: t.role == "sendmail" and (
        t.bare.startswith(("Build |", "Variants |")) or "what the live sendmail.mc builds" in t.bare)),
    ("services (start, enable, reload)", lambda t: t.short_action in ("service", "systemd", "systemd_service")),
    ("facts", lambda t: t.short_action in ("setup", "gather_facts", "service_facts")),
    ("controller-side only (set_fact, assert, debug, include)", lambda t: t.short_action in CONTROLLER_ONLY),
    ("other modules on the host (copy, file, template, command, ...)", lambda t: True),
]


def kind(task: Task) -> str:
    return next(label for label, match in KINDS if match(task))


def by_kind(profile: Profile) -> list[tuple[str, int, float]]:
    """(kind, tasks, wall seconds), in KINDS order, kinds with no task left out."""
    rows = []
    for label, _ in KINDS:
        tasks = [t for t in profile.tasks if kind(t) == label]
        if tasks:
            rows.append((label, len(tasks), sum(t.wall for t in tasks)))
    return rows


def top(profile: Profile, n: int = 15) -> list[tuple[str, int, float, float]]:
    """The n tasks (by role and name, summed over their runs) that cost the most wall time:
    (task, runs, wall seconds, slowest single host seconds)."""
    agg: dict[str, list[Task]] = {}
    for t in profile.tasks:
        agg.setdefault(t.label, []).append(t)
    rows = [(label, len(ts), sum(t.wall for t in ts), max((r.seconds for t in ts for r in t.results), default=0.0))
            for label, ts in agg.items()]
    return sorted(rows, key=lambda r: -r[2])[:n]


def per_task_overhead(profile: Profile) -> float:
    """Ansible's own cost of one task: the median wall time of the tasks that never touch a host."""
    walls = [t.wall for t in profile.tasks if kind(t).startswith("controller-side") and t.results]
    return statistics.median(walls) if walls else 0.0


def round_trip(profile: Profile) -> float:
    """The median cost of a host task that changed nothing (a module sent, run and answered over SSH)."""
    walls = [t.wall for t in profile.tasks if not kind(t).startswith("controller-side") and t.results
             and all(r.status == "ok" and not r.changed for r in t.results)]
    return statistics.median(walls) if walls else 0.0


def report(profile: Profile, title: str, n: int = 15) -> list[str]:
    """Markdown lines a person reads: totals, time by kind, the costliest tasks."""
    hosts = {r.host for t in profile.tasks for r in t.results}
    per_host = [sum(1 for t in profile.tasks for r in t.results if r.host == h and r.status != "skipped")
                for h in sorted(hosts)]
    lines = [f"### {title}", "",
             f"Wall time {profile.wall:.1f} s; {len(profile.tasks)} task starts; {len(hosts)} hosts; "
             f"{min(per_host, default=0)}-{max(per_host, default=0)} tasks run (not skipped) per host. "
             f"Ansible's own cost per task (median of tasks that touch no host): "
             f"{per_task_overhead(profile):.2f} s; a host task that changes nothing: {round_trip(profile):.2f} s.",
             "", "```"]
    kinds = by_kind(profile)
    total = sum(w for _, _, w in kinds) or 1.0
    lines += align([["KIND OF WORK", "TASKS", "WALL S", "SHARE"],
                    *([k, str(c), f"{w:.1f}", f"{w / total:.0%}"] for k, c, w in kinds)], rule="  ")
    lines += ["", f"top {n} tasks by wall time:"]
    lines += align([["TASK", "RUNS", "WALL S", "SLOWEST HOST S"],
                    *([label, str(runs), f"{w:.1f}", f"{slow:.1f}"] for label, runs, w, slow in top(profile, n))],
                   rule="  ")
    return [*lines, "```", ""]
