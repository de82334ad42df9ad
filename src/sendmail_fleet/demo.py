"""`maillab demo`: the main job. Lab up, every VPS provisioned in its variant, real mail through every
path, one table (and JSON, and an HTML page) of reply codes with pass or fail."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import docker

from .collection import filter_plugin
from .lab import LabError, Paths, save_topology, saved_topology, up
from .mailcheck import Checks, MailLab, run_all
from .progress import Progress
from .textable import align
from .topology import POP_BEFORE_SMTP_WINDOW, RELEASES, Topology
from .variants import NOT_APPLICABLE, checks


def _columns(results: dict[str, Checks]) -> list[str]:
    ran = {r.check for c in results.values() for r in c.results}
    return [check for check in checks() if check in ran]


def table(results: dict[str, Checks]) -> str:
    """One row per VPS, one column per check of the promises table, each cell the reply seen and ok/FAIL."""
    columns = _columns(results)
    rows = [["VPS", "DEBIAN", "VARIANT", *columns]]
    for short, c in results.items():
        cells = {r.check: f"{r.seen} {'ok' if r.passed else 'FAIL'}" for r in c.results}
        rows.append([short, RELEASES.get(c.vps.release or "", "-"), c.variant.name,
                     *[cells.get(col, "") for col in columns]])
    return "\n".join(align(rows, " | ", rule="-+-"))


def html(data: dict, when: str) -> str:
    """The demo's JSON (to_json) as a page: hosts by checks, each cell the reply seen, green where it is what the
    variant promises, red where not (the expectation and detail in the cell's tooltip), plain where the check does
    not apply to the variant."""
    report = filter_plugin("html_report")
    columns = [check for check in checks() if any(r["check"] == check for h in data["hosts"] for r in h["checks"])]
    rows = []
    for h in data["hosts"]:
        seen = {r["check"]: r for r in h["checks"]}
        row = [h["vps"], RELEASES.get(h.get("release") or "", "-"), h["variant"]]
        for col in columns:
            r = seen.get(col)
            if r is None:
                row.append(report.cell(""))
                continue
            # A check that does not apply to the variant (and saw nothing) stays uncoloured: it proves nothing.
            colour = "" if r["passed"] and r["seen"] == NOT_APPLICABLE else "ok" if r["passed"] else "fail"
            c = report.cell(r["seen"], colour)
            c["title"] = r["detail"] or "as the variant promises"
            row.append(c)
        rows.append(row)
    total = sum(len(h["checks"]) for h in data["hosts"])
    failed = sum(1 for h in data["hosts"] for r in h["checks"] if not r["passed"])
    summary = (f"{total - failed} of {total} checks saw what the variant promises"
               + (f"; {failed} did not (red cells; hover or tap for the detail)" if failed else ""))
    body = report.table(["VPS", "DEBIAN", "VARIANT", *columns], rows)
    notes = [f"FAIL {h['vps']} {r['check']}: {r['detail']}" for h in data["hosts"] for r in h["checks"]
             if not r["passed"]]
    return report.page("sendmail-fleet lab: real mail through every variant", [("", body)], summary,
                       "fail" if failed else "ok", notes,
                       f"Each cell is the reply a client container saw (SMTP reply code, AUTH mechanisms, "
                       f"where procmail filed the mail). Written {when} by maillab demo.")


def to_json(checks: dict[str, Checks]) -> dict:
    return {"hosts": [{"vps": s, "container": c.vps.name, "release": c.vps.release, "variant": c.variant.name,
                       "checks": [r.__dict__ for r in c.results]} for s, c in checks.items()],
            "passed": all(r.passed for c in checks.values() for r in c.results)}


def lab_topology(paths: Paths, vps: int | None) -> Topology:
    """The lab the demo runs on: the saved one (its `--variant` and `--release` choices kept), resized with --vps."""
    return saved_topology(paths).changed(vps)


def demo(paths: Paths, progress: Progress, provision: Callable[[Paths, Sequence[str], Progress], None],
         vps: int | None, json_file: str | None, skip_provision: bool, only: Sequence[str] = ()) -> int:
    topo = lab_topology(paths, vps)
    unknown = [s for s in only if s not in {n.short for n in topo.by_role("vps")}]
    if unknown:
        raise LabError(f"--only {', '.join(unknown)}: not a VPS of this lab "
                       f"({', '.join(n.short for n in topo.by_role('vps'))})")
    up(topo, paths, progress)
    save_topology(paths, topo)
    if not skip_provision:
        provision(paths, ["-l", ",".join(only)] if only else [], progress)  # raises LabError naming what failed
    with progress.step(f"sending real mail through every variant on {len(only) or len(topo.by_role('vps'))} VPS"):
        checks = run_all(MailLab(topo, docker.from_env()), POP_BEFORE_SMTP_WINDOW, progress.say, progress.detail,
                         only)
    print(table(checks))
    failures = [(s, r) for s, c in checks.items() for r in c.results if not r.passed]
    for s, r in failures:
        print(f"FAIL {s} {r.check}: {r.detail}", file=sys.stderr)
    data = to_json(checks)
    out = Path(json_file) if json_file else paths.state / "demo-results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2))
    page = out.with_suffix(".html")
    page.write_text(html(data, time.strftime("%Y-%m-%d %H:%M %Z")))
    total = sum(len(c.results) for c in checks.values())
    print(f"\n{total - len(failures)} passed, {len(failures)} failed  (JSON: {out}; HTML: {page})")
    return 0 if not failures else 1
