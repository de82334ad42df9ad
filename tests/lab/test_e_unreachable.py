"""A host that goes away in the middle of its rollout batch: the batch counts it as failed, later batches are not
attempted and the report says why; when it is back, the next rollout finishes the job.

The scenario itself (tests/lab/lost_host.py) runs on four Debian 12 hosts in a thread beside test_d's fleet rollout; these
tests wait for its record and check it."""

from __future__ import annotations

import pytest

from .lost_host import HOSTS, LOST


@pytest.fixture(scope="module")
def lost_mid_batch(lost_host_rollout):
    return lost_host_rollout.result(timeout=1800)


def test_a_host_lost_mid_batch_fails_its_batch_and_later_batches_are_not_attempted(lost_mid_batch):
    run, rows = lost_mid_batch, lost_mid_batch["rows"]
    first, second, last = HOSTS[0], HOSTS[1], HOSTS[3]
    assert run["killed"], f"the rollout never reached {LOST}'s batch"
    assert run["rc"] != 0
    assert rows[first]["rollout_result"] == "switched", rows[first]
    assert rows[second]["rollout_result"] == "switched", rows[second]
    assert rows[LOST]["rollout_result"] == "unreachable" and rows[LOST]["rollout_after"] == "unknown", rows[LOST]
    assert rows[last]["rollout_result"] == "not-attempted", rows[last]
    why = rows[last]["rollout_detail"]
    assert f"batch {second},{LOST} failed 1/2 hosts ({LOST}: unreachable)" in why, why


def test_the_report_says_why_the_rollout_stopped(lost_mid_batch):
    report, second = lost_mid_batch["report"], HOSTS[1]
    assert report["halted"] is True and f"{LOST}: unreachable" in report["halt_reason"]
    table = lost_mid_batch["table"]
    assert f"HALTED: batch {second},{LOST} failed 1/2 hosts" in table and "later batches were not attempted" in table
    assert f"HALTED: batch {second},{LOST}" in lost_mid_batch["out"]


def test_when_the_host_is_back_the_next_rollout_finishes_and_the_fleet_report_shows_no_drift(lost_mid_batch):
    again, rows = lost_mid_batch["again"], lost_mid_batch["again_rows"]
    assert again.returncode == 0, again.stdout[-4000:]
    assert rows[LOST]["rollout_result"] == "switched" and rows[HOSTS[3]]["rollout_result"] == "switched", rows
    fleet = lost_mid_batch["fleet_hosts"]
    assert lost_mid_batch["fleet"].returncode == 0, {h: f["problems"] for h, f in fleet.items()}
    lost = fleet[LOST]
    assert lost["cf_matches_mc"] and lost["wanted"] == lost["live"] == lost["recorded"] == "default-auth-only", lost
    assert lost["services"]["sendmail"] == lost["services"]["dovecot"] == "running", lost
