"""Which Ansible the lab runs: Mitogen where it is installed (the `fast` extra), plain ansible-core on request."""

from __future__ import annotations

import importlib.util

import pytest

from sendmail_fleet import playbook

MITOGEN = importlib.util.find_spec("ansible_mitogen") is not None


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SENDMAIL_FLEET_ACCELERATOR", "ANSIBLE_STRATEGY", "ANSIBLE_STRATEGY_PLUGINS"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.skipif(not MITOGEN, reason="the fast extra is not installed (bootstrap installs it)")
def test_an_installed_mitogen_runs_the_lab_playbooks_with_its_strategy_unpinned():
    env = playbook.ansible_env()
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear_unpinned"
    ours, mitogens = (playbook.Path(p) for p in env["ANSIBLE_STRATEGY_PLUGINS"].split(playbook.os.pathsep))
    assert (ours / "mitogen_linear_unpinned.py").is_file() and (mitogens / "mitogen_linear.py").is_file()
    assert playbook.accelerator() == "mitogen"


@pytest.mark.skipif(not MITOGEN, reason="the fast extra is not installed (bootstrap installs it)")
def test_the_unpinned_strategy_leaves_cpu_placement_to_the_kernel_and_is_mitogens_linear_otherwise():
    import ansible_mitogen.affinity
    import ansible_mitogen.strategy
    from ansible.plugins.strategy.linear import StrategyModule as Linear

    from sendmail_fleet.collection import plugin

    pinning = ansible_mitogen.affinity.policy
    try:
        module = plugin("strategy", "mitogen_linear_unpinned")
        assert type(ansible_mitogen.affinity.policy) is ansible_mitogen.affinity.Policy  # the no-op policy
        assert issubclass(module.StrategyModule, ansible_mitogen.strategy.StrategyMixin)
        assert issubclass(module.StrategyModule, Linear)
    finally:
        ansible_mitogen.affinity.policy = pinning


def test_accelerator_none_and_accelerated_false_run_plain_ansible_core(monkeypatch: pytest.MonkeyPatch):
    assert "ANSIBLE_STRATEGY" not in playbook.ansible_env(accelerated=False)
    monkeypatch.setenv("SENDMAIL_FLEET_ACCELERATOR", "none")
    assert "ANSIBLE_STRATEGY" not in playbook.ansible_env()
    assert playbook.accelerator() == "none"


def test_a_strategy_the_user_chose_is_left_alone(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ANSIBLE_STRATEGY", "free")
    assert playbook.ansible_env()["ANSIBLE_STRATEGY"] == "free"


def test_an_unknown_accelerator_is_refused_naming_the_choices(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SENDMAIL_FLEET_ACCELERATOR", "turbo")
    with pytest.raises(SystemExit, match="SENDMAIL_FLEET_ACCELERATOR='turbo': must be one of mitogen, none"):
        playbook.ansible_env()


def test_plain_means_plain_even_where_the_environment_asks_for_mitogen(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ANSIBLE_STRATEGY", "mitogen_linear")
    assert playbook.ansible_env(accelerated=False)["ANSIBLE_STRATEGY"] == "linear"
