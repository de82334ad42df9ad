"""Issue 12's table, before and after side by side, read from the committed results of the other benchmarks:
provision_before.md / provision_after.md (benchmarks/provision.py) and rollout_before.json / rollout.json
(benchmarks/rollout.py); then the same on the two-release lab (10 VPS + mx: provision_11hosts_before.md,
provision_11hosts_config_module.md, provision_11hosts_files_module.md and provision_11hosts_after.md) beside the floor that floor.py measured (floor.md). Nothing is measured here and no
figure is typed in.
Run: .venv/bin/python benchmarks/speed.py   (results: speed.md)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, arguments, write  # noqa: E402

# The two-release lab's profiles, oldest first: (provision_11hosts_NAME.md, column title).
STAGES = [("before", "session start"), ("config_module", "config module"), ("files_module", "files module"),
          ("after", "after")]

RUNS = {"first": "site.yml, first run on new containers", "second": "site.yml, second run (changes nothing)",
        "rollout": "rollout to SMTP-Auth only"}


def walls(name: str) -> dict[str, float]:
    """run title -> wall seconds, from the '| run | wall s |' table of a provision_*.md."""
    text = (RESULTS / f"{name}.md").read_text()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^\| (.+?) \| ([\d.]+) \|$", text, re.M)}


def pick(table: dict[str, float], start: str) -> float | None:
    return next((v for k, v in table.items() if k.startswith(start)), None)


def kinds(name: str, title: str) -> dict[str, int]:
    """kind of work -> task starts, from the KIND OF WORK table of one run's profile in a provision_*.md."""
    text = (RESULTS / f"{name}.md").read_text()
    part = text[text.index(f"### {title}"):]
    part = part[:part.index("top 15 tasks")]
    return {m.group(1).strip(): int(m.group(2)) for m in re.finditer(r"^(\S.*?)\s{2,}(\d+)\s+[\d.]+\s+\d+%$", part, re.M)}


def floor_figures() -> dict[str, float]:
    """The figures of floor.md, by row: (what, one host alone, every host at once) -> seconds."""
    text = (RESULTS / "floor.md").read_text()
    out: dict[str, float] = {}
    for m in re.finditer(r"^\| ([^|]+?) \| ([^|]+?) \|(?: ([^|]+?) \|)?$", text, re.M):
        what = m.group(1)
        for col, cell in (("alone", m.group(2)), ("all", m.group(3) or "")):
            num = re.match(r"[\d.]+", cell.strip())
            if num:
                out[f"{what} [{col}]"] = float(num.group(0))
    return out


def find(figs: dict[str, float], start: str, col: str) -> float:
    return next(v for k, v in figs.items() if k.startswith(start) and k.endswith(f"[{col}]"))


def two_release_rows() -> list[str]:
    """The two-release lab, stage by stage (STAGES), and the floor under each run."""
    stages = [walls(f"provision_11hosts_{name}") for name, _ in STAGES]
    figs = floor_figures()
    host_task, controller_task = find(figs, "a task on every host", "alone"), find(figs, "a task that touches", "alone")
    dpkg_all = find(figs, "the same packages: dpkg as the image", "all")
    floor_text = (RESULTS / "floor.md").read_text()
    dpkg_hosts = int(re.search(r"dpkg as the image sets it.*?\((\d+) hosts\)", floor_text).group(1))
    lab_hosts = int(re.search(r"The lab's (\d+) mail hosts", floor_text).group(1))
    restart = find(figs, "sendmail restart by SIGHUP", "all")
    startup = find(figs, "ansible-playbook start-up", "alone")

    def task_floor(title: str) -> tuple[float, str]:
        k = kinds("provision_11hosts_after", title)
        ctl = k.get("controller-side only (set_fact, assert, debug, include)", 0)
        host = sum(k.values()) - ctl
        return (startup + host * host_task + ctl * controller_task,
                f"{host} host tasks x {host_task:.2f} s + {ctl} controller tasks x {controller_task:.2f} s")

    first_tasks, first_how = task_floor(RUNS["first"])
    dpkg_lab = dpkg_all * lab_hosts / dpkg_hosts
    second_tasks, second_how = task_floor(RUNS["second"])
    rows = [
        ("site.yml, first run on new containers", [pick(st, RUNS["first"]) for st in stages], dpkg_lab + restart + first_tasks,
         f"dpkg on {lab_hosts} hosts at once {dpkg_lab:.0f} s ({dpkg_hosts} hosts: {dpkg_all:.0f} s) + restart "
         f"{restart:.1f} s + "
         f"{first_how}"),
        ("site.yml, second run, changes nothing", [pick(st, RUNS["second"]) for st in stages], second_tasks,
         second_how),
        ("rollout to SMTP-Auth only (3 batches)", [pick(st, RUNS["rollout"]) for st in stages], None, "-"),
    ]
    lines = ["| measure | " + " | ".join(title for _, title in STAGES) + " | floor | floor made of |",
             "|---|" + "---|" * len(STAGES) + "---|---|"]
    lines += [f"| {m} | " + " | ".join(fmt(v) for v in values) + f" | {'-' if f is None else fmt(f)} | {how} |"
              for m, values, f, how in rows]
    return lines


def rollout(name: str) -> dict[int, dict[str, float]]:
    path = RESULTS / f"{name}.json"
    return {int(k): v for k, v in json.loads(path.read_text()).items()} if path.exists() else {}


def now_of(now: dict[str, float], run: str) -> str:
    """The same run on today's code, where provision_one_release.md has it: " (now X s)"."""
    value = pick(now, RUNS[run]) if now else None
    return "" if value is None else f" (now {value:.1f} s)"


def fmt(v: float | None, unit: str = " s") -> str:
    return "not measured" if v is None else f"{v:.1f}{unit}" if unit == " s" else f"{v:.2f}{unit}"


def main() -> None:
    arguments(__doc__)
    before, after = walls("provision_before"), walls("provision_after")
    now = walls("provision_one_release") if (RESULTS / "provision_one_release.md").exists() else {}
    rb, ra = rollout("rollout_before"), rollout("rollout")

    def ratio(r: dict[int, dict[str, float]], a: tuple[int, str], b: tuple[int, str]) -> float | None:
        try:
            return r[a[0]][a[1]] / r[b[0]][b[1]]
        except KeyError:
            return None

    rows = [("site.yml, first run on new containers (5 VPS + mx)", fmt(pick(before, RUNS["first"])),
             fmt(pick(after, RUNS["first"])) + now_of(now, "first"), "<= 150 s"),
            ("site.yml, second run, changes nothing", fmt(pick(before, RUNS["second"])),
             fmt(pick(after, RUNS["second"])) + now_of(now, "second"), "<= 30 s"),
            ("rollout to SMTP-Auth only, 5 VPS + mx", fmt(pick(before, RUNS["rollout"])),
             fmt(pick(after, RUNS["rollout"])) + now_of(now, "rollout"), "-"),
            ("rollout, 8 VPS vs 1 VPS (project settings)", fmt(ratio(rb, (8, "project"), (1, "project")), "x"),
             fmt(ratio(ra, (8, "project"), (1, "project")), "x"), "<= 2x"),
            ("rollout, project settings vs Ansible defaults, 8 VPS",
             fmt(ratio(rb, (8, "project"), (8, "defaults")), ""), fmt(ratio(ra, (8, "project"), (8, "defaults")), ""),
             "<= 0.5")]
    lines = ["| measure | before | after | target |", "|---|---|---|---|"]
    lines += [f"| {m} | {b} | {a} | {t} |" for m, b, a, t in rows]
    lines += ["", "Before: provision_before.md (2026-11-27, before the speed work) and rollout_before.md (2026-11-25);",
              "after: provision_after.md and rollout.md. Each from one run of benchmarks/provision.py or rollout.py."]
    if now:
        lines += ["Now: provision_one_release.md (benchmarks/provision.py --one-release, the same 5 VPS + mx on "
                  "today's roles, which do more: TLS from ACME, fail2ban, the mail settings service)."]
    lines += ["", "## The two-release lab (10 VPS + mx, Debian 12 and 13), and the floor under it", ""]
    lines += two_release_rows()
    lines += ["", "Session start: provision_11hosts_before.md (the code of ee1c06c); config module: "
              "provision_11hosts_config_module.md (the sendmail config phase as one task, 15fb2fa); files module: "
              "provision_11hosts_files_module.md (each step's files as one task, 90f1d3c); after: "
              "provision_11hosts_after.md (Mitogen unpinned, 1efc786; its fourth run is Mitogen pinned, same lab);",
              "floor: floor.md (packages, restarts and Ansible's cost per task, measured without the roles; a "
              "task's floor is a stat on every host, which changes nothing)."]
    write("speed", "Provisioning cost per host: before and after", lines)


if __name__ == "__main__":
    main()
