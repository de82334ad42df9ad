"""The rollout's batch-wide health check (roles/rollout/tasks/health_batch.yml) on a batch with nothing to check:
every host held by the readiness gate or already auth-only. It must skip cleanly; the CI rehearsal of 9573bb5 saw
it stop instead ("'item' is undefined"), because Ansible templates a task's loop before its block's condition and
the mailbox wait's loop read the verdicts that no probe had made."""

from __future__ import annotations

import subprocess
import sys

from sendmail_fleet import playbook as ansible_playbook

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Nothing left to check on this host (held, unchanged, or switched in an earlier phase)
      ansible.builtin.set_fact:
        __rollout_stage: done
      when: inventory_hostname == 'vps1'
    - name: The batch's health check
      ansible.builtin.include_role:
        name: sendmail_fleet.mail.rollout
        tasks_from: health_batch
      vars:
        __rollout_hc_stage: check
    - name: Nobody was checked
      ansible.builtin.assert:
        that: __rollout_hc_hosts == []
"""


def test_a_batch_with_no_host_to_check_skips_the_health_check_without_an_error(tmp_path):
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    (tmp_path / "hosts.ini").write_text(
        f"vps1 ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        f"vps2 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    run = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.ini"), str(tmp_path / "pb.yml")],
                         env=ansible_playbook.ansible_env(accelerated=False), capture_output=True, text=True,
                         check=False, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.stdout.count("failed=0") == 2, run.stdout[-3000:]
