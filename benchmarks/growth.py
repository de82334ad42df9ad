"""How the controller's cost grows with the fleet: the second site.yml (changes nothing), the audit, the fleet
report and the rollout at 5, 10, 20 and 40 VPS, with Mitogen on and off and with 20 or 5 forks.

For each run: wall seconds, the controller's CPU seconds (user + system of ansible-playbook and every process it
waited for: its forks, Mitogen's, the ssh clients), and the controller's peak memory: the largest sum of the
proportional set size (PSS, so pages the forks share with their parent count once) over ansible-playbook's process
tree, sampled every second. Per host: each divided by the run's host count (the VPS, the mx for site.yml).

The lab grows from one size to the next (`maillab up` adds VPS; the first site.yml of a size provisions the new ones
and puts the last size's rolled-out hosts back on their inventory variants, untimed). Every measured site.yml run
must change nothing. Sizes measured by an earlier invocation are kept (results/growth.json), so the sizes can be run
one at a time.
Run: .venv/bin/python benchmarks/growth.py [SIZES...] [--fresh]   (default 5 10 20 40; about an hour for all four;
--table writes the results file again from growth.json without measuring)
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, arguments, write  # noqa: E402

from sendmail_fleet import repo_root  # noqa: E402
from sendmail_fleet.lab import Paths, publish_dns, save_topology, up  # noqa: E402
from sendmail_fleet.playbook import ansible_env, argv  # noqa: E402
from sendmail_fleet.progress import Progress  # noqa: E402
from sendmail_fleet.topology import build  # noqa: E402

STORE = RESULTS / "growth.json"
SAMPLE_EVERY = 1.0
# (playbook, setting, Mitogen, forks, largest size): what is measured at each size up to its largest, in this order.
# site.yml first, right after the size's provisioning run; the rollout last (it switches the hosts; the next size's
# provisioning puts them back). Plain ansible-core and 5 forks stop at 10 VPS: at 40 the plain second site.yml alone
# would take about a quarter of an hour, and the way they scale shows by then.
RUNS = [
    ("site.yml", "mitogen, 20 forks", True, 20, 40),
    ("site.yml", "plain, 20 forks", False, 20, 10),
    ("site.yml", "mitogen, 5 forks", True, 5, 10),
    ("audit-pop-before-smtp.yml", "mitogen, 20 forks", True, 20, 40),
    ("audit-pop-before-smtp.yml", "plain, 20 forks", False, 20, 40),
    ("fleet-report.yml", "mitogen, 20 forks", True, 20, 40),
    ("fleet-report.yml", "plain, 20 forks", False, 20, 40),
    ("rollout-auth-only.yml", "mitogen, 20 forks", True, 20, 40),
]


@dataclass
class Measured:
    wall: float
    cpu: float  # ansible-playbook and every process it waited for
    main_cpu: float  # ansible-playbook's own process: its strategy loop is one thread, so this bounds the wall time
    peak_mib: float
    hosts: int


def own_cpu(pid: int) -> float:
    """A process's own user + system CPU seconds so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def tree_pss_kib(root: int) -> int:
    """The PSS of root and all its descendants, in KiB (processes that end while being read count 0)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, ValueError):
            continue
    return total


def measure(inventory: Path, playbook: str, mitogen: bool, forks: int, hosts: int, *args: str,
            unchanged: bool = False) -> Measured:
    """One run, timed and sampled; a failure (or a change where none may be) ends the benchmark."""
    env = {**ansible_env(accelerated=mitogen), "ANSIBLE_FORKS": str(forks)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(argv(inventory, playbook, *args), env=env, cwd=repo_root(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    peak, main, done = [0], [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_EVERY):
            peak[0] = max(peak[0], tree_pss_kib(proc.pid))
            main[0] = max(main[0], own_cpu(proc.pid))  # the last sample before it ends: at most a second short

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    changed = [int(n) for n in re.findall(r"changed=(\d+)", out)]
    if proc.returncode != 0 or (unchanged and any(changed)):
        raise SystemExit(f"{playbook}: exit {proc.returncode}, changed {changed}:\n{out[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(round(wall, 1), round(cpu, 1), round(main[0], 1), round(peak[0] / 1024, 1), hosts)


def main() -> None:
    args = arguments(__doc__, lambda p: (
        p.add_argument("sizes", nargs="*", type=int, default=[5, 10, 20, 40], help="fleet sizes (VPS)"),
        p.add_argument("--fresh", action="store_true", help="forget the sizes an earlier run measured"),
        p.add_argument("--table", action="store_true", help="only write the table again from growth.json")))
    if args.table:
        write("growth", "How the controller's cost grows with the fleet", table(json.loads(STORE.read_text())))
        return
    sizes = args.sizes
    paths, progress = Paths.default(), Progress()
    results: dict[str, dict[str, dict]] = json.loads(STORE.read_text()) \
        if STORE.exists() and not args.fresh else {}
    for n in sizes:
        topo = build(n)
        with progress.step(f"{n} VPS: lab up"):
            up(topo, paths, progress)
            save_topology(paths, topo)
        with progress.step(f"{n} VPS: provision (new hosts; rolled-out hosts back on their inventory variants)"):
            measure(paths.inventory, "site.yml", True, 20, n + 1, "-e", "sendmail_allow_pop_before_smtp_again=true")
            publish_dns(topo, progress)  # the new hosts' DKIM keys, as `maillab provision` publishes them
        row: dict[str, dict] = results.setdefault(str(n), {})
        for playbook, setting, mitogen, forks, largest in RUNS:
            if n > largest:
                continue
            hosts = n + 1 if playbook == "site.yml" else n
            # The grace hosts (VPS 11 and 12) would be held by the readiness gate: every host switches.
            extra = ("-e", "rollout_force=true") if playbook == "rollout-auth-only.yml" else ()
            with progress.step(f"{n} VPS: {playbook} ({setting})"):
                m = measure(paths.inventory, playbook, mitogen, forks, hosts, *extra,
                            unchanged=playbook == "site.yml")
            row[f"{playbook} | {setting}"] = asdict(m)
            STORE.write_text(json.dumps(results, indent=1))  # each measurement kept as it comes
            progress.say(f"  {m.wall} s wall, {m.cpu} s CPU ({m.main_cpu} s in ansible-playbook itself), "
                         f"{m.peak_mib} MiB peak")
    write("growth", "How the controller's cost grows with the fleet", table(results))


def table(results: dict[str, dict[str, dict]]) -> list[str]:
    sizes = sorted(results, key=int)
    lines = ["Each cell: wall seconds / controller CPU seconds (all its processes) / of those, ansible-playbook's own "
             "process / controller peak memory (PSS of ansible-playbook's process tree, MiB). Hosts: the VPS (and "
             "the mx for site.yml). Measured one after another on one machine with the lab's containers on it too: "
             "the hosts' own work shares the cores with the controller's.", "",
             "| playbook | settings | " + " | ".join(f"{n} VPS" for n in sizes) + " |",
             "|---|---|" + "---|" * len(sizes)]
    for playbook, setting, *_ in RUNS:
        key = f"{playbook} | {setting}"
        cells = [results[n].get(key) for n in sizes]
        lines.append(f"| {playbook} | {setting} | " + " | ".join(
            f"{c['wall']:.0f} / {c['cpu']:.0f} / {c['main_cpu']:.0f} / {c['peak_mib']:.0f}" if c else "-"
            for c in cells) + " |")
    lines += ["", "Per host at the largest size measured, and what one more host costs between the two largest sizes "
              "measured:", "",
              "| playbook | settings | wall s per host | CPU s per host | own CPU s per host | "
              "extra host: wall s | extra host: CPU s | extra host: own CPU s | extra host: MiB |",
              "|---|---|---|---|---|---|---|---|---|"]
    for playbook, setting, *_ in RUNS:
        key = f"{playbook} | {setting}"
        have = [n for n in sizes if key in results[n]]
        if len(have) >= 2:
            a, b = results[have[-2]][key], results[have[-1]][key]
            dh = b["hosts"] - a["hosts"]
            lines.append(f"| {playbook} | {setting} ({have[-2]} -> {have[-1]} VPS) | {b['wall'] / b['hosts']:.2f} | {b['cpu'] / b['hosts']:.2f} | "
                         f"{b['main_cpu'] / b['hosts']:.2f} | {(b['wall'] - a['wall']) / dh:.2f} | "
                         f"{(b['cpu'] - a['cpu']) / dh:.2f} | {(b['main_cpu'] - a['main_cpu']) / dh:.2f} | "
                         f"{(b['peak_mib'] - a['peak_mib']) / dh:.1f} |")
    missing = [f"{playbook} ({setting}) at {n} VPS" for playbook, setting, _, _, largest in RUNS for n in sizes
               if int(n) <= largest and f"{playbook} | {setting}" not in results[n]]
    if missing:
        lines += ["", "Not measured (a run stopped before it): " + "; ".join(missing) + "."]
    if any(int(n) < 40 for n in sizes) and "40" not in results:
        lines += ["", "40 VPS: not measured yet (`benchmarks/growth.py 40`)."]
    return lines


if __name__ == "__main__":
    main()
