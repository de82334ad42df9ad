"""Every mail domain answers postmaster (RFC 5321 section 4.5.1: a host must accept it) and abuse (RFC 2142), from
anyone on port 25, and their mail reaches root's mailbox (the sendmail role's sendmail_aliases). Debian's sendmail
leaves /etc/aliases empty where no other MTA wrote one: before the role kept these lines, postmaster got 550."""

from __future__ import annotations

import pytest

from sendmail_fleet.mailcheck import MailLab, message, token

from .conftest import TOPOLOGY, VPS, VPS_IDS

MX = TOPOLOGY.by_role("mx")[0]


@pytest.mark.parametrize("vps", VPS, ids=VPS_IDS)
def test_postmaster_and_abuse_of_the_domain_take_mail_from_a_stranger_and_root_gets_it(maillab: MailLab, vps):
    for name in ("postmaster", "abuse", "PostMaster"):
        tok = token()
        res = maillab.smtp("client2", vps, port=25, mail_from=MX.accounts[0].address, rcpt=[f"{name}@{vps.domain}"],
                           data=message(tok, "to the postmaster"))
        assert res.raw["ok"], f"{name}@{vps.domain}: {res.summary()}"
        assert maillab.wait_for_mail(vps, "/var/mail/root", tok), f"{name}@{vps.domain}: not in root's mailbox"
