"""Where provisioning's time goes: a per-task, per-host profile of a first site.yml run on new containers, a second
run that changes nothing, and a rollout to SMTP-Auth only, on the default lab (5 VPS + mx).

The lab's containers are made anew (the images are kept: building them is lab_up.py's measure). Each run is timed
with the task_profile callback (plugins/callback/task_profile.py); the tables come from sendmail_fleet.profile.
Run: .venv/bin/python benchmarks/provision.py [LABEL]   (LABEL names the results file: provision_LABEL.md)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write  # noqa: E402

from sendmail_fleet import playbook as ansible_playbook  # noqa: E402
from sendmail_fleet.lab import Paths, down, save_topology, up  # noqa: E402
from sendmail_fleet.profile import Profile, report  # noqa: E402
from sendmail_fleet.progress import Progress  # noqa: E402
from sendmail_fleet.topology import build  # noqa: E402


def profiled(paths: Paths, name: str, out: Path, *args: str) -> Profile:
    env = {"ANSIBLE_CALLBACKS_ENABLED": "sendmail_fleet.mail.task_profile", "SENDMAIL_FLEET_PROFILE": str(out)}
    run = ansible_playbook.run(paths.inventory, name, *args, capture=True, env=env)
    if run.returncode != 0:
        raise SystemExit(f"{name} failed:\n{run.stdout[-3000:]}")
    return Profile.load(out)


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else "profile"
    paths, progress = Paths.default(), Progress()
    raw = paths.state / "profiles" / label  # the raw JSON stays out of the repository (~0.3 MB a run)
    raw.mkdir(parents=True, exist_ok=True)
    with progress.step("a new lab (containers made anew, images kept)"):
        down(paths, Progress(quiet=True))
        topo = build()
        up(topo, paths, progress)
        save_topology(paths, topo)
    runs = []
    for title, name, args in (("site.yml, first run on new containers", "site.yml", ()),
                              ("site.yml, second run (changes nothing)", "site.yml", ()),
                              ("rollout to SMTP-Auth only (rollout_force: the lab's users relayed minutes ago)",
                               "rollout-auth-only.yml", ("-e", "rollout_force=true"))):
        with progress.step(title):
            runs.append((title, profiled(paths, name, raw / f"{len(runs) + 1}.json", *args)))
    lines = ["| run | wall s |", "|---|---|"] + [f"| {t} | {p.wall:.1f} |" for t, p in runs] + [""]
    for title, prof in runs:
        lines += report(prof, title)
    lines.append("The raw profiles (task_profile JSON) are written to .lab/profiles/LABEL/ by the run.")
    write(f"provision_{label}", "Provisioning profile: where the time goes", lines)


if __name__ == "__main__":
    main()
