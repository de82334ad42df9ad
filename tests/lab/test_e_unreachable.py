"""A host that goes away in the middle of its rollout batch: the batch counts it as failed, later batches are not
attempted and the report says why; when it is back, the next rollout finishes the job."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from sendmail_fleet import playbook as ansible_playbook
from sendmail_fleet import repo_root
from sendmail_fleet.lab import up
from sendmail_fleet.progress import Progress

from .conftest import playbook

HOSTS = ("vps1", "vps2", "vps3", "vps4")  # batches [1, 2, 1]: vps1 | vps2 vps3 | vps4
LOST = "vps3"
REPORT = repo_root() / "reports" / "rollout-auth-only.json"
FLEET = repo_root() / "reports" / "fleet-report.json"
ROLLOUT = ("-e", f"target={','.join(HOSTS)}", "-e", "rollout_force=true", "-e", '{"rollout_batches": [1, 2, 1]}')


@pytest.fixture(scope="module")
def lost_mid_batch(maillab, paths):
    # Every host on a variant with POP-before-SMTP again (earlier tests may have switched them), on purpose.
    back = playbook(paths, "-l", ",".join(HOSTS), "-e", "sendmail_variant=default",
                    "-e", "sendmail_allow_pop_before_smtp_again=true")
    assert back.returncode == 0, back.stdout[-3000:]
    argv = ansible_playbook.argv(paths.inventory, "rollout-auth-only.yml", *ROLLOUT)
    proc = subprocess.Popen(argv, env=ansible_playbook.ansible_env(accelerated=False), cwd=repo_root(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    killed = threading.Event()
    switching = batch2 = False
    for line in proc.stdout:
        lines.append(line)
        # vps3's batch has started and the switch is provisioning it (the mail_host role's first role): pull it.
        switching = switching or line.startswith("PLAY [Rollout | Switch")
        batch2 = batch2 or (switching and line.startswith(f"ok: [{LOST}]"))
        if batch2 and not killed.is_set() and line.startswith("TASK [tls :"):
            maillab.client.containers.get(maillab.topo.get(LOST).name).kill()
            killed.set()
    proc.wait(timeout=1800)
    yield {"rc": proc.returncode, "out": "".join(lines), "killed": killed.is_set(),
           "rows": {h["inventory_hostname"]: h for h in json.loads(REPORT.read_text())["hosts"]},
           "report": json.loads(REPORT.read_text())}
    up(maillab.topo, paths, Progress())  # start the lost host again, whatever a test did


def test_a_host_lost_mid_batch_fails_its_batch_and_later_batches_are_not_attempted(lost_mid_batch):
    run, rows = lost_mid_batch, lost_mid_batch["rows"]
    assert run["killed"], "the rollout never reached vps3's batch"
    assert run["rc"] != 0
    assert rows["vps1"]["rollout_result"] == "switched", rows["vps1"]
    assert rows["vps2"]["rollout_result"] == "switched", rows["vps2"]
    assert rows[LOST]["rollout_result"] == "unreachable" and rows[LOST]["rollout_after"] == "unknown", rows[LOST]
    assert rows["vps4"]["rollout_result"] == "not-attempted", rows["vps4"]
    why = rows["vps4"]["rollout_detail"]
    assert "batch vps2,vps3 failed 1/2 hosts (vps3: unreachable)" in why, why


def test_the_report_says_why_the_rollout_stopped(lost_mid_batch):
    report = lost_mid_batch["report"]
    assert report["halted"] is True and "vps3: unreachable" in report["halt_reason"]
    table = REPORT.with_suffix(".txt").read_text()
    assert "HALTED: batch vps2,vps3 failed 1/2 hosts" in table and "later batches were not attempted" in table
    assert "HALTED: batch vps2,vps3" in lost_mid_batch["out"]


def test_when_the_host_is_back_the_next_rollout_finishes_and_the_fleet_report_shows_no_drift(lost_mid_batch,
                                                                                            maillab, paths):
    up(maillab.topo, paths, Progress())
    # This time the rollout writes the hosts' variants into the inventory, so inventory and fleet agree.
    again = playbook(paths, *ROLLOUT, "-e", "rollout_write_inventory=true", name="rollout-auth-only.yml")
    assert again.returncode == 0, again.stdout[-4000:]
    rows = {h["inventory_hostname"]: h for h in json.loads(REPORT.read_text())["hosts"]}
    assert rows[LOST]["rollout_result"] == "switched" and rows["vps4"]["rollout_result"] == "switched", rows
    report = playbook(paths, "-e", "target=" + ",".join(HOSTS), name="fleet-report.yml")
    fleet = {h["host"]: h for h in json.loads(FLEET.read_text())["hosts"]}
    assert report.returncode == 0, {h: f["problems"] for h, f in fleet.items()}
    lost = fleet[LOST]
    assert lost["cf_matches_mc"] and lost["wanted"] == lost["live"] == lost["recorded"] == "default-auth-only", lost
    assert lost["services"]["sendmail"] == lost["services"]["dovecot"] == "running", lost
