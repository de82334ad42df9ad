"""Issue 12's table, before and after side by side, read from the committed results of the other benchmarks:
provision_before.md / provision_after.md (benchmarks/provision.py) and rollout_before.json / rollout.json
(benchmarks/rollout.py). Nothing is measured here and no figure is typed in.
Run: .venv/bin/python benchmarks/speed.py   (results: speed.md)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, write  # noqa: E402

RUNS = {"first": "site.yml, first run on new containers", "second": "site.yml, second run (changes nothing)",
        "rollout": "rollout to SMTP-Auth only"}


def walls(name: str) -> dict[str, float]:
    """run title -> wall seconds, from the '| run | wall s |' table of a provision_*.md."""
    text = (RESULTS / f"{name}.md").read_text()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^\| (.+?) \| ([\d.]+) \|$", text, re.M)}


def pick(table: dict[str, float], start: str) -> float | None:
    return next((v for k, v in table.items() if k.startswith(start)), None)


def rollout(name: str) -> dict[int, dict[str, float]]:
    path = RESULTS / f"{name}.json"
    return {int(k): v for k, v in json.loads(path.read_text()).items()} if path.exists() else {}


def fmt(v: float | None, unit: str = " s") -> str:
    return "not measured" if v is None else f"{v:.1f}{unit}" if unit == " s" else f"{v:.2f}{unit}"


def main() -> None:
    before, after = walls("provision_before"), walls("provision_after")
    rb, ra = rollout("rollout_before"), rollout("rollout")

    def ratio(r: dict[int, dict[str, float]], a: tuple[int, str], b: tuple[int, str]) -> float | None:
        try:
            return r[a[0]][a[1]] / r[b[0]][b[1]]
        except KeyError:
            return None

    rows = [("site.yml, first run on new containers (5 VPS + mx)", fmt(pick(before, RUNS["first"])),
             fmt(pick(after, RUNS["first"])), "<= 150 s"),
            ("site.yml, second run, changes nothing", fmt(pick(before, RUNS["second"])),
             fmt(pick(after, RUNS["second"])), "<= 30 s"),
            ("rollout to SMTP-Auth only, 5 VPS + mx", fmt(pick(before, RUNS["rollout"])),
             fmt(pick(after, RUNS["rollout"])), "-"),
            ("rollout, 8 VPS vs 1 VPS (project settings)", fmt(ratio(rb, (8, "project"), (1, "project")), "x"),
             fmt(ratio(ra, (8, "project"), (1, "project")), "x"), "<= 2x"),
            ("rollout, project settings vs Ansible defaults, 8 VPS",
             fmt(ratio(rb, (8, "project"), (8, "defaults")), ""), fmt(ratio(ra, (8, "project"), (8, "defaults")), ""),
             "<= 0.5")]
    lines = ["| measure | before | after | target |", "|---|---|---|---|"]
    lines += [f"| {m} | {b} | {a} | {t} |" for m, b, a, t in rows]
    lines += ["", "Before: provision_before.md (2026-11-27, before the speed work) and rollout_before.md (2026-11-25);",
              "after: provision_after.md and rollout.md. Each from one run of benchmarks/provision.py or rollout.py."]
    write("speed", "Provisioning cost per host: before and after", lines)


if __name__ == "__main__":
    main()
