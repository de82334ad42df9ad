"""CPU accounting (sendmail_fleet.cpu, benchmarks/common.cpu_used): /proc/stat's busy time is user, nice, system,
irq, softirq and steal, never idle or iowait; what a child process burns counts as the controller's and as the
machine's, so a result can say the least wall time its work could take on this machine."""

from __future__ import annotations

import os
import subprocess
import sys

from sendmail_fleet import repo_root
from sendmail_fleet.cpu import busy_between, busy_share, machine_cpu

sys.path.insert(0, str(repo_root() / "benchmarks"))
from common import cpu_used  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def stat(tmp_path, user, nice, system, idle, iowait, irq, softirq, steal):
    path = tmp_path / f"stat-{user}-{idle}"
    path.write_text(f"cpu  {user} {nice} {system} {idle} {iowait} {irq} {softirq} {steal} 7 9\ncpu0 1 2 3 4\n")
    return path


def test_busy_is_every_field_but_idle_and_iowait_and_guest_time_is_not_counted_twice(tmp_path):
    busy, total = machine_cpu(stat(tmp_path, 100, 10, 50, 800, 40, 5, 3, 2))
    assert (busy * TICK, total * TICK) == (170, 1010)


def test_the_busy_share_between_two_readings_is_what_the_cores_did_meanwhile(tmp_path):
    before = machine_cpu(stat(tmp_path, 100, 0, 0, 100, 0, 0, 0, 0))
    after = machine_cpu(stat(tmp_path, 250, 0, 50, 150, 50, 0, 0, 0))  # 200 busy, 100 idle or waiting
    assert round(busy_share(before, after), 3) == round(200 / 300, 3)
    assert busy_share(after, after) == 0


BURN = ("import resource\n"
        "while sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) < 0.6:\n"
        "    pass\n")


def test_a_child_that_burns_cpu_is_counted_for_the_controller_and_for_the_machine():
    with cpu_used() as used:
        subprocess.run([sys.executable, "-c", BURN], check=True)
    (cpu,) = used
    assert cpu.controller >= 0.6, cpu
    # machine-wide busy time comes in ticks (1/100 s) and includes everything else running meanwhile
    assert cpu.machine >= 0.5, cpu


def test_a_block_that_only_sleeps_uses_no_controller_cpu():
    with cpu_used() as used:
        subprocess.run(["sleep", "0.3"], check=True)
    (cpu,) = used
    assert cpu.controller < 0.1, cpu


def test_a_stretch_gets_the_busy_seconds_between_its_ends_read_on_straight_lines_between_samples():
    samples = [(100.0, 10.0), (101.0, 12.0), (102.0, 12.0), (103.0, 15.0)]
    assert busy_between(samples, 100.0, 103.0) == 5.0
    assert busy_between(samples, 100.5, 101.0) == 1.0  # half of the first second's 2
    assert busy_between(samples, 101.0, 102.0) == 0.0  # idle second
    assert busy_between(samples, 102.5, 110.0) == 1.5  # after the last sample nothing more is counted
    assert busy_between(samples, 90.0, 100.0) == 0.0
