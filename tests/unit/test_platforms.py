"""Platforms are data: the mail_host role's list, checked by the platform_problems filter, and per-role vars files
chosen by facts (the pop3 role's dovecot per release)."""

from __future__ import annotations

import yaml

from sendmail_fleet import repo_root
from sendmail_fleet.collection import filter_plugin

pf = filter_plugin("platforms")
PLATFORMS = yaml.safe_load((repo_root() / "roles/mail_host/vars/main.yml").read_text())["__mail_host_platforms"]


def facts(name: str, major: str, manager: str = "systemd") -> dict:
    return {"distribution": name, "distribution_major_version": major, "distribution_version": f"{major}.1",
            "service_mgr": manager}


def test_the_supported_debian_releases_pass_and_others_are_named_with_what_is_supported():
    assert pf.platform_problems(facts("Debian", "12"), PLATFORMS) == ""
    assert pf.platform_problems(facts("Debian", "13"), PLATFORMS) == ""
    problem = pf.platform_problems(facts("Debian", "11"), PLATFORMS)
    assert problem.startswith("runs Debian 11.1 with systemd") and problem.endswith(
        "supports Debian 12 (bookworm) and 13 (trixie) with systemd")  # the lab's platform test reads this sentence
    assert "service manager" in pf.platform_problems(facts("Debian", "13", "sysvinit"), PLATFORMS)


def test_a_made_up_platform_entry_flows_through_the_platform_check():
    """Adding a platform is data: one entry here (and a vars file per role that differs, see README)."""
    more = {**PLATFORMS, "Ubuntu": {24: "noble"}}
    assert pf.platform_problems(facts("Ubuntu", "24"), more) == ""
    assert "Ubuntu 24 (noble)" in pf.platform_problems(facts("Ubuntu", "22"), more)
    assert pf.platform_problems(facts("Ubuntu", "24"), PLATFORMS) != ""


def test_each_supported_release_has_the_pop3_roles_platform_file_and_nothing_else_names_a_release():
    pop3 = repo_root() / "roles/pop3/vars"
    for name, versions in PLATFORMS.items():
        for major in versions:
            data = yaml.safe_load((pop3 / f"{name}-{major}.yml").read_text())
            assert set(data["__pop3_platform"]) == {"dovecot", "template"}
            assert (repo_root() / "roles/pop3/templates" / data["__pop3_platform"]["template"]).exists()
    assert "by_release" not in (pop3 / "main.yml").read_text()
