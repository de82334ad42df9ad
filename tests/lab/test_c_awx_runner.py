"""The project's playbooks run as AWX runs them, on the lab fleet: streamed through ansible-runner (transmit | worker |
process, what AWX's receptor mesh carries to an execution node), unsliced and as two slices at once (AWX's job
slicing: hosts sorted by name, every second one, each slice job given the inventory pared down to its hosts).

The fleet report and the audit return their reports as job artifacts (set_stats), and the slices' artifacts merged by
host are the unsliced job's; nothing is written into this checkout. The rollout, given the meta variables AWX gives a
slice job, stops before any change with its message."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from sendmail_fleet import awx, repo_root
from sendmail_fleet.mailcheck import MailLab

from .conftest import sha

SLICES = 2
# Fields of a fleet report row that move with the mail traffic between two jobs a few seconds apart.
MOVING = {"queue", "held_by_sending_limit"}
# Fields of an audit row that say when its job ran: the start of the period it looked at (now minus audit_days),
# also named in the note on how far the logs reach, and how far back the logs reach from that moment (to the second).
RUN_TIME = {"since", "log_note", "log_span_days"}
# Two jobs of one test run minutes apart at most: their spans of the same log differ by less than this (days).
SPAN_DRIFT_DAYS = 0.01
# What AWX gives each job of a sliced job template: the slices run as a workflow job of the template's own name.
AWX_SLICE_VARS = {"awx_job_id": 41, "awx_job_template_name": "Rollout to SMTP-Auth only",
                  "awx_workflow_job_id": 40, "awx_workflow_job_name": "Rollout to SMTP-Auth only",
                  "awx_job_launch_type": "workflow"}


@pytest.fixture(scope="module")
def inventory(provisioned, paths) -> dict:
    return yaml.safe_load(Path(paths.inventory).read_text())


def job(tmp: Path, name: str, inventory: dict, host_vars: Path, playbook: str,
        extravars: dict | None = None) -> awx.RunnerJob:
    private = awx.private_data_dir(tmp / name / "private", inventory, host_vars, extravars)
    return awx.run(private, playbook, tmp / name / "work", tmp / name / "out")


def sliced_and_whole(tmp: Path, inventory: dict, host_vars: Path, playbook: str,
                     extravars: dict | None = None) -> tuple[awx.RunnerJob, list[awx.RunnerJob], list[list[str]]]:
    hosts = sorted(awx.inventory_hosts(inventory))
    cuts = [awx.slice_hosts(hosts, SLICES, k) for k in range(1, SLICES + 1)]
    with ThreadPoolExecutor(SLICES + 1) as pool:
        whole = pool.submit(job, tmp, "whole", inventory, host_vars, playbook, extravars)
        parts = [pool.submit(job, tmp, f"slice{k}", awx.pared_inventory(inventory, cut), host_vars, playbook,
                             extravars) for k, cut in enumerate(cuts, 1)]
        return whole.result(), [p.result() for p in parts], cuts


@pytest.fixture(scope="module")
def fleet_report(inventory, paths, tmp_path_factory):
    checkout_report = repo_root() / "reports" / "fleet-report.json"
    before = checkout_report.stat().st_mtime if checkout_report.exists() else None
    runs = sliced_and_whole(tmp_path_factory.mktemp("fleet-report"), inventory,
                            Path(paths.inventory).parent / "host_vars", "playbooks/fleet-report.yml")
    after = checkout_report.stat().st_mtime if checkout_report.exists() else None
    return (*runs, before == after)


def rows_by_host(rows: list[dict], key: str, drop: set[str] = frozenset()) -> dict[str, dict]:
    return {r[key]: {k: v for k, v in r.items() if k not in drop} for r in rows}


def test_each_slice_gets_its_own_hosts_and_together_the_slices_cover_the_inventory_once(fleet_report, inventory):
    *_, cuts, _ = fleet_report
    assert sorted(h for cut in cuts for h in cut) == sorted(awx.inventory_hosts(inventory))
    assert all(cut == sorted(cut) and cut for cut in cuts)


def test_the_fleet_report_streamed_through_ansible_runner_returns_its_rows_as_artifacts(fleet_report, inventory):
    whole, *_ = fleet_report
    assert whole.rc == 0 and whole.status == "successful", whole.stdout[-3000:]
    rows = whole.artifacts["sendmail_fleet_reports"]["fleet_report"]
    fleet = set(inventory["all"]["children"]["fleet"]["hosts"])
    assert {r["host"] for r in rows} == fleet
    assert all(r["problems"] == [] and r["live"] == r["wanted"] for r in rows), rows
    assert set(whole.stats["ok"]) >= fleet and not any(whole.stats.get("failures", {}).values())


def test_the_fleet_report_sliced_merges_by_host_into_the_unsliced_report(fleet_report):
    whole, parts, cuts, _ = fleet_report
    assert all(p.rc == 0 for p in parts), [p.stdout[-2000:] for p in parts]
    merged: dict[str, dict] = {}
    for part, cut in zip(parts, cuts, strict=True):
        rows = rows_by_host(part.artifacts["sendmail_fleet_reports"]["fleet_report"], "host", MOVING)
        assert set(rows) <= set(cut), "a slice reported a host of another slice"
        assert not set(rows) & set(merged)
        merged.update(rows)
    assert merged == rows_by_host(whole.artifacts["sendmail_fleet_reports"]["fleet_report"], "host", MOVING)


def test_the_jobs_write_nothing_into_this_checkout(fleet_report):
    *_, untouched = fleet_report
    assert untouched, "a job wrote reports/fleet-report.json of this checkout"


def test_the_audit_sliced_merges_by_host_into_the_unsliced_audit(inventory, paths, tmp_path):
    whole, parts, _ = sliced_and_whole(tmp_path, inventory, Path(paths.inventory).parent / "host_vars",
                                       "playbooks/audit-pop-before-smtp.yml")
    assert whole.rc == 0 and all(p.rc == 0 for p in parts), [j.stdout[-2000:] for j in (whole, *parts)]
    merged, spans = {}, {}
    for part in parts:
        rows = part.artifacts["sendmail_fleet_reports"]["audit"]
        merged.update(rows_by_host(rows, "name", RUN_TIME))
        spans.update({r["name"]: r["log_span_days"] for r in rows})
    whole_rows = whole.artifacts["sendmail_fleet_reports"]["audit"]
    assert merged == rows_by_host(whole_rows, "name", RUN_TIME)
    assert set(merged) == set(inventory["all"]["children"]["fleet"]["hosts"])
    # The same log, read a little later or earlier: the span moves by the time between the jobs, not by its start.
    drift = {r["name"]: abs(r["log_span_days"] - spans[r["name"]]) for r in whole_rows}
    assert all(d < SPAN_DRIFT_DAYS for d in drift.values()), drift


def test_the_rollout_run_as_a_slice_stops_before_any_change_and_says_why(inventory, paths, tmp_path,
                                                                         maillab: MailLab):
    hosts = sorted(awx.inventory_hosts(inventory))
    cut = awx.slice_hosts(hosts, SLICES, 1)
    fleet = [h for h in cut if h in inventory["all"]["children"]["fleet"]["hosts"]]
    before = {h: sha(maillab.topo.get(h), "/etc/mail/sendmail.mc") for h in fleet}
    run = job(tmp_path, "rollout", awx.pared_inventory(inventory, cut), Path(paths.inventory).parent / "host_vars",
              "playbooks/rollout-auth-only.yml", AWX_SLICE_VARS)
    assert run.rc != 0 and run.status == "failed"
    assert "one slice of the AWX sliced job 'Rollout to SMTP-Auth only'" in run.stdout, run.stdout[-3000:]
    assert "Nothing was changed" in run.stdout
    assert not any(run.changed().values()), run.changed()
    assert {h: sha(maillab.topo.get(h), "/etc/mail/sendmail.mc") for h in fleet} == before


def test_site_yml_as_a_slice_changes_nothing_and_a_publisher_whose_hosts_are_in_other_slices_stops_saying_how(
        inventory, paths, tmp_path, maillab: MailLab):
    """site.yml cut in three as AWX slices it: the mx (it publishes two VPS's mail settings) lands in a slice without
    one of them. Its slice's VPS change nothing, as in an unsliced run of the provisioned lab; the mx stops before
    any change, naming the hosts it misses and the jobs to run instead."""
    hosts = sorted(awx.inventory_hosts(inventory))
    mx = maillab.topo.by_role("mx")[0]
    published = [n.short for n in maillab.topo.by_role("vps") if maillab.topo.settings_host(n) is mx]
    count = next(c for c in range(2, len(hosts))
                 if set(published) - set(awx.slice_hosts(hosts, c, 1)) and len(awx.slice_hosts(hosts, c, 1)) > 1)
    cut = awx.slice_hosts(hosts, count, 1)
    assert cut[0] == mx.short  # "mx" sorts before every "vps"
    missing = sorted(set(published) - set(cut))
    before = sha(mx, "/etc/sendmail-fleet/mail-settings.json")
    # The zone snippets for the admin's DNS go to a volume the jobs keep (docs/AWX.md), here holding the last run's.
    zones = tmp_path / "zones"
    shutil.copytree(repo_root() / "reports" / "dns", zones)
    run = job(tmp_path, "site", awx.pared_inventory(inventory, cut), Path(paths.inventory).parent / "host_vars",
              "playbooks/site.yml", {**AWX_SLICE_VARS, "awx_job_template_name": "Mail hosts",
                                     "awx_workflow_job_name": "Mail hosts", "client_setup_zone_dir": str(zones)})
    text = " ".join(run.stdout.split())
    assert f"{mx.short} publishes the mail settings of {', '.join(missing)} (mail_host_client_setup_for), which " \
           f"are in other slices of the AWX sliced job 'Mail hosts'" in text, run.stdout[-3000:]
    assert f"(limit {','.join([mx.short, *published])})" in text and "Nothing was changed on mx." in text
    assert set(run.stats.get("failures", {})) == {mx.short}, run.stats
    assert not any(run.changed().values()), run.changed()
    assert set(run.stats["ok"]) == set(cut)
    assert sha(mx, "/etc/sendmail-fleet/mail-settings.json") == before
