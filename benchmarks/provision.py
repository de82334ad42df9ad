"""Where provisioning's time goes: a per-task, per-host profile of a first site.yml run on new containers, a second
run that changes nothing (also on plain ansible-core and on Mitogen's own pinned strategy), and a rollout to
SMTP-Auth only, on the default lab (10 VPS on Debian 12 and 13 + mx) or with --one-release on 5 VPS + mx.

The lab's containers are made anew (the images are kept: building them is lab_up.py's measure). Each run is timed
with the task_profile callback (plugins/callback/task_profile.py); the tables come from sendmail_fleet.profile.
Run: .venv/bin/python benchmarks/provision.py [LABEL] [--from-raw] [--one-release]   (results:
provision_LABEL.md; --from-raw makes the tables again from the raw profiles of an earlier run; --one-release
profiles the lab issue 12's table was measured on, 5 VPS on Debian 12 + mx, instead of the default lab)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, playbook, write  # noqa: E402

from sendmail_fleet import playbook as ansible_playbook  # noqa: E402
from sendmail_fleet.lab import Paths, down, save_topology, up  # noqa: E402
from sendmail_fleet.profile import Profile, report  # noqa: E402
from sendmail_fleet.progress import Progress  # noqa: E402
from sendmail_fleet.topology import build  # noqa: E402


def profiled(paths: Paths, name: str, out: Path, *args: str, accelerated: bool = True,
             env: dict[str, str] | None = None) -> Profile:
    env = {"ANSIBLE_CALLBACKS_ENABLED": "sendmail_fleet.mail.task_profile", "SENDMAIL_FLEET_PROFILE": str(out),
           **(env or {})}
    playbook(paths.inventory, name, *args, env=env, accelerated=accelerated)
    return Profile.load(out)


# Mitogen's own strategy, which pins Ansible and its workers to one CPU of two (the lab runs it unpinned).
PINNED = {"ANSIBLE_STRATEGY": "mitogen_linear"}

# (title, playbook, arguments, accelerated: False runs plain ansible-core also where Mitogen is installed,
#  environment of the run)
RUNS = (("site.yml, first run on new containers", "site.yml", (), True, {}),
        ("site.yml, second run (changes nothing)", "site.yml", (), True, {}),
        ("site.yml, third run (changes nothing), plain ansible-core", "site.yml", (), False, {}),
        ("site.yml, fourth run (changes nothing), Mitogen pinning Ansible to one CPU (its own mitogen_linear)",
         "site.yml", (), True, PINNED),
        ("rollout to SMTP-Auth only (rollout_force: the lab's users relayed minutes ago)", "rollout-auth-only.yml",
         ("-e", "rollout_force=true"), True, {}))


def main() -> None:
    args = arguments(__doc__, lambda p: (
        p.add_argument("label", nargs="?", default="profile", help="names the results file (provision_LABEL.md)"),
        p.add_argument("--from-raw", action="store_true", help="the tables again from an earlier run's profiles"),
        p.add_argument("--one-release", action="store_true", help="5 VPS on Debian 12 + mx, not the default lab")))
    label = args.label
    paths, progress = Paths.default(), Progress()
    raw = paths.state / "profiles" / label  # the raw JSON stays out of the repository (~0.3 MB a run)
    raw.mkdir(parents=True, exist_ok=True)
    if args.from_raw:  # tables again from the profiles of an earlier run
        runs = [(title, Profile.load(raw / f"{i}.json")) for i, (title, *_) in enumerate(RUNS, 1)
                if (raw / f"{i}.json").exists()]
    else:
        with progress.step("a new lab (containers made anew, images kept)"):
            down(paths, Progress(quiet=True))
            topo = build(5, releases={i: "bookworm" for i in range(1, 6)}) if args.one_release else build()
            up(topo, paths, progress)
            save_topology(paths, topo)
        runs = []
        for i, (title, name, extra, accelerated, env) in enumerate(RUNS, 1):
            with progress.step(title):
                runs.append((title, profiled(paths, name, raw / f"{i}.json", *extra, accelerated=accelerated,
                                             env=env)))
    lab = "5 VPS on Debian 12 + mx" if args.one_release else "the default lab (10 VPS, Debian 12 and 13, + mx)"
    lines = [f"Lab: {lab}.", "", f"Accelerator: {ansible_playbook.accelerator()} (runs marked plain ansible-core use none), strategy "
             f"{ansible_playbook.MITOGEN_STRATEGY} unless the run says otherwise.", "",
             "| run | wall s |", "|---|---|"] + [f"| {t} | {p.wall:.1f} |" for t, p in runs] + [""]
    for title, prof in runs:
        lines += report(prof, title)
    lines.append(f"The raw profiles (task_profile JSON) are in .lab/profiles/{label}/ after the run.")
    write(f"provision_{label}", "Provisioning profile: where the time goes", lines)


if __name__ == "__main__":
    main()
