"""The audit says how far back each host's mail logs reach, and the rollout's readiness gate holds a host whose logs
are too short to show that nobody relays by POP-before-SMTP (a rotated or volatile journal is not a quiet host)."""

from __future__ import annotations

import datetime as dt
import json

from .conftest import DEBIAN_12, DEBIAN_13, TOPOLOGY, lab_host, playbook

HOST = lab_host(feature="pop_before_smtp_grace")  # the rollout's next step, to SMTP-Auth only, is the gated one
AUDITED = (lab_host("default", DEBIAN_13), lab_host("default-auth-only", DEBIAN_12))


def test_the_audits_json_shows_each_hosts_log_span(provisioned, paths, tmp_path):
    report = tmp_path / "audit.json"
    run = playbook(paths, "-e", f"target={','.join(AUDITED)}", "-e", f"audit_report_file={report}",
                   name="audit-pop-before-smtp.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    hosts = {h["host"]: h for h in json.loads(report.read_text())["hosts"]}
    assert set(hosts) == {TOPOLOGY.get(h).fqdn for h in AUDITED}
    now = dt.datetime.now(dt.timezone.utc)
    for name, host in hosts.items():
        # The lab's hosts are new: their journal (which the audit reads on both releases) began a little while ago,
        # far later than the 30 days the audit asked for, and the audit says so.
        assert host["log_source"] == "journal", (name, host)
        start = dt.datetime.fromisoformat(host["log_from"])
        assert now - dt.timedelta(days=1) < start < now, (name, host["log_from"])
        assert 0 < host["log_span_days"] < 1 and host["log_shorter_than_asked"], (name, host)
        assert "the mail logs reach back only" in host["log_note"] and host["log_note"] in run.stdout


def test_the_readiness_gate_holds_a_host_whose_logs_reach_back_fewer_days_than_rollout_quiet_days(
        provisioned, paths, tmp_path, maillab):
    """No POP-before-SMTP relay is in the logs read (the audit starts now), so the users' gate lets the host pass;
    its logs reaching back less than rollout_quiet_days (14) must hold it all the same."""
    report = tmp_path / "rollout.json"
    live = maillab.sh(provisioned.get(HOST), "grep VERSIONID /etc/mail/sendmail.mc")[1]
    since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    run = playbook(paths, "-e", f"target={HOST}", "-e", f"audit_since={since}", "-e", f"rollout_report_file={report}",
                   name="rollout-auth-only.yml")
    assert run.returncode != 0, "a held host is not on SMTP-Auth only: the run must fail"
    row = {h["inventory_hostname"]: h for h in json.loads(report.read_text())["hosts"]}[HOST]
    assert row["rollout_result"] == "held" and row["rollout_after"] == row["rollout_before"], row
    assert f"the mail logs on {HOST} reach back only" in row["rollout_detail"], row["rollout_detail"]
    assert "rollout_quiet_days (14)" in row["rollout_detail"] and "rollout_force" in row["rollout_detail"]
    assert maillab.sh(provisioned.get(HOST), "grep VERSIONID /etc/mail/sendmail.mc")[1] == live  # nothing switched
