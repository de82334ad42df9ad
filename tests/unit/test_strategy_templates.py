"""The project's strategy lets the workers of one run share the Jinja code compiled from template text: a text
compiled once is loaded from the run's folder, not compiled again, renders exactly as before, and text that differs
in anything that shapes its code (other delimiters, another text) gets code of its own."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from ansible.errors import AnsibleTemplateError, AnsibleTemplateSyntaxError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from sendmail_fleet import playbook as ansible_playbook

MITOGEN = importlib.util.find_spec("ansible_mitogen") is not None
pytestmark = pytest.mark.skipif(not MITOGEN, reason="the fast extra is not installed (bootstrap installs it)")

VARS = {"a": 1, "b": "x", "names": ["c", "d"]}


def render(text: str) -> object:
    """The text rendered by a new Templar (a new environment each time, as each task's worker makes its own)."""
    return Templar(loader=DataLoader(), variables=VARS).template(trust_as_template(text))


def test_a_text_compiled_once_is_loaded_from_the_folder_and_not_compiled_again(strategy, tmp_path, monkeypatch):
    assert strategy.share_compiled_templates(str(tmp_path / "jinja"))
    text = "{{ a + 1 }}-{{ b | upper }}{% for n in names %} {{ n }}{% endfor %}"
    assert render(text) == "2-X c d"
    kept = sorted((tmp_path / "jinja").iterdir())
    assert len(kept) == 1

    def no_compiling(*_args, **_kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(jinja2.Environment, "_generate", no_compiling)
    assert render(text) == "2-X c d"  # loaded: Jinja's code generator was not asked
    assert sorted((tmp_path / "jinja").iterdir()) == kept
    with pytest.raises(AnsibleTemplateError, match="compiled again"):  # a new text is compiled: the check can fail
        render("{{ a + 2 }}")


def test_other_delimiters_get_code_of_their_own_and_render_as_before(strategy, tmp_path):
    plain = {"default": "{{ a }} [[ a ]]", "brackets": "#jinja2:variable_start_string:'[[', variable_end_string:']]'\n"
             "{{ a }} [[ a ]]"}
    before = {k: render(v) for k, v in plain.items()}
    assert strategy.share_compiled_templates(str(tmp_path / "jinja"))
    for _ in range(2):
        assert {k: render(v) for k, v in plain.items()} == before == {"default": "1 [[ a ]]", "brackets": "{{ a }} 1"}
    assert len(list((tmp_path / "jinja").iterdir())) == 2


def test_a_syntax_error_is_raised_as_before_and_nothing_is_kept(strategy, tmp_path):
    assert strategy.share_compiled_templates(str(tmp_path / "jinja"))
    with pytest.raises(AnsibleTemplateSyntaxError, match="unexpected 'end of print statement'"):
        render("{{ a + }}")
    assert list((tmp_path / "jinja").iterdir()) == []


PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    names: [c, d]
  tasks:
    - name: The same texts on every host, in two tasks
      ansible.builtin.set_fact:
        first: "{{ inventory_hostname | upper }}-{{ names | join(',') }}"
        second: "{{ '%s=%d' % (inventory_hostname, names | length) }}"
    - name: Again, and with other delimiters
      ansible.builtin.set_fact:
        third: "{{ first ~ ' ' ~ second }}"
        fourth: "{{ lookup('ansible.builtin.template', 'brackets.j2') }}"
    - name: What each host got
      ansible.builtin.debug:
        msg: "got={{ [first, second, third, fourth] | to_json }}=got"
"""


def rendered_by(tmp_path: Path, accelerated: bool) -> list[str]:
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    (tmp_path / "brackets.j2").write_text("#jinja2:variable_start_string:'[%', variable_end_string:'%]'\n"
                                          "[% inventory_hostname %] {{ kept }}\n")
    (tmp_path / "hosts.ini").write_text("".join(f"vps{n} ansible_connection=local ansible_python_interpreter="
                                                f"{sys.executable}\n" for n in (1, 2, 3)))
    env = {**ansible_playbook.ansible_env(accelerated=accelerated), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "local")}
    run = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.ini"), str(tmp_path / "pb.yml")],
                         env=env, capture_output=True, text=True, check=False, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert list((tmp_path / "local").iterdir()) == [], "the run's folder (and its compiled templates) must go"
    return sorted(part.split("=got", 1)[0] for part in run.stdout.split("got=")[1:])


def test_a_run_on_three_hosts_renders_what_ansible_cores_own_strategy_renders(tmp_path):
    (tmp_path / "core").mkdir()
    (tmp_path / "ours").mkdir()
    core, ours = rendered_by(tmp_path / "core", accelerated=False), rendered_by(tmp_path / "ours", accelerated=True)
    assert len(ours) == 3 and ours == core
    assert '"VPS2-c,d", "vps2=2", "VPS2-c,d vps2=2", "vps2 {{ kept }}\\n"' in ours[1]
