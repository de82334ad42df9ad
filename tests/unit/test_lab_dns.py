"""The lab's mail hosts ask the lab DNS directly (sendmail_fleet.lab._use_lab_dns), with a stand-in container."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sendmail_fleet import lab
from sendmail_fleet.topology import build


class FakeContainer:
    name = "maillab-vps1"

    def __init__(self, resolv: str, fail: bool = False) -> None:
        self.resolv, self.fail, self.commands = resolv, fail, []

    def exec_run(self, argv: list[str]) -> SimpleNamespace:
        self.commands.append(argv)
        if argv == ["cat", "/etc/resolv.conf"]:
            return SimpleNamespace(exit_code=0, output=self.resolv.encode())
        if self.fail:
            return SimpleNamespace(exit_code=1, output=b"sh: cannot create /etc/resolv.conf: Read-only file system")
        return SimpleNamespace(exit_code=0, output=b"")


TOPO = build(2)
WANT = lab.LAB_RESOLV_CONF.format(dns=TOPO.dns.address)


def test_dockers_resolver_is_replaced_by_the_lab_dns_and_a_running_sendmail_restarts_itself():
    box = FakeContainer("nameserver 127.0.0.11\noptions ndots:0\n")
    lab._use_lab_dns(box, TOPO)
    script = box.commands[-1][-1]
    assert f"nameserver {TOPO.dns.address}" in script and "> /etc/resolv.conf" in script
    assert f'kill -HUP "$(head -n1 {lab.SENDMAIL_PID})"' in script  # sendmail's own restart, only if it runs


def test_a_host_that_already_asks_the_lab_dns_is_left_alone():
    box = FakeContainer(WANT)
    lab._use_lab_dns(box, TOPO)
    assert box.commands == [["cat", "/etc/resolv.conf"]]


def test_a_resolv_conf_that_cannot_be_written_is_an_error_naming_the_container():
    with pytest.raises(lab.LabError, match="maillab-vps1: cannot point /etc/resolv.conf at the lab DNS"):
        lab._use_lab_dns(FakeContainer("nameserver 127.0.0.11\n", fail=True), TOPO)
