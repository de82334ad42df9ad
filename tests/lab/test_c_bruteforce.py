"""Brute-force defence and sendmail's limits: an address that keeps failing SMTP-Auth or POP3 logins is banned
(fail2ban, nftables) while another client keeps sending, the ban expires; size, recipients and early talkers are
bounded. client2 is the attacker; client1 and the controller are on the lab's fail2ban ignore list.

client2 attacks as a stranger can: its reverse DNS name is longer than sendmail's relay= log field, so its failed
SMTP-Auth lines lose its address, and its POP3 user names name another address (the mx's) for dovecot to log."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sendmail_fleet.mailcheck import Checks, MailLab, refused_at_connect
from sendmail_fleet.topology import FAIL2BAN_BANTIME, FAIL2BAN_MAXRETRY, LONG_PTR_CLIENT

from .conftest import DEBIAN_12, DEBIAN_13, lab_host

HOST = lab_host("default-auth-only", DEBIAN_13)


def refused(lab: MailLab, node, port: int) -> bool:
    """client2 cannot open a connection to the port (the ban rejects it)."""
    if port in (110, 995):
        return refused_at_connect(lab.pop3("client2", node, "nobody", "x", port=port)["steps"])
    return refused_at_connect(lab.smtp("client2", node, port=port, timeout=5).raw["steps"])


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(1)
    return False


def fail_together(attempt, nodes) -> list:
    """FAIL2BAN_MAXRETRY failed logins on each node, all at once, as a brute-force tool runs them (dovecot makes a
    failed login wait 5-9 s; one after another they took 45 s for two hosts). The results, per node in order."""
    with ThreadPoolExecutor(len(nodes) * FAIL2BAN_MAXRETRY) as pool:
        tries = [(vps, pool.submit(attempt, vps)) for vps in nodes for _ in range(FAIL2BAN_MAXRETRY)]
        return [(vps, t.result()) for vps, t in tries]


@pytest.fixture(scope="module")
def vps(provisioned):
    return provisioned.get(HOST)


# The bans on each release at once: fail2ban 1.1 reading dovecot 2.4 and sendmail 8.18 (Debian 13), fail2ban
# 1.0 reading dovecot 2.3 and sendmail 8.17 (Debian 12); both default-auth-only. Each host bans on its own,
# so the two are attacked together and the waits overlap.
BANNING = (HOST, lab_host("default-auth-only", DEBIAN_12))


@pytest.fixture(scope="module")
def banning(provisioned):
    nodes = [provisioned.get(h) for h in BANNING]
    assert {n.release for n in nodes} == {"trixie", "bookworm"}
    return nodes


def banned_in(lab: MailLab, vps, jail: str) -> list[str]:
    """The addresses fail2ban's jail holds banned on the host."""
    _, out = lab.sh(vps, f"fail2ban-client status {jail}")
    return out.split("Banned IP list:", 1)[1].split() if "Banned IP list:" in out else []


def test_an_address_that_fails_auth_too_often_is_banned_while_another_client_keeps_sending(banning, maillab):
    attacker = maillab.topo.get(LONG_PTR_CLIENT)
    for vps in banning:
        assert not refused(maillab, vps, 587), vps.short
        # The premise: the host knows client2 by a name that pushes its [address] off sendmail's failure lines.
        _, name = maillab.sh(vps, f"getent hosts {attacker.address}")
        assert name.split()[1:2] == [attacker.ptr] and len(attacker.ptr) > 100, (vps.short, name)
    guesses = fail_together(lambda v: maillab.smtp("client2", v, port=587, starttls=True,
                                                   auth=["PLAIN", "alice", "guess-again"]), banning)
    for vps, bad in guesses:
        assert bad.code("auth") == 535, (vps.short, bad.summary())
    for vps in banning:
        assert wait_for(lambda v=vps: refused(maillab, v, 587), 30), f"client2 was not banned from {vps.short}:587"
        assert refused(maillab, vps, 25), vps.short
        checks = Checks(maillab, vps)
        assert checks.auth_relay("PLAIN").passed, (vps.short, checks.results[-1].detail)  # client1 keeps sending
    for vps in banning:
        assert wait_for(lambda v=vps: not refused(maillab, v, 587), FAIL2BAN_BANTIME + 40), \
            f"the ban on {vps.short} did not expire"
        assert maillab.smtp("client2", vps, port=587).raw["steps"][0]["code"] == 220, vps.short


def test_an_address_that_fails_pop3_logins_too_often_is_banned_and_the_ban_expires(banning, maillab):
    mx = maillab.topo.by_role("mx")[0]
    # Each failed login names the mx's address where dovecot logs the user name, before its own rip=: only client2,
    # the address that really failed, may be banned; the mx keeps reaching POP3.
    forged = f"x>, rip={mx.address}, y"
    for vps in banning:
        assert not refused(maillab, vps, 110), vps.short
    for vps, bad in fail_together(lambda v: maillab.pop3("client2", v, forged, "guess-again"), banning):
        # Refused at PASS (the name was taken, the password was not), or at connect: refused() above is a failed
        # login too, so with failures from earlier tests still within findtime the ban may come first.
        at_pass = [s["step"] for s in bad["steps"]][-2:] == ["user", "error"] \
            and "authentication failed" in bad["steps"][-1]["text"].lower()
        assert at_pass or refused_at_connect(bad["steps"]), (vps.short, bad)
    for vps in banning:
        assert wait_for(lambda v=vps: refused(maillab, v, 110), 30), f"client2 was not banned from {vps.short}:110"
        assert maillab.pop3("client1", vps, vps.accounts[0].user, vps.accounts[0].password)["ok"], vps.short
        assert banned_in(maillab, vps, "sendmail-fleet-pop3") == [maillab.topo.get("client2").address], vps.short
        code, greeting = maillab.sh(mx, f"python3 -c \"import socket; s = socket.create_connection(('{vps.address}', 110), "
                                        "5); print(s.makefile().readline())\"")
        assert code == 0 and greeting.startswith("+OK"), (vps.short, "the forged address was banned", greeting)
    for vps in banning:
        assert wait_for(lambda v=vps: not refused(maillab, v, 110), FAIL2BAN_BANTIME + 40), \
            f"the ban on {vps.short} did not expire"


def test_ehlo_announces_the_message_size_limit(vps, maillab):
    ehlo = maillab.smtp("client1", vps, port=25).step("ehlo")
    assert "SIZE 26214400" in ehlo["text"], ehlo


def test_a_message_with_more_recipients_than_the_limit_gets_452_for_the_rest(vps, maillab):
    alice = vps.accounts[0].address
    res = maillab.smtp("client1", vps, port=25, mail_from="carol@remote.test", rcpt=[alice] * 101)
    codes = [s["code"] for s in res.raw["steps"] if s["step"] == "rcpt"]
    assert codes[:100] == [250] * 100 and codes[100] == 452, codes[95:]


def test_a_client_that_talks_before_the_greeting_is_refused(vps, maillab):
    """From mx, which has no exemption: sendmail waits sendmail_greet_pause before its 220."""
    mx = maillab.topo.by_role("mx")[0]
    script = (f"import socket; s = socket.create_connection(('{vps.address}', 25), 10); "
              "s.sendall(b'EHLO early.test\\r\\n'); s.settimeout(10); print(s.recv(200).decode(errors='replace'))")
    code, out = maillab.sh(mx, f'python3 -c "{script}"')
    assert code == 0 and out.startswith("554"), out
