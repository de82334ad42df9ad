"""Running as AWX runs a job (src/sendmail_fleet/awx.py): AWX's job slicing (hosts sorted by name, every n-th; the
inventory pared down to a slice's hosts) and ansible-runner's streaming, transmit | worker | process, with what a
playbook returns by set_stats coming back as the job's artifacts. Local hosts only (connection local); the lab test
runs the project's playbooks this way (tests/lab/test_c_awx_runner.py)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sendmail_fleet import awx

INVENTORY = {"all": {"vars": {"site": "lab"}, "children": {
    "fleet": {"hosts": {f"vps{i}": {"n": i} for i in (1, 2, 3, 10, 11)}, "vars": {"probe": "x"}},
    "remote_mx": {"hosts": {"mx": {}}}}}}

# A report in the shape of the project's: each host's row, set_stats'd on the controller, per slice.
REPORT = """
- hosts: fleet
  gather_facts: false
  connection: local
  tasks:
    - ansible.builtin.set_fact:
        row: {host: "{{ inventory_hostname }}", n: "{{ n }}"}
- hosts: localhost
  gather_facts: false
  connection: local
  tasks:
    - ansible.builtin.set_stats:
        data: {rows: "{{ groups['fleet'] | map('extract', hostvars, 'row') | list }}"}
        per_host: false
"""


def test_a_slice_is_every_nth_host_sorted_by_name_and_the_slices_cover_the_fleet_once():
    hosts = ["vps10", "vps2", "mx", "vps1", "vps11", "vps3"]
    cut = [awx.slice_hosts(hosts, 2, k) for k in (1, 2)]
    assert cut == [["mx", "vps10", "vps2"], ["vps1", "vps11", "vps3"]]
    assert sorted(cut[0] + cut[1]) == sorted(hosts)
    with pytest.raises(ValueError, match="slice 3 of 2"):
        awx.slice_hosts(hosts, 2, 3)


def test_a_pared_inventory_keeps_groups_and_variables_and_only_the_slice_hosts():
    pared = awx.pared_inventory(INVENTORY, ["vps1", "mx"])
    assert awx.inventory_hosts(pared) == {"vps1", "mx"}
    assert pared["all"]["vars"] == {"site": "lab"} and pared["all"]["children"]["fleet"]["vars"] == {"probe": "x"}
    assert pared["all"]["children"]["fleet"]["hosts"] == {"vps1": {"n": 1}}
    assert awx.inventory_hosts(INVENTORY) == {"vps1", "vps2", "vps3", "vps10", "vps11", "mx"}  # not changed


def local(inventory: dict) -> dict:
    """The inventory with every host run on this machine by this Python."""
    import sys
    inv = json.loads(json.dumps(inventory))
    inv["all"]["vars"]["ansible_python_interpreter"] = sys.executable
    return inv


def job(tmp: Path, name: str, inventory: dict, extravars: dict | None = None) -> awx.RunnerJob:
    private = awx.private_data_dir(tmp / name / "private", local(inventory), extravars=extravars)
    (private / "project" / "playbooks" / "report-test.yml").write_text(REPORT)
    return awx.run(private, "playbooks/report-test.yml", tmp / name / "work", tmp / name / "out", timeout=300)


def test_two_slices_streamed_through_ansible_runner_return_together_what_one_unsliced_job_returns(tmp_path):
    whole = job(tmp_path, "whole", INVENTORY)
    assert whole.rc == 0 and whole.status == "successful", whole.stdout[-2000:]
    hosts = sorted(awx.inventory_hosts(INVENTORY))
    with ThreadPoolExecutor(2) as pool:  # AWX runs the slices at once
        slices = list(pool.map(lambda k: job(tmp_path, f"slice{k}", awx.pared_inventory(
            INVENTORY, awx.slice_hosts(hosts, 2, k))), (1, 2)))
    assert all(s.rc == 0 for s in slices), [s.stdout[-1000:] for s in slices]
    union = sorted((r for s in slices for r in s.artifacts["rows"]), key=lambda r: r["host"])
    assert union == sorted(whole.artifacts["rows"], key=lambda r: r["host"])
    assert {r["host"] for r in union} == {"vps1", "vps2", "vps3", "vps10", "vps11"}
    assert any(e.get("event") == "runner_on_ok" for e in whole.events)


def test_a_failing_job_comes_back_failed_with_its_return_code(tmp_path):
    private = awx.private_data_dir(tmp_path / "private", local(INVENTORY))
    (private / "project" / "playbooks" / "fail.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  connection: local\n  tasks:\n"
        "    - ansible.builtin.fail:\n        msg: refused on purpose\n")
    failed = awx.run(private, "playbooks/fail.yml", tmp_path / "work", tmp_path / "out", timeout=300)
    assert failed.rc == 2 and failed.status == "failed" and "refused on purpose" in failed.stdout
