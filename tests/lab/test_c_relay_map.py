"""The POP-before-SMTP relay map fails closed: when it cannot be rebuilt (here: sendmail's map folder made
unwritable for makemap, as a full disk or a read-only file system would), a grant whose window has ended stops
relaying all the same, the host says so, and the fleet report names the host. Once makemap can write again, the next
expiry rebuilds the map and POP-before-SMTP works again."""

from __future__ import annotations

import json
import time

import pytest

from sendmail_fleet.mailcheck import Checks, MailLab
from sendmail_fleet.topology import POP_BEFORE_SMTP_WINDOW

from .conftest import lab_host, playbook

HOST = lab_host("default")  # POP-before-SMTP or SMTP-Auth
ENTRIES = "/var/lib/pop-before-smtp/clients"


def relay_code(lab: MailLab, node) -> int | None:
    carol = lab.topo.get("mx").accounts[0]
    return lab.smtp("client1", node, port=25, mail_from=node.accounts[0].address, rcpt=[carol.address]).code("rcpt")


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


@pytest.fixture
def vps(provisioned, maillab):
    node = provisioned.get(HOST)
    Checks(maillab, node).start_without_grants()
    yield node
    maillab.sh(node, "chmod 2755 /etc/mail")  # as the test found it, whatever failed


def test_an_expired_grant_stops_relaying_when_the_map_cannot_be_rebuilt_and_the_fleet_report_names_the_host(
        vps, maillab, paths, tmp_path):
    client1 = maillab.topo.get("client1").address
    assert maillab.pop3("client1", vps, vps.accounts[0].user, vps.accounts[0].password)["ok"]
    assert relay_code(maillab, vps) == 250  # the POP3 login opened relay for client1
    code, out = maillab.sh(vps, "chmod 0555 /etc/mail")  # makemap (run as smmta) can no longer write the map
    assert code == 0, out
    # The window ends (the entry is dated back past it, as if the time had passed); the expiry timer (every 5 s in
    # the lab) must rebuild the map without client1, and cannot.
    past = time.time() - POP_BEFORE_SMTP_WINDOW - 60
    code, out = maillab.sh(vps, f"sed -i 's/^{client1}\\t[0-9.]*\\t/{client1}\\t{past:.3f}\\t/' {ENTRIES}")
    assert code == 0, out
    wait_until(lambda: relay_code(maillab, vps) == 550, 30, "the expired grant still relays: the map failed open")
    _, status = maillab.sh(vps, "pop-before-smtp status --json")
    state = json.loads(status)
    assert state["map"] == "failed" and state["map_removed"] is True, state
    _, log = maillab.sh(vps, "journalctl -t pop-before-smtp -p err --since -2min -o cat --no-pager")
    assert "could not be rebuilt" in log, log

    report = tmp_path / "fleet.json"
    run = playbook(paths, "-e", f"target={HOST}", "-e", f"mail_host_report_file={report}", name="fleet-report.yml")
    assert run.returncode != 0, "the fleet report must fail on a relay map that failed closed"
    row = {h["host"]: h for h in json.loads(report.read_text())["hosts"]}[HOST]
    assert any("relay map failed closed" in p for p in row["problems"]), row["problems"]
    assert f"DRIFT on 1 of 1 hosts: {HOST}" in run.stdout

    maillab.sh(vps, "chmod 2755 /etc/mail")  # room again: the next expiry rebuilds the map and the note goes
    wait_until(lambda: json.loads(maillab.sh(vps, "pop-before-smtp status --json")[1])["map"] == "ok", 30,
               "the map was not rebuilt once makemap could write again")
    assert relay_code(maillab, vps) == 550  # client1's window is over: the rebuilt map does not hold it
    assert maillab.pop3("client1", vps, vps.accounts[0].user, vps.accounts[0].password)["ok"]
    wait_until(lambda: relay_code(maillab, vps) == 250, 10, "a new POP3 login does not open relay again")
    maillab.sh(vps, f"pop-before-smtp revoke {client1}")
