"""What the second Debian release costs: the same run provisions a one-release lab (the five variants on Debian 12,
as the lab was before Debian 13) and the default two-release lab (the five variants on Debian 13 and on Debian 12),
each on new containers, and sends the demo's real mail through each.

Run: .venv/bin/python benchmarks/releases.py   (results: results/releases.md; images are kept, containers remade)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, playbook, timed, write  # noqa: E402

import docker  # noqa: E402
from sendmail_fleet import playbook as ansible_playbook  # noqa: E402
from sendmail_fleet.lab import Paths, down, save_topology, up  # noqa: E402
from sendmail_fleet.mailcheck import MailLab, run_all  # noqa: E402
from sendmail_fleet.progress import Progress  # noqa: E402
from sendmail_fleet.topology import DEFAULT_VPS, POP_BEFORE_SMTP_WINDOW, RELEASES, Topology, build  # noqa: E402

LABS = (("one release: 5 VPS on Debian 12 + mx", lambda: build(5, releases={i: "bookworm" for i in range(1, 6)})),
        ("two releases: 5 VPS on Debian 13, 5 on Debian 12 + mx (the default lab)", lambda: build(DEFAULT_VPS)))


def measure(paths: Paths, topo: Topology, progress: Progress) -> dict[str, float]:
    down(paths, Progress(quiet=True))
    with timed() as t_up:
        up(topo, paths, progress)
    save_topology(paths, topo)
    with progress.step("site.yml, first run"), timed() as t_first:
        playbook(paths.inventory, "site.yml")
    with progress.step("site.yml, second run"), timed() as t_second:
        playbook(paths.inventory, "site.yml")
    with progress.step("the demo's real mail"), timed() as t_mail:
        checks = run_all(MailLab(topo, docker.from_env()), POP_BEFORE_SMTP_WINDOW)
    failed = [r for c in checks.values() for r in c.results if not r.passed]
    if failed:
        raise SystemExit(f"mail checks failed: {[(r.check, r.detail) for r in failed]}")
    return {"up": t_up[0], "first": t_first[0], "second": t_second[0], "mail": t_mail[0],
            "hosts": len(topo.mail_hosts)}


def main() -> None:
    arguments(__doc__)
    paths, progress = Paths.default(), Progress()
    rows = []
    for title, make in LABS:
        with progress.step(title):
            rows.append((title, measure(paths, make(), progress)))
    down(paths, Progress(quiet=True))
    lines = ["| lab | mail hosts | containers up s | site.yml first run s | second run s | real mail s |",
             "|---|---|---|---|---|---|"]
    for title, r in rows:
        lines.append(f"| {title} | {r['hosts']:.0f} | {r['up']:.1f} | {r['first']:.1f} | {r['second']:.1f} "
                     f"| {r['mail']:.1f} |")
    (_, one), (_, two) = rows
    lines += ["", "The second release (the two-release lab against the one-release lab, same run):", "",
              "| measure | added | ratio |", "|---|---|---|"]
    for key, name in (("first", "site.yml, first run"), ("second", "site.yml, second run"),
                      ("mail", "real mail through every variant")):
        lines.append(f"| {name} | {two[key] - one[key]:+.1f} s | {two[key] / one[key]:.2f}x |")
    lines += ["", f"Releases: {', '.join(f'{c} ({v})' for c, v in RELEASES.items())}; accelerator: "
              f"{ansible_playbook.accelerator()}. Images were present (building them is lab_up.py's measure)."]
    write("releases", "The second Debian release: what it costs the lab", lines)


if __name__ == "__main__":
    main()
