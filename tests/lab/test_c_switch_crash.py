"""A switch that outlives its controller, a half-finished switch repaired by the next run, and the fleet report
that tells what each host runs against what the inventory asks for."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sendmail_fleet import playbook as ansible_playbook
from sendmail_fleet import repo_root
from sendmail_fleet.mailcheck import Checks

from .conftest import lab_host, playbook, recap

VPS = lab_host("default-procmail-lda-auth-only", "trixie")  # no other lab test depends on its state
STOPPED = lab_host("default-procmail-lda", "trixie")  # its dovecot is stopped for the fleet report
REPORT = repo_root() / "reports" / "fleet-report.json"
SWITCH_UNIT = "sendmail-fleet-switch"
# Set by the last test once its site.yml has repaired both hosts: the module's teardown then has nothing to put back.
PUT_BACK = {"done": False}


def until(condition, timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def live_state(maillab, node) -> dict:
    code, out = maillab.sh(node, "/usr/local/lib/sendmail-fleet/sendmail-switch check '{}'")
    assert code == 0, out
    return json.loads(out)


def fleet_report(paths, *hosts: str) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    """The fleet report as an admin runs it (into the checkout's reports/), on `hosts` or on the whole fleet."""
    run = playbook(paths, *(("-e", f"target={','.join(hosts)}") if hosts else ()), name="fleet-report.yml")
    return run, {h["host"]: h for h in json.loads(REPORT.read_text())["hosts"]}


def kill_ssh_masters(control_dir: Path) -> list[int]:
    """SIGKILL the SSH master connections whose sockets are in control_dir (this test's controller's own: ControlPersist
    runs them in sessions of their own, so they are not its children), by the pid each master reports."""
    killed = []
    for sock in control_dir.iterdir():
        check = subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "check", "lab-host"], capture_output=True,
                               text=True, timeout=10)
        found = re.search(r"Master running \(pid=(\d+)\)", check.stdout + check.stderr)
        if found:
            os.kill(int(found.group(1)), signal.SIGKILL)
            killed.append(int(found.group(1)))
    return killed


def test_killing_the_controller_mid_switch_leaves_the_host_serving_its_new_config(provisioned, maillab, paths,
                                                                                 tmp_path):
    node = provisioned.get(VPS)
    # A real change (one .mc value), so site.yml switches the live config on the host.
    argv = ansible_playbook.argv(paths.inventory, "site.yml", "-l", VPS, "-e", "sendmail_max_daemon_children=39")
    control_dir = tmp_path / "cp"  # the controller's SSH masters keep their sockets here, apart from anyone else's
    control_dir.mkdir()
    env = {**ansible_playbook.ansible_env(accelerated=False), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir)}
    controller = subprocess.Popen(argv, env=env, cwd=repo_root(), start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        caught = until(lambda: maillab.sh(node, f"systemctl is-active {SWITCH_UNIT}")[1].strip() == "active", 600)
    finally:
        os.killpg(controller.pid, signal.SIGKILL)  # ansible-playbook and its workers: the session it started
        controller.wait()
        # and its SSH master connections: the remote session ends, as when the controller's machine goes away
        masters = kill_ssh_masters(control_dir)
    assert masters, "the controller held no SSH master connection to kill"
    assert caught, "the switch never started on the host"
    assert until(lambda: maillab.sh(node, f"systemctl is-active {SWITCH_UNIT}")[1].strip() != "active", 120)
    state = live_state(maillab, node)
    assert state["unfinished"] is None and state["cf_matches_mc"], state
    assert not state["daemon_older_than_cf"], state
    assert "confMAX_DAEMON_CHILDREN', `39'" in maillab.sh(node, "cat /etc/mail/sendmail.mc")[1]
    assert Checks(maillab, node).local_delivery().passed
    # The next run (the inventory's value again) changes the config back like any other change.
    again = playbook(paths, "-l", VPS)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "confMAX_DAEMON_CHILDREN', `40'" in maillab.sh(node, "cat /etc/mail/sendmail.mc")[1]


def test_a_switch_that_died_on_the_host_half_way_is_reported_and_finished_by_the_next_run(provisioned, maillab,
                                                                                          paths):
    node = provisioned.get(VPS)
    # What a host crash between installing the files and restarting leaves: a journal whose process is gone,
    # a live .cf that is not what the .mc builds, and sendmail stopped.
    maillab.sh(node, "sed -i 's/^O MaxDaemonChildren=.*/O MaxDaemonChildren=7/' /etc/mail/sendmail.cf"
                     " && printf '{\"state\": \"restarting\", \"backup\": true, \"pid\": 4194000}'"
                     " > /var/lib/sendmail-fleet/switch.json && systemctl stop sendmail")
    report, rows = fleet_report(paths, VPS)  # the whole fleet's report is the last test's
    assert report.returncode != 0 and set(rows) == {VPS}
    problems = " ".join(rows[VPS]["problems"])
    assert "a switch did not finish (restarting)" in problems and "sendmail is not running" in problems, problems
    assert "MaxDaemonChildren=7" in problems, problems
    run = playbook(paths, "-l", VPS)
    assert run.returncode == 0, run.stdout[-3000:]
    state = live_state(maillab, node)
    assert state["unfinished"] is None and state["cf_matches_mc"] and not state["daemon_older_than_cf"], state
    assert Checks(maillab, node).local_delivery().passed


def test_a_cf_installed_by_hand_is_not_left_running_on_an_old_daemon(provisioned, maillab, paths):
    node = provisioned.get(VPS)
    # The same .cf, installed anew after the daemon started (cp, not a restart): the role restarts sendmail.
    maillab.sh(node, "cp /etc/mail/sendmail.cf /tmp/cf && sleep 1 && cp /tmp/cf /etc/mail/sendmail.cf")
    assert live_state(maillab, node)["daemon_older_than_cf"]
    check = playbook(paths, "-l", VPS, "--check")
    assert "the running daemon started before the live sendmail.cf was installed" in check.stdout
    run = playbook(paths, "-l", VPS)
    assert run.returncode == 0 and recap(run.stdout)[VPS]["changed"] >= 1, run.stdout[-3000:]
    assert not live_state(maillab, node)["daemon_older_than_cf"]


def test_the_fleet_report_flags_a_hand_edited_cf_and_a_stopped_dovecot_and_changes_nothing(provisioned, maillab,
                                                                                          paths):
    edited, stopped = provisioned.get(VPS), provisioned.get(STOPPED)
    maillab.sh(edited, "sed -i 's/^O MaxRecipientsPerMessage=.*/O MaxRecipientsPerMessage=5000/' /etc/mail/sendmail.cf")
    maillab.sh(stopped, "systemctl stop dovecot")
    run, rows = fleet_report(paths)
    assert run.returncode != 0
    assert all(c["changed"] == 0 for c in recap(run.stdout).values()), recap(run.stdout)
    assert rows[VPS]["cf_matches_mc"] is False
    assert any("MaxRecipientsPerMessage=5000" in p for p in rows[VPS]["problems"]), rows[VPS]
    assert rows[STOPPED]["services"]["dovecot"] != "running" and "dovecot is not running" in rows[STOPPED]["problems"]
    others = {h: r["problems"] for h, r in rows.items() if h not in (VPS, STOPPED)}
    assert all(p == [] for p in others.values()), others
    for row in rows.values():
        assert row["wanted"] == row["live"] == provisioned.get(row["host"]).variant, row
        assert row["cert_days_left"] > 30 and row["queue"] >= 0
    table = REPORT.with_suffix(".txt").read_text()
    assert table.split()[:4] == ["HOST", "WANTED", "RECORDED", "LIVE"] and "DRIFT on 2 of" in table
    # site.yml repairs both; then their report is clean and exits 0 (the other hosts' was clean above, and the
    # repair ran on these two only).
    fix = playbook(paths, "-l", f"{VPS},{STOPPED}")
    assert fix.returncode == 0, fix.stdout[-3000:]
    PUT_BACK["done"] = True
    run, rows = fleet_report(paths, VPS, STOPPED)
    assert run.returncode == 0, run.stdout[-3000:]
    assert set(rows) == {VPS, STOPPED} and all(r["problems"] == [] for r in rows.values()), rows


@pytest.fixture(scope="module", autouse=True)
def _lab_is_clean_afterwards(provisioned, paths):
    """Both hosts as site.yml makes them, whichever test stopped the module: a site.yml run on them unless the last
    test's repair already was one."""
    PUT_BACK["done"] = False
    yield
    if not PUT_BACK["done"]:
        assert playbook(paths, "-l", f"{VPS},{STOPPED}").returncode == 0
