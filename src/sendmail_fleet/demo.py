"""`maillab demo`: the main job. Lab up, every VPS provisioned in its variant, real mail through every
path, one table (and JSON) of reply codes with pass or fail."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import docker

from .lab import LabError, Paths, save_topology, saved_topology, up
from .mailcheck import Checks, MailLab, run_all
from .progress import Progress
from .textable import align
from .topology import POP_BEFORE_SMTP_WINDOW, RELEASES, Topology
from .variants import checks


def table(results: dict[str, Checks]) -> str:
    """One row per VPS, one column per check of the promises table, each cell the reply seen and ok/FAIL."""
    ran = {r.check for c in results.values() for r in c.results}
    columns = [check for check in checks() if check in ran]
    rows = [["VPS", "DEBIAN", "VARIANT", *columns]]
    for short, c in results.items():
        cells = {r.check: f"{r.seen} {'ok' if r.passed else 'FAIL'}" for r in c.results}
        rows.append([short, RELEASES.get(c.vps.release or "", "-"), c.variant.name,
                     *[cells.get(col, "") for col in columns]])
    return "\n".join(align(rows, " | ", rule="-+-"))


def to_json(checks: dict[str, Checks]) -> dict:
    return {"hosts": [{"vps": s, "container": c.vps.name, "release": c.vps.release, "variant": c.variant.name,
                       "checks": [r.__dict__ for r in c.results]} for s, c in checks.items()],
            "passed": all(r.passed for c in checks.values() for r in c.results)}


def lab_topology(paths: Paths, vps: int | None) -> Topology:
    """The lab the demo runs on: the saved one (its `--variant` and `--release` choices kept), resized with --vps."""
    return saved_topology(paths).changed(vps)


def demo(paths: Paths, progress: Progress, provision: Callable[[Paths, Sequence[str]], int], vps: int | None,
         json_file: str | None, skip_provision: bool) -> int:
    topo = lab_topology(paths, vps)
    up(topo, paths, progress)
    save_topology(paths, topo)
    if not skip_provision:
        with progress.step(f"provisioning {len(topo.mail_hosts)} hosts with playbooks/site.yml"):
            if provision(paths, []) != 0:
                raise LabError("provisioning failed: see the Ansible output above")
    with progress.step("sending real mail through every variant"):
        checks = run_all(MailLab(topo, docker.from_env()), POP_BEFORE_SMTP_WINDOW, progress.say)
    print(table(checks))
    failures = [(s, r) for s, c in checks.items() for r in c.results if not r.passed]
    for s, r in failures:
        print(f"FAIL {s} {r.check}: {r.detail}", file=sys.stderr)
    data = to_json(checks)
    out = Path(json_file) if json_file else paths.state / "demo-results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2))
    total = sum(len(c.results) for c in checks.values())
    print(f"\n{total - len(failures)} passed, {len(failures)} failed  (JSON: {out})")
    return 0 if not failures else 1
