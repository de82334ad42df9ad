"""From the growth benchmark's measurements (results/growth.json) to a fleet of 10,000 VPS run from AWX: how long each
playbook takes, how many execution-node CPUs and how much memory it needs, and which limit comes first.

AWX's capacity rules (AWX docs/capacity.md; the same in Ansible Automation Platform):
- an instance's capacity in forks is between its CPU capacity, cores x SYSTEM_TASK_FORKS_CPU (4 forks per core),
  and its memory capacity, (memory MB - 2048) / SYSTEM_TASK_FORKS_MEM (100 MB per fork); its capacity adjustment
  picks the point between them (1.0, the default, the larger one);
- a job's impact is min(forks, hosts) + 1 (the +1 is ansible-playbook itself).
What the measurements add: the controller's CPU per host grows with the number of hosts in the play (fitted as a line),
and ansible-playbook's own process runs the strategy loop in one thread.
Run: .venv/bin/python benchmarks/extrapolate.py [FLEET] [NODE_CORES] [NODE_GIB]   (default 10000 16 32)
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, arguments, write  # noqa: E402

FORKS_PER_CPU = 4  # SYSTEM_TASK_FORKS_CPU
MB_PER_FORK = 100  # SYSTEM_TASK_FORKS_MEM
RESERVED_MB = 2048  # what AWX keeps for itself on an instance
SETTING = "mitogen, 20 forks"
PLAYBOOKS = ("site.yml", "audit-pop-before-smtp.yml", "fleet-report.yml", "rollout-auth-only.yml")


def fit(results: dict, key: str, field: str) -> tuple[float, float]:
    """Per-host cost in `field` as a line in the job's host count, a + b x hosts (least squares over the sizes that
    measured `key`): b > 0 is work that every host's task does once per other host in the play."""
    pts = [(results[n][key]["hosts"], results[n][key][field] / results[n][key]["hosts"])
           for n in results if key in results[n]]
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    b = max(0.0, sum((x - mx) * (y - my) for x, y in pts) / sxx) if sxx else 0.0
    return my - b * mx, b


def grows(results: dict, key: str, field: str = "cpu", share: float = 0.15) -> bool:
    """Does the fitted line make the cost per host at the largest size measured more than `share` above its fixed
    part? Below that, a shared 2-core machine's noise explains it as well as the play's size does."""
    a, b = fit(results, key, field)
    top = max((int(n) for n in results if key in results[n]), default=0)
    hosts = results[str(top)][key]["hosts"] if top else 0
    return b * hosts > share * a


def job_cost(results: dict, key: str, field: str, hosts: int, fitted: bool = True) -> float:
    """`field` of one job on `hosts` hosts: with fitted, hosts x (a + b x hosts) from the line; else flat, hosts x
    the cost per host at the largest size measured. The rollout's cost per host also moves with how its batches
    fall at each size (5 VPS: 1 + 4; 20: 1 + 10 + 5 + 4), so it is always taken flat."""
    if not fitted or key.startswith("rollout-auth-only.yml"):
        top = results[max((n for n in results if key in results[n]), key=int)][key]
        return hosts * top[field] / top["hosts"]
    a, b = fit(results, key, field)
    return hosts * (a + b * hosts)


def per_fork_mib(results: dict) -> float:
    """Memory one more fork costs: site.yml with 20 forks against 5 at the largest size both ran, with forks capped
    by the hosts there are."""
    both = [n for n in results if f"site.yml | {SETTING}" in results[n] and "site.yml | mitogen, 5 forks" in results[n]]
    n = max(both, key=int)
    f20, f5 = results[n][f"site.yml | {SETTING}"], results[n]["site.yml | mitogen, 5 forks"]
    return (f20["peak_mib"] - f5["peak_mib"]) / (min(20, f20["hosts"]) - min(5, f5["hosts"]))


def spread(results: dict) -> list[str]:
    """Per host, as measured: all controller CPU seconds / of them ansible-playbook's own, at each size."""
    sizes = sorted(results, key=int)
    rows = ["| playbook | " + " | ".join(f"{n} VPS" for n in sizes) + " | fit: all CPU per host | fit: own CPU per host |",
            "|---|" + "---|" * (len(sizes) + 2)]
    for playbook in PLAYBOOKS:
        key = f"{playbook} | {SETTING}"
        cells = [f"{results[n][key]['cpu'] / results[n][key]['hosts']:.2f} / "
                 f"{results[n][key]['main_cpu'] / results[n][key]['hosts']:.2f}" if key in results[n] else "-"
                 for n in sizes]
        (aa, ba), (ao, bo) = fit(results, key, "cpu"), fit(results, key, "main_cpu")
        rows.append(f"| {playbook} | " + " | ".join(cells) + (
            " | the largest size's, flat | the largest size's, flat |" if playbook == "rollout-auth-only.yml" else
            f" | {aa:.2f} + {ba * 1000:.1f} ms x hosts | {ao:.2f} + {bo * 1000:.1f} ms x hosts |"))
    return rows


def rollout_batches(fleet: int) -> list[int]:
    """The default rollout_batches [1, 10, "25%"] as Ansible's serial cuts a fleet."""
    sizes, left, quarter = [], fleet, max(1, fleet * 25 // 100)
    for size in (1, 10):
        if left > 0:
            sizes.append(min(size, left))
            left -= sizes[-1]
    while left > 0:
        sizes.append(min(quarter, left))
        left -= sizes[-1]
    return sizes


def floor_s(results: dict, key: str, hosts: int, cores: int, fitted: bool = True,
            forks: int = 20) -> tuple[float, str]:
    """The least wall time of one job on `hosts` hosts, and what sets it: its own process (one thread), or the CPU
    its forks get (min(cores, forks) of them)."""
    own = job_cost(results, key, "main_cpu", hosts, fitted)
    cpu = job_cost(results, key, "cpu", hosts, fitted) / min(cores, forks)
    return (own, "own process") if own >= cpu else (cpu, "CPU")


def slices_for(results: dict, key: str, fleet: int, cores: int, fitted: bool = True, hour: float = 3600) -> int:
    """The fewest slices whose jobs each finish within the hour by their floor."""
    slices = 1
    while slices < fleet and floor_s(results, key, math.ceil(fleet / slices), cores, fitted)[0] > hour:
        slices = math.ceil(slices * 1.25) if slices > 4 else slices + 1
    return slices


def page(results: dict, fleet: int, cores: int, gib: int) -> list[str]:
    fork_mib = per_fork_mib(results)
    mem_capacity = (gib * 1024 - RESERVED_MB) // MB_PER_FORK
    cpu_capacity = cores * FORKS_PER_CPU
    lines = [
        f"From `growth.json` (the growth benchmark, {', '.join(sorted(results, key=int))} VPS on this machine, "
        f"{SETTING}) to {fleet:,} VPS, for AWX execution nodes of {cores} cores and {gib} GiB.", "",
        "## What was measured, per host", "",
        "Controller CPU seconds per host, all its processes / ansible-playbook's own process, at each size, and a line "
        "fitted to them (least squares). "
        + ("The cost per host grows with the number of hosts in the play, by this data, which is why the page reads "
           "it two ways below. " if grows(results, f"site.yml | {SETTING}") else
           "site.yml's cost per host does not grow with the number of hosts in the play beyond the noise of a shared "
           "machine, so the two readings below (flat and fitted) nearly agree. ")
        + f"{len(results)} sizes on a shared 2-core machine make the slope rough: read the hours as an order of "
        "magnitude.", "",
        *spread(results), "",
        "## AWX's view of one execution node", "",
        f"- CPU capacity: {cores} cores x {FORKS_PER_CPU} = **{cpu_capacity} forks**; memory capacity: "
        f"({gib} GiB - 2 GiB) / {MB_PER_FORK} MB = **{mem_capacity} forks**; the default capacity adjustment 1.0 "
        f"takes the larger, {max(cpu_capacity, mem_capacity)}. A job of 20 forks has impact 21.",
        f"- Measured memory per fork: **{fork_mib:.0f} MiB** (site.yml, 20 forks against 5 at the same size), "
        f"{'within' if fork_mib <= MB_PER_FORK else 'above'} the {MB_PER_FORK} MB AWX assumes. By memory a node "
        f"holds {mem_capacity // 21} jobs of 20 forks, by CPU {cpu_capacity // 21}; the measurements side with CPU "
        "(below): set the nodes' capacity adjustment towards CPU (0.0), or AWX starts more jobs than the cores serve.",
        "", f"## Each playbook at {fleet:,} VPS", "",
        "Two readings of the measurements: **flat**, the cost per host at the largest size measured, as if it "
        "stayed there; **fitted**, the line above, as if it kept growing with the play's hosts. One job (unsliced): "
        "its least wall time, and what sets it: its own process (one thread) or the CPU its 20 forks get on a "
        f"{cores}-core node. Sliced: the fewest AWX slices whose jobs each finish within an hour, and the core-hours "
        "they take together. Each cell: flat / fitted.", "",
        "| playbook | one job, at least | set by | slices for 1 h each | core-hours, sliced | "
        f"nodes of {cores} cores for that hour |", "|---|---|---|---|---|---|"]
    for playbook in PLAYBOOKS:
        key = f"{playbook} | {SETTING}"
        cells: list[list[str]] = [[], [], [], [], []]
        for fitted in (False, True):
            one, why = floor_s(results, key, fleet, cores, fitted)
            cells[0].append(f"{one / 3600:.1f} h")
            cells[1].append(why)
            if playbook == "rollout-auth-only.yml":
                cells[2].append("not sliced")
                cells[3].append(f"{job_cost(results, key, 'cpu', fleet, fitted) / 3600:.0f}")
                cells[4].append("-")
                continue
            slices = slices_for(results, key, fleet, cores, fitted)
            core_h = slices * job_cost(results, key, "cpu", math.ceil(fleet / slices), fitted) / 3600
            cells[2].append(f"{slices} ({math.ceil(fleet / slices):,} hosts)")
            cells[3].append(f"{core_h:.0f}")
            cells[4].append(f"{math.ceil(core_h / cores)}")
        lines.append(f"| {playbook} | " + " | ".join(" / ".join(c) if len(set(c)) > 1 else c[0] for c in cells)
                     + " |")
    batches = rollout_batches(fleet)
    site = f"site.yml | {SETTING}"
    (a_all, b_all), (a_own, _) = fit(results, site, "cpu"), fit(results, site, "main_cpu")
    rollout_key = f"rollout-auth-only.yml | {SETTING}"
    group = 500
    g_floor, _ = floor_s(results, rollout_key, group, cores, False)
    rollout_top = max((n for n in results if rollout_key in results[n]), key=int)
    sizes = [n for n in results if site in results[n]]
    per_host = ", ".join(f"{results[n][site]['cpu'] / results[n][site]['hosts']:.1f}" for n in sorted(sizes, key=int))
    lines += [
        "", "## Where the first limit is", "",
        f"- **An unsliced job, by its own process.** site.yml's controller CPU per host at "
        f"{', '.join(sorted(sizes, key=int))} VPS: "
        f"{per_host} s "
        f"(the line: {a_all:.1f} s + {b_all * 1000:.0f} ms per host in the play). "
        + ("It grows with the play's hosts: if that is Ansible's work per task and host over lists of every host "
           "(`groups`, `hostvars`), a job's cost grows with the square of its hosts; if it is this machine (the "
           "controller and the containers on 2 cores), the flat reading holds. "
           if grows(results, site) else
           "Within the noise it stays flat as the play grows, so a job's cost grows with its hosts, not their "
           "square. ")
        + f"One job of {fleet:,} hosts still takes at least {floor_s(results, site, fleet, cores, False)[0] / 3600:.1f} h, "
        f"set by ansible-playbook's own process ({a_own:.1f} s per host, one thread): slices, each a play of its "
        "own hosts, come first.",
        f"- **Then CPU.** A job's forks do {1 - a_own / max(a_all, 1e-9):.0%} of its CPU (site.yml, fixed part): "
        f"on a node, jobs compete for cores; the 'nodes' column is the cores the sliced run needs for the hour.",
        f"- **Memory last.** {fork_mib:.0f} MiB a fork; 20 forks need {20 * fork_mib / 1024:.1f} GiB, far inside a "
        f"{gib} GiB node.",
        f"- **The rollout cannot be sliced** (it orchestrates across the fleet: one canary, batches, one failure "
        f"budget). Its default batches at {fleet:,} VPS are {', '.join(f'{b:,}' for b in batches)}, and one job over "
        f"the whole fleet takes at least {floor_s(results, rollout_key, fleet, cores)[0] / 3600:.1f} h at the cost "
        f"per host measured{' (more, where the growth above applies to it too)' if grows(results, site) else ''}. "
        "Run it per group instead (`-e target=GROUP`, the workflow in "
        f"docs/AWX.md once per data centre or customer group, each with its own canary): a group of {group} hosts "
        f"takes at least {g_floor / 60:.0f} min at the rollout's cost per host at {rollout_top} VPS (its largest size "
        "measured), and groups on different nodes move at once. That "
        "is also how providers move users, a group at a time.", "",
        "## What the line leaves out", "",
        "- The lab's hosts share this machine's cores with the controller, so host-side work (m4, restarts, mail) "
        "is in the wall times; the CPU figures count only the controller's processes.",
        "- Network round trips to real VPS are longer than to containers on one bridge: with Mitogen each task is "
        "one round trip per host, which adds wall time, not controller CPU.",
        "- A real fleet's mail logs are longer than the lab's: the audit reads 30 days of them on each host (host "
        "CPU, not the controller's).",
        "- AWX's own services (web, task, database, receptor) are not in these figures.",
    ]
    return lines


def main() -> None:
    args = arguments(__doc__, lambda p: (
        p.add_argument("fleet", nargs="?", type=int, default=10000, help="VPS in the fleet"),
        p.add_argument("cores", nargs="?", type=int, default=16, help="CPU cores of one execution node"),
        p.add_argument("gib", nargs="?", type=int, default=32, help="GiB of memory of one execution node")))
    fleet, cores, gib = args.fleet, args.cores, args.gib
    results = json.loads((RESULTS / "growth.json").read_text())
    write("growth_extrapolation", f"{fleet:,} VPS from AWX, extrapolated from the growth benchmark",
          page(results, fleet, cores, gib))


if __name__ == "__main__":
    main()
