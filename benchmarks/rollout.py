"""Rollout wall time for fleets of 1, 4 and 8 VPS, with the project's Ansible settings (ansible.cfg, and Mitogen
where it is installed) and with Ansible's defaults (forks 5, no pipelining, default SSH arguments, plain
ansible-core), in the same run.

For each size the lab is brought to that many VPS in mixed variants; before each timed rollout the fleet
is put back on its inventory variants with site.yml (not timed).
Run: .venv/bin/python benchmarks/rollout.py [SIZES...] [--fresh] [--project-only]   (default 1 4 8; takes a long
time; --fresh forgets the sizes an earlier run measured and starts from a new lab (no variant a rollout wrote
into the lab's host_vars); --project-only leaves out Ansible's defaults, whose column
then shows "-")
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, playbook, timed, write  # noqa: E402

from sendmail_fleet import playbook as ansible_playbook  # noqa: E402
from sendmail_fleet import repo_root  # noqa: E402
from sendmail_fleet.lab import Paths, down, save_topology, up  # noqa: E402
from sendmail_fleet.progress import Progress  # noqa: E402
from sendmail_fleet.topology import build  # noqa: E402


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:] if not a.startswith("--")] or [1, 4, 8]
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
        results: dict[int, dict[str, float]] = {int(k): v for k, v in json.loads(store.read_text()).items()} \
            if store.exists() and "--fresh" not in sys.argv else {}
        if "--fresh" in sys.argv:
            down(paths, progress)  # also the variants an earlier rollout wrote into the lab inventory's host_vars
        for n in sizes:
            topo = build(n)
            up(topo, paths, progress)
            save_topology(paths, topo)
            results[n] = {}
            settings = [("project", project_cfg), ("defaults", defaults_cfg)]
            for label, cfg in settings[:1] if "--project-only" in sys.argv else settings:
                with progress.step(f"{n} VPS: reset with site.yml"):
                    # back to the inventory's variants on purpose: the rollout recorded auth-only on the hosts
                    playbook(paths.inventory, "site.yml", "-e", "sendmail_allow_pop_before_smtp_again=true",
                             env={"ANSIBLE_CONFIG": project_cfg})
                with progress.step(f"{n} VPS: rollout with {label} settings"), timed() as t:
                    playbook(paths.inventory, "rollout-auth-only.yml", env={"ANSIBLE_CONFIG": cfg},
                             accelerated=label == "project")
                results[n][label] = t[0]
            store.write_text(json.dumps(results, indent=1))
    results = dict(sorted(results.items()))
    lines = ["| VPS | project settings (s) | Ansible defaults (s) | project / defaults |", "|---|---|---|---|"]
    for n, r in results.items():
        defaults, ratio = ((f"{r['defaults']:.1f}", f"{r['project'] / r['defaults']:.2f}") if "defaults" in r
                           else ("-", "-"))
        lines.append(f"| {n} | {r['project']:.1f} | {defaults} | {ratio} |")
    if 1 in results and max(results) > 1:
        big = max(results)
        for label in ("project", "defaults"):
            if label not in results[1] or label not in results[big]:
                continue
            marginal = (results[big][label] - results[1][label]) / (big - 1)
            lines.append(f"\n{label}: marginal cost per extra host {marginal:.1f} s; "
                         f"{big} VPS take {results[big][label] / results[1][label]:.2f}x the time of 1")
    lines += ["", "Targets: project settings at most half the defaults' time at 8 VPS; 8 VPS at most twice 1 VPS.",
              f"Project settings: forks 20, pipelining, SSH ControlPersist 120 s (ansible.cfg); accelerator: "
              f"{ansible_playbook.accelerator()}."]
    write("rollout", "Rollout to SMTP-Auth only: wall time by fleet size", lines)


if __name__ == "__main__":
    main()
