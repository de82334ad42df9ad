"""mail_host's package step: which packages go to apt, from the dpkg query's lines (the expression in
roles/mail_host/vars/main.yml, rendered by Ansible's own templating). The lab tests run it on hosts."""

from __future__ import annotations

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from sendmail_fleet import repo_root

WANTED = ["sendmail", "m4", "sasl2-bin", "fail2ban"]


def missing(lines: list[str]) -> list[str]:
    expr = yaml.safe_load((repo_root() / "roles/mail_host/vars/main.yml").read_text())["__mail_host_packages_missing"]
    templar = Templar(loader=DataLoader(), variables={
        "__mail_host_packages": WANTED, "__mail_host_packages_query": {"stdout_lines": lines}})
    return sorted(templar.template(trust_as_template(expr)))


def test_a_host_with_every_package_installed_needs_no_apt_run():
    assert missing(["sendmail\tii ", "m4\tii ", "sasl2-bin\tii ", "fail2ban\tii "]) == []


@pytest.mark.parametrize("lines, why", [
    (["sendmail\tii ", "m4\tii ", "sasl2-bin\tii ", "fail2ban\trc "], "removed, its config files kept"),
    (["sendmail\tii ", "m4\tii ", "sasl2-bin\tii ", "fail2ban\tun "], "known to dpkg, never installed"),
    (["sendmail\tii ", "m4\tii ", "sasl2-bin\tii "], "unknown to dpkg (the query exits 1 and names it on stderr)"),
    (["sendmail\tii ", "m4\tii ", "sasl2-bin\tii ", "fail2ban\tiU "], "unpacked, not configured"),
])
def test_a_package_that_is_not_fully_installed_goes_to_apt(lines, why):
    assert missing(lines) == ["fail2ban"], why


def test_without_the_query_every_package_goes_to_apt():
    assert missing([]) == sorted(WANTED)
