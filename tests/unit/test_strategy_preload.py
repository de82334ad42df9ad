"""The project's strategy (mitogen_linear_unpinned) loads the collection's filters, Ansible's filters and tests and the
template lookup in the controller's main process before the first task, so each task's worker, a fork of it, finds
them loaded instead of importing every filter file of the collection again. A lookup of this test reports which of
the collection's filter files a worker holds before any task names a filter."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from sendmail_fleet import playbook as ansible_playbook

MITOGEN = importlib.util.find_spec("ansible_mitogen") is not None

LOOKUP = '''
import sys

from ansible.plugins.lookup import LookupBase

PREFIX = "ansible_collections.sendmail_fleet.mail.plugins.filter."


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [",".join(sorted(m[len(PREFIX):] for m in sys.modules if m.startswith(PREFIX)))]
'''

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: The collection's filter files in this task's worker, before the task names any filter
      ansible.builtin.debug:
        msg: "held={{ lookup('held_filters') }}="
"""


def held_by_the_worker(tmp_path, accelerated: bool) -> set[str]:
    (tmp_path / "lookup_plugins").mkdir(exist_ok=True)
    (tmp_path / "lookup_plugins" / "held_filters.py").write_text(LOOKUP)
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    (tmp_path / "hosts.ini").write_text(f"vps1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    env = {**ansible_playbook.ansible_env(accelerated=accelerated),
           "ANSIBLE_LOOKUP_PLUGINS": str(tmp_path / "lookup_plugins")}
    run = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.ini"), str(tmp_path / "pb.yml")],
                         env=env, capture_output=True, text=True, check=False, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    held = run.stdout.split("held=", 1)[1].split("=", 1)[0]
    return {name for name in held.split(",") if name}


@pytest.mark.skipif(not MITOGEN, reason="the fast extra is not installed (bootstrap installs it)")
def test_with_the_projects_strategy_a_worker_holds_every_filter_file_of_the_collection_before_a_task_names_one(
        tmp_path):
    held = held_by_the_worker(tmp_path, accelerated=True)
    assert {"dkim", "variant_table", "client_site", "health_check"} <= held, held


def test_on_ansible_cores_own_strategy_the_worker_holds_none_so_the_check_above_can_fail(tmp_path):
    assert held_by_the_worker(tmp_path, accelerated=False) == set()


@pytest.mark.skipif(not MITOGEN, reason="the fast extra is not installed (bootstrap installs it)")
def test_a_plugin_that_cannot_be_loaded_ahead_is_named_and_the_run_goes_on(monkeypatch: pytest.MonkeyPatch):
    import ansible_mitogen.affinity
    from ansible.plugins.loader import filter_loader

    from sendmail_fleet.collection import load_module, plugin_dir

    pinning = ansible_mitogen.affinity.policy
    # a copy of its own, so the cached plugin() that test_accelerator loads still runs the strategy's module itself
    name = "sendmail_fleet_strategy_preload_test"
    try:
        module = load_module(plugin_dir("strategy") / "mitogen_linear_unpinned.py", name)
        monkeypatch.setattr(module, "PRELOAD", ((filter_loader, "nosuch_namespace.nosuch.nothing"),
                                                (filter_loader, "ansible.builtin.default")))
        assert module.preload() == ["nosuch_namespace.nosuch.nothing"]
    finally:
        ansible_mitogen.affinity.policy = pinning
        sys.modules.pop(name, None)
