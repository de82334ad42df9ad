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
    - name: A throttle that does not template, on a task that would skip (ansible-core stops the run, the last task)
      ansible.builtin.debug:
        msg: never
      throttle: "{{ no_such_throttle }}"
      when: false
"""

CONTROLLER_ACTIONS = """
- name: Controller actions
  hosts: all
  gather_facts: false
  vars:
    secret_mode: true
  tasks:
    - name: An assert that holds, quietly
      ansible.builtin.assert:
        that: inventory_hostname in groups['all']
        quiet: true
    - name: An assert that holds, with its message
      ansible.builtin.assert:
        that: [1 == 1, "inventory_hostname is string"]
        success_msg: "fine on {{ inventory_hostname }}"
    - name: An assert that fails on one host, ignored and registered
      ansible.builtin.assert:
        that: inventory_hostname != 'vps2'
        fail_msg: "not on {{ inventory_hostname }}"
      ignore_errors: true
      register: failed_assert
    - name: What it registered
      ansible.builtin.debug:
        var: failed_assert
    - name: An assert on an undefined variable, ignored
      ansible.builtin.assert:
        that: no_such_variable == 1
      ignore_errors: true
    - name: An assert on a text (an error, or a deprecation where broken conditionals are allowed), ignored
      ansible.builtin.assert:
        that: "''"
      ignore_errors: true
    - name: A cacheable fact, changed on one host
      ansible.builtin.set_fact:
        fact_one: "{{ inventory_hostname | upper }}"
        cacheable: true
      changed_when: inventory_hostname == 'vps1'
    - name: A secret fact, registered
      ansible.builtin.set_fact:
        secret_fact: s3cret-{{ inventory_hostname }}
      no_log: "{{ secret_mode }}"
      register: secret_result
    - name: What the secret task registered, in a test
      ansible.builtin.debug:
        msg: "{{ secret_result is changed }} {{ secret_result is failed }}"
    - name: Another host's fact
      ansible.builtin.debug:
        msg: "{{ hostvars['vps1'].fact_one }} {{ fact_one }}"
    - name: A fact named like a magic variable (Ansible warns)
      ansible.builtin.set_fact:
        environment: x
    - name: A fact that fails where told, ignored
      ansible.builtin.set_fact:
        fact_two: 2
      failed_when: inventory_hostname == 'vps3'
      ignore_errors: true
    - name: An argument spec that holds
      ansible.builtin.validate_argument_spec:
        argument_spec:
          count: {type: int, required: true}
          mode: {type: str, choices: [a, b], default: a}
        provided_arguments:
          count: "{{ 3 }}"
    - name: An argument spec that fails, ignored
      ansible.builtin.validate_argument_spec:
        argument_spec:
          mode: {type: str, choices: [a, b]}
        provided_arguments:
          mode: c
      ignore_errors: true
    - name: A role whose argument spec ends the host it fails on
      ansible.builtin.import_role:
        name: checked
      vars:
        checked_count: "{{ 5 if inventory_hostname != 'vps3' else 'many' }}"
    - name: After
      ansible.builtin.debug:
        msg: "{{ fact_one }} {{ fact_two }}"
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
    (tmp_path / "roles" / "checked" / "meta").mkdir(parents=True)
    (tmp_path / "roles" / "checked" / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    short_description: checked\n    options:\n"
        "      checked_count: {type: int, required: true}\n")
    (tmp_path / "roles" / "checked" / "tasks").mkdir()
    (tmp_path / "roles" / "checked" / "tasks" / "main.yml").write_text(
        "- name: Checked\n  ansible.builtin.debug:\n    msg: '{{ checked_count }}'\n")
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
    """What Ansible wrote to stderr, sorted, without the deprecation of third-party strategies (the only line a
    run with the project's strategy adds) and the hint printed once after any deprecation."""
    return sorted(line for line in stderr.splitlines()
                  if "strategy plugins not included" not in line and "Deprecation warnings can be disabled" not in line)


def where_it_ran(tmp_path: Path, tasks: str, count: int) -> tuple[list[str], list[str]]:
    """Run `tasks` on the three hosts with ansible-core's strategy and with the project's; for each, the process and
    parent process of each of the `count` evaluations of the noted filter in them."""
    where = project(tmp_path, "- hosts: all\n  gather_facts: false\n  tasks:\n" + tasks)
    seen = []
    for ours in (False, True):
        log = tmp_path / f"{'ours' if ours else 'core'}.log"
        done = run(where, "-e", f"log={log}", ours=ours)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        seen.append(log.read_text().split("\n")[:-1])
        assert len(seen[-1]) == count, seen[-1]
    return seen[0], seen[1]


def in_workers(seen: list[str]) -> bool:
    """Each evaluation in a process of its own, a child of ansible-playbook (not of this test)."""
    return len({line.split()[0] for line in seen}) == len(seen) and not any(
        line.split()[1] == str(os.getpid()) for line in seen)


def in_ansible_playbook(seen: list[str]) -> bool:
    """Every evaluation in ansible-playbook itself, the child of this test."""
    return {line.split()[1] for line in seen} == {str(os.getpid())} and len({line.split()[0] for line in seen}) == 1


def test_a_false_when_is_decided_in_the_controller_and_no_worker_is_forked_for_it(tmp_path):
    core, ours = where_it_ran(tmp_path, "".join(f"""    - name: Skip {n}
      ansible.builtin.debug:
        msg: never
      when: inventory_hostname | noted(log) == 'nowhere'
""" for n in range(4)), count=12)
    assert in_workers(core) and in_ansible_playbook(ours)


def test_assert_set_fact_and_validate_argument_spec_run_in_the_controller_without_a_worker(tmp_path):
    core, ours = where_it_ran(tmp_path, """    - name: An assert
      ansible.builtin.assert:
        that: (inventory_hostname | noted(log)) in groups['all']
        quiet: true
    - name: A fact
      ansible.builtin.set_fact:
        fact: "{{ inventory_hostname | noted(log) }}"
    - name: An argument spec
      ansible.builtin.validate_argument_spec:
        argument_spec:
          name: {type: str, required: true}
        provided_arguments:
          name: "{{ inventory_hostname | noted(log) }}"
    - name: The fact is there
      ansible.builtin.debug:
        msg: "{{ fact }}"
      failed_when: fact != inventory_hostname
""", count=9)
    assert in_workers(core) and in_ansible_playbook(ours)


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
    for verbosity in ("-v", "-vvv"):
        core, ours = run(where, verbosity, ours=False, env=env), run(where, verbosity, ours=True, env=env)
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


def test_asserts_facts_and_argument_specs_print_register_warn_fail_and_count_as_with_ansible_cores_strategy(tmp_path):
    where = project(tmp_path, CONTROLLER_ACTIONS)
    for verbosity in ("-v", "-vvv"):
        core, ours = run(where, verbosity, ours=False), run(where, verbosity, ours=True)
        assert core.returncode == ours.returncode == 2, ours.stdout[-3000:] + ours.stderr[-2000:]
        assert by_task(ours.stdout) == by_task(core.stdout)
        assert warned(ours.stderr) == warned(core.stderr)
    # the comparison has something to compare
    assert "msg: fine on vps1" in ours.stdout and "msg: not on vps2" in ours.stdout
    assert "s3cret" not in ours.stdout and "VPS1 VPS2" in ours.stdout
    assert "checked_count" in ours.stdout and re.search(r"vps3 +: .*failed=1 ", ours.stdout), ours.stdout[-800:]
    assert "Found variable using reserved name 'environment'" in ours.stderr
