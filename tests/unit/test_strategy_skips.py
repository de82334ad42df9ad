"""The project's strategy (mitogen_linear_unpinned) skips a task whose `when` is false without forking a worker, and
what a run prints, registers and counts is what ansible-core's own linear strategy gives."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sendmail_fleet import playbook as ansible_playbook

pytest.importorskip("ansible_mitogen", reason="the strategy needs Mitogen (the project's `fast` extra)")

HOSTS = ("vps1", "vps2", "vps3")

# Where each evaluation of a `when` ran: the filter notes its process and that process's parent.
NOTED_FILTER = '''
import os


def noted(value, path):
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {os.getppid()}\\n")
    return value


class FilterModule:
    def filters(self):
        return {"noted": noted}
'''

EVERY_KIND_OF_SKIP = """
- name: Skips
  hosts: all
  gather_facts: false
  vars:
    secret_mode: true
  handlers:
    - name: A handler that skips
      ansible.builtin.debug:
        msg: handler ran
      when: inventory_hostname == 'nowhere'
  tasks:
    - name: A false when
      ansible.builtin.debug:
        msg: never
      when: inventory_hostname == 'nowhere'
    - name: Registered while skipped
      ansible.builtin.command: /bin/false
      register: reg
      when: 1 == 2
    - name: What was registered
      ansible.builtin.debug:
        var: reg
    - name: Skipped after a skip
      ansible.builtin.debug:
        msg: never
      when: reg is not skipped
    - name: Templated no_log, skipped and registered
      ansible.builtin.debug:
        msg: s3cret
      no_log: "{{ secret_mode }}"
      register: reg_secret
      when: false
    - name: What the secret task registered
      ansible.builtin.debug:
        var: reg_secret
    - name: Runs on one host only and notifies
      ansible.builtin.debug:
        msg: "on {{ inventory_hostname }}"
      when: inventory_hostname == 'vps2'
      changed_when: true
      notify: A handler that skips
    - name: A block's when
      when: inventory_hostname != 'vps1'
      block:
        - name: In the block
          ansible.builtin.debug:
            msg: in block
        - name: In the block, skipped by its own when too
          ansible.builtin.debug:
            msg: never
          when: inventory_hostname == 'vps3'
    - name: A dynamic include that skips
      ansible.builtin.include_tasks: inc.yml
      when: inventory_hostname == 'vps3'
    - name: A static import with a when
      ansible.builtin.import_tasks: inc.yml
      when: inventory_hostname == 'vps1'
    - name: An undefined variable in a when
      ansible.builtin.debug:
        msg: never
      when: no_such_variable
      ignore_errors: true
    - name: A when that is an empty text (an error, or a deprecation where broken conditionals are allowed)
      ansible.builtin.debug:
        msg: never
      when: "''"
      ignore_errors: true
    - name: A loop with a when per item
      ansible.builtin.debug:
        msg: "{{ item }}"
      loop: [1, 2, 3]
      when: item == 2
    - name: Delegated and skipped
      ansible.builtin.debug:
        msg: never
      delegate_to: vps1
      when: inventory_hostname == 'vps2'
    - name: Once and skipped
      ansible.builtin.debug:
        msg: never
      run_once: true
      when: false
    - name: Magic variables in the when
      ansible.builtin.debug:
        msg: "{{ ansible_connection }}"
      when: ansible_connection != 'local' or ansible_search_path | length == 0
    - name: The handlers now
      ansible.builtin.meta: flush_handlers
    - name: Only in check mode
      ansible.builtin.debug: {msg: check}
      when: ansible_check_mode
    - name: Never in check mode, unless the task says so
      ansible.builtin.debug: {msg: real}
      check_mode: "{{ inventory_hostname == 'vps1' }}"
      when: not ansible_check_mode
    - name: Diff mode and verbosity
      ansible.builtin.debug: {msg: diff}
      when: ansible_diff_mode | bool and ansible_verbosity | int > 0
    - name: The play's hosts and addresses
      ansible.builtin.debug: {msg: paths}
      when: playbook_dir | length == 0 or ansible_play_hosts | length != 3 or ansible_host != inventory_hostname
    - name: A throttle that does not template, on a task that would skip (ansible-core stops the run, the last task)
      ansible.builtin.debug:
        msg: never
      throttle: "{{ no_such_throttle }}"
      when: false
"""

INCLUDED = """
- name: Included
  ansible.builtin.debug:
    msg: included
- name: Included, skipped
  ansible.builtin.debug:
    msg: never
  when: inventory_hostname != 'vps1'
"""


def project(tmp_path: Path, playbook: str) -> Path:
    (tmp_path / "pb.yml").write_text(playbook)
    (tmp_path / "inc.yml").write_text(INCLUDED)
    (tmp_path / "filter_plugins").mkdir()
    (tmp_path / "filter_plugins" / "noted.py").write_text(NOTED_FILTER)
    (tmp_path / "hosts.ini").write_text("".join(f"{h} ansible_connection=local ansible_python_interpreter="
                                                f"{sys.executable}\n" for h in HOSTS))
    return tmp_path


def run(where: Path, *args: str, ours: bool, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    run_env = {**ansible_playbook.ansible_env(accelerated=ours), "ANSIBLE_NOCOLOR": "1", **(env or {})}
    assert ("mitogen_linear_unpinned" in run_env.get("ANSIBLE_STRATEGY", "")) == ours
    return subprocess.run(["ansible-playbook", "-i", "hosts.ini", "pb.yml", *args], env=run_env, cwd=where,
                          capture_output=True, text=True, check=False, timeout=300)


def by_task(output: str) -> list[str]:
    """The output with each task's lines that begin a host's result (and Ansible's lines between them) sorted:
    hosts answer in the order their work ends, under either strategy."""
    sections = []
    for section in re.split(r"\n(?=TASK |RUNNING HANDLER |PLAY )", output):
        head, *parts = re.split(r"\n(?=\S)", section.strip())
        sections.append("\n".join([head, *sorted(p.rstrip() for p in parts if p.strip())]))
    return sections


def warned(stderr: str) -> list[str]:
    """What Ansible wrote to stderr, in order, without the deprecation of third-party strategies (the only line a
    run with the project's strategy adds) and the hint printed once after any deprecation."""
    return sorted(line for line in stderr.splitlines()
                  if "strategy plugins not included" not in line and "Deprecation warnings can be disabled" not in line)


def test_a_false_when_is_decided_in_the_controller_and_no_worker_is_forked_for_it(tmp_path):
    where = project(tmp_path, """
- hosts: all
  gather_facts: false
  tasks:
""" + "".join(f"""    - name: Skip {n}
      ansible.builtin.debug:
        msg: never
      when: inventory_hostname | noted(log) == 'nowhere'
""" for n in range(4)))
    for ours in (False, True):
        done = run(where, "-e", f"log={tmp_path}/{'ours' if ours else 'core'}.log", ours=ours)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert all(f"{h} " in done.stdout and "skipped=4" in done.stdout.split(f"\n{h} ", 1)[1].split("\n")[0]
                   for h in HOSTS), done.stdout[-1500:]
    core = (tmp_path / "core.log").read_text().split("\n")[:-1]
    ours_seen = (tmp_path / "ours.log").read_text().split("\n")[:-1]
    me = str(os.getpid())
    # ansible-core: each of the 12 evaluations in its own worker, a child of ansible-playbook (not of this test)
    assert len(core) == 12 and len({line.split()[0] for line in core}) == 12
    assert not any(line.split()[1] == me for line in core)
    # here: all 12 in ansible-playbook itself, the child of this test
    assert len(ours_seen) == 12 and {line.split()[1] for line in ours_seen} == {me}
    assert len({line.split()[0] for line in ours_seen}) == 1


def test_a_loop_or_delegate_to_still_decides_its_when_in_a_worker(tmp_path):
    log = tmp_path / "seen.log"
    where = project(tmp_path, f"""
- hosts: all
  gather_facts: false
  tasks:
    - name: A loop
      ansible.builtin.debug:
        msg: "{{{{ item }}}}"
      loop: [1, 2]
      when: item | noted('{log}') == 3
    - name: Delegated
      ansible.builtin.debug:
        msg: never
      delegate_to: vps1
      when: inventory_hostname | noted('{log}') == 'nowhere'
""")
    done = run(where, ours=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    seen = log.read_text().split("\n")[:-1]
    assert len(seen) == 3 * 2 + 3 and not any(line.split()[1] == str(os.getpid()) for line in seen)


@pytest.mark.parametrize("broken_conditionals", ["false", "true"])
def test_every_kind_of_skip_prints_registers_and_counts_as_with_ansible_cores_strategy(tmp_path, broken_conditionals):
    where = project(tmp_path, EVERY_KIND_OF_SKIP)
    env = {"ANSIBLE_ALLOW_BROKEN_CONDITIONALS": broken_conditionals}
    for args in (["-v"], ["-vvv"], ["-v", "--check", "--diff"]):
        core, ours = run(where, *args, ours=False, env=env), run(where, *args, ours=True, env=env)
        assert core.returncode == ours.returncode == 1, ours.stdout[-3000:] + ours.stderr[-2000:]
        assert by_task(ours.stdout) == by_task(core.stdout)
        # what Ansible warns about (the deprecation of a text as a conditional) is warned about here too
        assert warned(ours.stderr) == warned(core.stderr)
    # the comparison has something to compare
    assert "false_condition: 1 == 2" in ours.stdout and "skip_reason: Conditional result was False" in ours.stdout
    assert "RUNNING HANDLER [A handler that skips]" in ours.stdout and "s3cret" not in ours.stdout
    assert ("Conditional result (False) was derived from value of type 'str'" in ours.stderr) == (
        broken_conditionals == "true")
    assert "Failed to convert the throttle value to an integer: 'no_such_throttle' is undefined" in ours.stderr


def test_with_an_older_ansible_core_every_task_goes_to_a_worker(strategy, monkeypatch):
    """Where ansible-core 2.19's parts are missing (the strategy's import found none), nothing is decided here."""
    monkeypatch.setattr(strategy, "_RawTaskResult", None)
    assert strategy.skipped_here(None, None, None, {}, None) is None
