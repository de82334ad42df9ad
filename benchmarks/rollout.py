"""Rollout wall time for fleets of 1, 4 and 8 VPS, with the project's Ansible settings (ansible.cfg, and Mitogen
where it is installed) and with Ansible's defaults (forks 5, no pipelining, default SSH arguments, plain
ansible-core), in the same run.

Each timed rollout is the first on a new lab of that many VPS in mixed variants, provisioned with site.yml (not
timed), as a fleet has it: every host's first switch (a host leaving POP-before-SMTP installs SASL's packages then),
in every size and setting alike. It starts once the machine is quiet again after provisioning (common.settle).
With --repeat=N each size and setting is measured N times, each on its own new lab, in rounds (every size once
per round, so the machine's drift falls on all sizes alike); the table gives the median and every run.
The project-settings runs are profiled (the task_profile callback, in every size alike), and rollout_phases.md
says where each size's time goes: the pre-flight, each batch (the canary first) with the hosts it switched, the
report; and what the 8-VPS run adds to the 1-VPS run, against the 2x target.
Run: .venv/bin/python benchmarks/rollout.py [SIZES...] [--fresh] [--project-only] [--repeat=N]
(default 1 4 8; takes a long time; --fresh forgets the sizes an earlier run measured; --project-only leaves out
Ansible's defaults, whose column then shows "-")
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, arguments, cpu_samples, cpu_used, playbook, settle, timed, write  # noqa: E402

from sendmail_fleet import playbook as ansible_playbook  # noqa: E402
from sendmail_fleet import repo_root  # noqa: E402
from sendmail_fleet.cpu import busy_between  # noqa: E402
from sendmail_fleet.lab import Paths, down, save_topology, up  # noqa: E402
from sendmail_fleet.profile import Profile, Segment, segments  # noqa: E402
from sendmail_fleet.progress import Progress  # noqa: E402
from sendmail_fleet.topology import build  # noqa: E402


def main() -> None:
    args = arguments(__doc__, lambda p: (
        p.add_argument("sizes", nargs="*", type=int, default=[1, 4, 8], help="fleet sizes (VPS)"),
        p.add_argument("--fresh", action="store_true", help="forget the sizes an earlier run measured"),
        p.add_argument("--project-only", action="store_true", help="leave out Ansible's defaults"),
        p.add_argument("--repeat", type=int, default=1, metavar="N", help="runs per size and setting (median)")))
    sizes, repeat = args.sizes, args.repeat
    paths, progress = Paths.default(), Progress()
    project_cfg = str(repo_root() / "ansible.cfg")
    with tempfile.TemporaryDirectory() as tmp:
        defaults_cfg = os.path.join(tmp, "ansible.cfg")
        # Only where the code is (the roles, and the collection for its filters); every setting that costs or
        # saves time stays at Ansible's default.
        Path(defaults_cfg).write_text(f"[defaults]\nroles_path = {repo_root() / 'roles'}\n"
                                      f"collections_path = {repo_root() / '.collections'}\n")
        store = RESULTS / "rollout.json"
        # Sizes measured by earlier invocations are kept, so the sizes can be run one at a time.
        results: dict[int, dict[str, Any]] = {int(k): v for k, v in json.loads(store.read_text()).items()} \
            if store.exists() and not args.fresh else {}
        settings = [("project", project_cfg), ("defaults", defaults_cfg)]
        settings = settings[:1] if args.project_only else settings
        # Repetitions on the outside: each round measures every size once, so the machine's drift over a long
        # benchmark falls on every size alike, not on the size measured last.
        runs: dict[tuple[int, str], list[tuple[float, Path, list[float]]]] = {}
        quiet: dict[tuple[int, str], list[float]] = {}
        for i in range(repeat):
            for n in sizes:
                topo = build(n)
                for label, cfg in settings:
                    down(paths, progress)  # also the variants an earlier rollout wrote into the lab's host_vars
                    up(topo, paths, progress)
                    save_topology(paths, topo)
                    with progress.step(f"{n} VPS: provision a new lab with site.yml"):
                        playbook(paths.inventory, "site.yml", env={"ANSIBLE_CONFIG": project_cfg})
                    with progress.step(f"{n} VPS: the machine quiet again (at most 180 s)"):
                        quiet.setdefault((n, label), []).append(settle())
                    profile = Path(tmp) / f"rollout_profile_{n}_{label}_{i}.json"
                    profiled = {"ANSIBLE_CALLBACKS_ENABLED": "sendmail_fleet.mail.task_profile",
                                "SENDMAIL_FLEET_PROFILE": str(profile)} if label == "project" else {}
                    with progress.step(f"{n} VPS: rollout with {label} settings, round {i + 1} of {repeat}"), \
                            timed() as t, cpu_used() as cpu, cpu_samples() as samples:
                        playbook(paths.inventory, "rollout-auth-only.yml", env={"ANSIBLE_CONFIG": cfg, **profiled},
                                 accelerated=label == "project")
                    if profile.exists():  # the machine's CPU beside the profile: each segment's busy seconds
                        profile.with_suffix(".cpu.json").write_text(json.dumps(samples))
                    runs.setdefault((n, label), []).append((t[0], profile, [cpu[0].machine, cpu[0].controller]))
        results.update({n: {} for n in sizes})  # a size measured now replaces what an earlier run left
        for (n, label), measured in runs.items():
            median = sorted(measured)[len(measured) // 2]
            results[n][label], results[n][f"{label}_runs"] = median[0], [r for r, _, _ in measured]
            results[n][f"{label}_cpu"] = median[2]  # [machine, controller] CPU seconds of the median run
            results[n][f"{label}_quiet_after"] = quiet[(n, label)]
            if median[1].exists():
                shutil.copyfile(median[1], RESULTS / f"rollout_profile_{n}.json")  # the median run's
                shutil.copyfile(median[1].with_suffix(".cpu.json"), RESULTS / f"rollout_cpu_{n}.json")
        store.write_text(json.dumps(results, indent=1))
    results = dict(sorted(results.items()))
    cores = os.cpu_count() or 1
    lines = ["| VPS | project settings (s) | Ansible defaults (s) | project / defaults | CPU s, machine / controller "
             f"| least wall on {cores} cores (s) |", "|---|---|---|---|---|---|"]
    for n, r in results.items():
        defaults, ratio = ((f"{r['defaults']:.1f}", f"{r['project'] / r['defaults']:.2f}") if "defaults" in r
                           else ("-", "-"))
        cpu, least = ((f"{r['project_cpu'][0]:.1f} / {r['project_cpu'][1]:.1f}",
                       f"{r['project_cpu'][0] / cores:.1f}") if "project_cpu" in r else ("-", "-"))
        lines.append(f"| {n} | {r['project']:.1f}{_runs(r, 'project')} | {defaults}{_runs(r, 'defaults')} "
                     f"| {ratio} | {cpu} | {least} |")
    if 1 in results and max(results) > 1:
        big = max(results)
        for label in ("project", "defaults"):
            if label not in results[1] or label not in results[big]:
                continue
            marginal = (results[big][label] - results[1][label]) / (big - 1)
            lines.append(f"\n{label}: marginal cost per extra host {marginal:.1f} s; "
                         f"{big} VPS take {results[big][label] / results[1][label]:.2f}x the time of 1")
        if "project_cpu" in results[big]:
            machine, controller = results[big]["project_cpu"]
            least = machine / cores
            ratio = least / results[1]["project"]
            lines.append(
                f"\nThe CPU floor: the {big}-VPS run kept the machine's cores busy for {machine:.1f} s ({controller:.1f} s "
                f"of them Ansible's own processes on the controller, the rest the lab's hosts): on {cores} cores that "
                + (f"work takes at least {least:.1f} s even" if ratio > 2 else f"work could take {least:.1f} s")
                + f" with no core ever idle, {ratio:.2f}x the 1-VPS run's wall time"
                + (". Below 2x needs less work per host, not more overlap." if ratio > 2 else
                   "; the rest of its wall time the cores waited (hosts in step, health checks' mail)."))
    waits = [f"{n} VPS {', '.join(f'{q:.0f}' for q in r.get('project_quiet_after', []))} s"
             for n, r in results.items() if r.get("project_quiet_after")]
    if waits:
        lines += ["", "Each rollout began once the machine was quiet after provisioning (seconds waited, project "
                  f"settings: {'; '.join(waits)})."]
    lines += ["", "Targets: project settings at most half the defaults' time at 8 VPS; 8 VPS at most twice 1 VPS.",
              f"Project settings: forks 20, pipelining, SSH ControlPersist 120 s (ansible.cfg); accelerator: "
              f"{ansible_playbook.accelerator()}."]
    write("rollout", "Rollout to SMTP-Auth only: wall time by fleet size", lines)
    profiles = {n: RESULTS / f"rollout_profile_{n}.json" for n in results}
    phases({n: Profile.load(f) for n, f in profiles.items() if f.exists()},
           {n: (json.loads(f.read_text())["started"], json.loads((RESULTS / f"rollout_cpu_{n}.json").read_text()))
            for n, f in profiles.items() if f.exists() and (RESULTS / f"rollout_cpu_{n}.json").exists()})


def _runs(result: dict[str, Any], label: str) -> str:
    """Every run's time, where there was more than one (the table's figure is their median)."""
    runs = result.get(f"{label}_runs", [])
    return f" (median of {', '.join(f'{r:.1f}' for r in runs)})" if len(runs) > 1 else ""


def parts(profile: Profile) -> list[Segment]:
    """The rollout cut into its pre-flight, each batch (canary first) and the report."""
    count = iter(range(1, 1000))

    def cut(t) -> str | None:
        if t.bare.startswith("Rollout | The hosts of this batch"):
            return f"batch {next(count)}"
        if t.play.startswith("Rollout | Report") and t.name.startswith("Rollout | Report"):
            return "report"
        return None
    return segments(profile, cut)


def phases(profiles: dict[int, Profile], cpu: dict[int, tuple[float, list[tuple[float, float]]]]) -> None:
    """rollout_phases.md: where each size's time goes, how busy the cores were meanwhile (where the machine's CPU
    was sampled beside the profile: `cpu` maps a size to the profile's start time and the samples), and what the
    largest size adds to one VPS."""
    cores = os.cpu_count() or 1
    lines = ["Each size's profiled project-settings run (`rollout_profile_N.json`; the median run where there were "
             "several), cut at each batch's first task.",
             "\"start\" is the pre-flight (facts, the audit, the plan) and Ansible's start-up; \"switched\" counts",
             "the hosts a batch switched (the others of the batch were already auth-only). CPU: the machine's busy",
             f"seconds in the segment (`rollout_cpu_N.json`, sampled every 0.25 s: the controller and the lab's hosts "
             f"together), and their share of the {cores} cores' time.", "",
             "| VPS | segment | seconds | switched | CPU s | cores busy |", "|---|---|---|---|---|---|"]

    def busy(n: int, seg: Segment) -> float | None:
        if n not in cpu:
            return None
        started, samples = cpu[n]
        return busy_between(samples, started + seg.start, started + seg.start + seg.seconds)
    for n, profile in sorted(profiles.items()):
        for seg in parts(profile):
            b = busy(n, seg)
            used = f"{b:.1f} | {b / max(seg.seconds * cores, 1e-9):.0%}" if b is not None else "- | -"
            lines.append(f"| {n} | {seg.name} | {seg.seconds:.1f} | "
                         f"{len(seg.hosts_that_ran('Rollout | Switch this host')) or ''} | {used} |")
        lines.append(f"| {n} | **total** | **{profile.wall:.1f}** | | | |")
    if 1 in profiles and max(profiles) > 1:
        big = max(profiles)
        one = {s.name: s.seconds for s in parts(profiles[1])}
        many = parts(profiles[big])
        extra = profiles[big].wall - profiles[1].wall
        later = [s for s in many if s.name.startswith("batch") and s.name != "batch 1"]
        lines += ["", f"What {big} VPS add to 1 VPS: {extra:.1f} s (2x allows {profiles[1].wall:.1f} s, the whole "
                  f"1-VPS run):", ""]
        for s in many:
            if s.name in one:
                lines.append(f"- {s.name}: {s.seconds - one[s.name]:+.1f} s ({one[s.name]:.1f} s to {s.seconds:.1f} s)")
        for s in later:
            lines.append(f"- {s.name} ({len(s.hosts_that_ran('Rollout | Switch this host'))} switched), which the "
                         f"1-VPS run does not have: +{s.seconds:.1f} s")
        lines += ["", "Within 2x means the later batches, with every host they switch, cost no more than the 1-VPS "
                  "run's canary batch and its fixed part together: a batch's own fixed cost is in both sides."]
        later_cpu = [b for b in (busy(big, s) for s in later) if b is not None]
        if later and len(later_cpu) == len(later):
            cpu_s, wall_s = sum(later_cpu), sum(s.seconds for s in later)
            packed = sum(s.seconds for s in many if s not in later) + cpu_s / cores
            lines += ["", f"With every core busy all through the later batches (their {cpu_s:.1f} CPU s on {cores} "
                      f"cores: {cpu_s / cores:.1f} s instead of {wall_s:.1f} s) and the rest as it was, the "
                      f"{big}-VPS run would take {packed:.1f} s: {packed / profiles[1].wall:.2f}x the 1-VPS run. The "
                      "pre-flight and the canary cannot overlap the later batches (no host moves before the canary "
                      "is proven)."]
    write("rollout_phases", "Rollout to SMTP-Auth only: where each size's time goes", lines)


if __name__ == "__main__":
    main()
