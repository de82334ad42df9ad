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
def test_an_installed_mitogen_runs_the_lab_playbooks_with_its_strategy():
    env = playbook.ansible_env()
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert (playbook.Path(env["ANSIBLE_STRATEGY_PLUGINS"]) / "mitogen_linear.py").is_file()
    assert playbook.accelerator() == "mitogen"


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
