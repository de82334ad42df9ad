"""The collection's template lookup renders exactly what ansible.builtin.template's lookup renders (the same search
path in a role's templates/, template_vars, other delimiters, the template_* variables), while the task's variables
reach Ansible's code as a mapping whose deep copy is one level deep, the copy the template action makes."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

from sendmail_fleet import playbook as ansible_playbook
from sendmail_fleet.collection import plugin

TEMPLATE = """\
host={{ inventory_hostname }} who={{ who }} limit={{ limits.daily }}
{% for name in names %}- {{ name }}
{% endfor %}path={{ template_path | basename }} [% who %]
"""

ROLE_TASKS = """\
- name: Both lookups, with template_vars and the role's templates/ on the search path
  ansible.builtin.set_fact:
    rendered:
      builtin: "{{ lookup('ansible.builtin.template', 'probe.j2', template_vars={'who': 'carol'}) }}"
      ours: "{{ lookup('sendmail_fleet.mail.template', 'probe.j2', template_vars={'who': 'carol'}) }}"
      builtin_brackets: "{{ lookup('ansible.builtin.template', 'probe.j2', variable_start_string='[%',
                            variable_end_string='%]', template_vars={'who': 'dave'}) }}"
      ours_brackets: "{{ lookup('sendmail_fleet.mail.template', 'probe.j2', variable_start_string='[%',
                         variable_end_string='%]', template_vars={'who': 'dave'}) }}"
      template_path_after: "{{ template_path | default('undefined') }}"
      who_after: "{{ who }}"

- name: The results, for the test to read
  ansible.builtin.copy:
    content: "{{ rendered | to_json }}"
    dest: "{{ playbook_dir }}/rendered.json"
    mode: "0644"
"""

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  vars:
    who: alice
    names: [a, b]
    limits: {daily: 200}
  roles: [probe]
"""


def render_both(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "roles" / "probe" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "probe" / "templates").mkdir()
    (tmp_path / "roles" / "probe" / "tasks" / "main.yml").write_text(ROLE_TASKS)
    (tmp_path / "roles" / "probe" / "templates" / "probe.j2").write_text(TEMPLATE)
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    (tmp_path / "hosts.ini").write_text(f"vps1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    env = {**ansible_playbook.ansible_env(), "ANSIBLE_ROLES_PATH": str(tmp_path / "roles")}
    run = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.ini"), str(tmp_path / "pb.yml")],
                         env=env, capture_output=True, text=True, check=False, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return json.loads((tmp_path / "rendered.json").read_text())


def test_the_collections_template_lookup_renders_what_ansibles_own_renders(tmp_path):
    rendered = render_both(tmp_path)
    assert rendered["ours"] == rendered["builtin"]
    assert rendered["ours"] == "host=vps1 who=carol limit=200\n- a\n- b\npath=probe.j2 [% who %]\n"
    assert rendered["ours_brackets"] == rendered["builtin_brackets"]
    assert "who=dave" not in rendered["ours_brackets"] and rendered["ours_brackets"].endswith("dave\n")


def test_template_vars_and_the_template_variables_stay_out_of_the_tasks_variables(tmp_path):
    rendered = render_both(tmp_path)
    assert rendered["who_after"] == "alice"
    assert rendered["template_path_after"] == "undefined"


def test_ansibles_deep_copy_of_the_variables_is_one_level_deep_and_leaves_them_as_they_were():
    lookup = plugin("lookup", "template")
    facts = {"ansible_facts": {"default_ipv4": {"address": "172.29.25.21"}}}
    variables = {"facts": facts, "who": "alice"}
    handed = lookup.ShallowOnDeepcopy(variables)
    copied = copy.deepcopy(handed)  # what ansible.builtin.template's lookup does with them
    assert type(copied) is dict and copied == variables
    assert copied["facts"] is facts  # not copied again: the cost the lookup leaves out
    copied.update({"template_path": "/x.j2", "who": "carol"})
    assert variables == {"facts": facts, "who": "alice"} and dict(handed) == variables
