"""The real-mail checks start with no lab client holding a POP-before-SMTP grant (CI saw "relay, no auth: 250" on
vps2 when a test's POP3 login from client1 a few seconds before the demo still had its window open)."""

from types import SimpleNamespace

import pytest

from sendmail_fleet.lab import LabError
from sendmail_fleet.mailcheck import Checks
from sendmail_fleet.topology import build


class FakeLab:
    def __init__(self, exit_code: int = 0) -> None:
        self.topo, self.exit_code, self.ran = build(5), exit_code, []

    def sh(self, node, cmd: str) -> tuple[int, str]:
        self.ran.append((node.short, cmd))
        return self.exit_code, "sh: 1: pop-before-smtp: not found" if self.exit_code else ""


@pytest.mark.parametrize("short", ["vps1", "vps2", "vps4"])
def test_every_lab_clients_grant_is_revoked_where_the_variant_has_pop_before_smtp(short):
    lab = FakeLab()
    node = lab.topo.get(short)
    Checks(lab, node).start_without_grants()
    clients = [c.address for c in lab.topo.by_role("client")]
    assert len(clients) == 2
    assert lab.ran == [(short, f"pop-before-smtp revoke {a}") for a in clients]


@pytest.mark.parametrize("short", ["vps3", "vps5"])
def test_an_smtp_auth_only_host_has_no_grants_to_revoke_and_is_left_alone(short):
    lab = FakeLab()
    Checks(lab, lab.topo.get(short)).start_without_grants()
    assert lab.ran == []


def test_a_host_without_the_helper_stops_the_checks_with_a_reason_not_a_wrong_table():
    lab = FakeLab(exit_code=127)
    with pytest.raises(LabError, match=r"vps1: `pop-before-smtp revoke .*` failed \(exit 127\).*not found"):
        Checks(lab, lab.topo.get("vps1")).start_without_grants()


def test_the_revoke_runs_before_the_first_check_of_each_vps(monkeypatch):
    from sendmail_fleet import mailcheck

    order: list[str] = []
    monkeypatch.setattr(Checks, "start_without_grants", lambda self: order.append(f"revoke {self.vps.short}"))
    monkeypatch.setattr(Checks, "before_window", lambda self: [lambda: order.append(f"check {self.vps.short}")
                                                               or SimpleNamespace(check="c", seen="", passed=True)])
    monkeypatch.setattr(Checks, "window_expired", lambda self: SimpleNamespace(check="w", seen="", passed=True))
    monkeypatch.setattr(Checks, "tally", lambda self: "")
    mailcheck.run_all(FakeLab(), window=0)
    for short in ("vps1", "vps2", "vps3", "vps4", "vps5"):
        assert order.index(f"revoke {short}") < order.index(f"check {short}")
