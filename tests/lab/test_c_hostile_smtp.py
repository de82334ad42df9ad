"""What a stranger on port 25 tries against every VPS, whatever its variant: the address tricks of the classic
open-relay tests (percent hack, bang paths, source routes, quoted local parts, IP literals, double @), and SMTP
smuggling (an end of DATA that is not CRLF . CRLF, or a NUL before it, followed by a second message).

client2 is the stranger: it has no POP-before-SMTP window and does not authenticate, so no variant may relay for it
(what "relay allowed by SMTP-Auth or POP-before-SMTP" means), and it may deliver to local mailboxes only through
messages whose end the server really saw. Every answer is counted: a trick answered with anything but a permanent
refusal fails, and so does a smuggled message in the mailbox."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from sendmail_fleet.mailcheck import MailLab, Smtp, message, token

from .conftest import TOPOLOGY, VPS, VPS_IDS, at_once

MX = TOPOLOGY.by_role("mx")[0]
STRANGER = "client2"


def relay_tricks(vps) -> list[str]:
    """Recipient addresses that mean the remote mailbox (carol@remote.test on the mx), written so that a server
    which checks relaying on the wrong part of the address would pass them on."""
    user, remote, mine, ip = MX.accounts[0].user, MX.domain, vps.domain, vps.address
    return [
        f"{user}@{remote}", f"{user}@{remote.upper()}", f"{user}@{remote}.", f"{user}@{MX.fqdn}",
        f"{user}@[{MX.address}]", f"{user}@[IPv6:::ffff:{MX.address}]", f"{user}@{mine}.{remote}",
        f"{user}%{remote}@{mine}", f"{user}%{remote}@{vps.fqdn}", f"{user}%{remote}@[{ip}]", f"{user}%{remote}",
        f"{user}%{remote}@localhost", f'"{user}@{remote}"', f'"{user}@{remote}"@{mine}', f'"{user}%{remote}"@{mine}',
        f"{user}@{remote}@{mine}", f"@{mine}:{user}@{remote}", f"@[{ip}]:{user}@{remote}",
        f"{remote}!{user}", f"{remote}!{user}@{mine}", f"{remote}!{user}@[{ip}]", f"{remote}!{user}@localhost",
    ]


# The senders relay tests use: the null sender (a bounce), one of the VPS's own mailboxes (forged), a remote one.
SENDERS = ("", "alice@{domain}", f"{MX.accounts[0].user}@{MX.domain}")


@pytest.fixture(scope="module")
def trick_answers(maillab: MailLab) -> dict[tuple[str, str], tuple[list[str], Smtp, str]]:
    """Every VPS, every sender, all tricks in one transaction each: (vps, sender) -> (tricks, what client2 saw,
    the token of the message it would have sent). All at once (sendmail slows a client after 3 refused
    recipients, about 1 s for each further one)."""
    jobs = [(vps, sender.format(domain=vps.domain)) for vps in VPS for sender in SENDERS]

    def attempt(vps, sender: str) -> tuple[list[str], Smtp, str]:
        tricks, tok = relay_tricks(vps), token()
        return tricks, maillab.smtp(STRANGER, vps, port=25, mail_from=sender, rcpt=tricks,
                                    data=message(tok, "relay trick"), timeout=60), tok

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {(vps.short, sender): pool.submit(attempt, vps, sender) for vps, sender in jobs}
        return {key: f.result() for key, f in futures.items()}


@pytest.mark.parametrize("vps", VPS, ids=VPS_IDS)
def test_every_classic_relay_address_from_a_stranger_is_refused_with_550_or_553_and_nothing_reaches_the_mx(
        maillab: MailLab, trick_answers, vps):
    for sender in SENDERS:
        sender = sender.format(domain=vps.domain)
        tricks, seen, tok = trick_answers[(vps.short, sender)]
        assert seen.code("mail") == 250, (vps.short, sender, seen.summary())
        answers = [s for s in seen.raw["steps"] if s["step"] == "rcpt"]
        assert len(answers) == len(tricks), (vps.short, sender, seen.summary())  # every trick was answered
        # 550 5.7.1: relaying denied; 553 5.1.3: an address sendmail will not route (a route, a second @).
        let_through = [(rcpt, a["code"], a["text"]) for rcpt, a in zip(tricks, answers, strict=True)
                       if not (a["code"] == 550 and "5.7.1" in a["text"] or a["code"] == 553 and "5.1.3" in a["text"])]
        assert not let_through, f"{vps.short} ({vps.variant}) from <{sender}>: {let_through}"
        assert not maillab.has_mail(MX, f"/var/mail/{MX.accounts[0].user}", tok), (vps.short, sender)


# A dialogue on a raw socket (smtplib would mend the line ends): MAIL, RCPT, DATA, then one write of a message
# whose end is SEQUENCE, a second whole transaction, and QUIT; prints every reply after DATA's 354, as JSON.
SMUGGLER = r"""
import json, socket, sys
server, rcpt, seq, tok = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), sys.argv[4]
s = socket.create_connection((server, 25), timeout=30)
f = s.makefile("rb")
def reply():
    lines = [f.readline()]
    while lines[-1][3:4] == b"-":
        lines.append(f.readline())
    return b" ".join(l.strip() for l in lines).decode(errors="replace")
reply()
for cmd in ("EHLO smuggler.example", "MAIL FROM:<outer@remote.test>", f"RCPT TO:<{rcpt}>", "DATA"):
    s.sendall(cmd.encode() + b"\r\n")
    if (r := reply())[:1] not in ("2", "3"):
        print(json.dumps({"setup": r}))
        sys.exit()
s.sendall(f"Subject: outer {tok}\r\n\r\nouter {tok}".encode() + seq
          + f"MAIL FROM:<ceo@remote.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\nSubject: smuggled {tok}\r\n\r\n"
            f"smuggled {tok}\r\n.\r\nQUIT\r\n".encode())
out = []
while (r := reply()):
    out.append(r)
print(json.dumps({"replies": out}))
"""

# Ends of DATA that are not CRLF . CRLF (RFC 5321 4.1.1.4), the sequences of the SMTP smuggling research, and a NUL
# before the dot (the variant Debian closed by refusing NUL bytes).
SMUGGLING_ENDS = {"LF . CRLF": b"\n.\r\n", "LF . LF": b"\n.\n", "CR . CRLF": b"\r.\r\n", "CRLF . CR": b"\r\n.\r",
                  "CRLF . LF": b"\r\n.\n", "CRLF NUL . CRLF": b"\r\n\x00.\r\n"}


def smuggle(maillab: MailLab, vps, end: bytes, tok: str) -> dict:
    """One smuggling dialogue from the stranger to the VPS's first mailbox: {"replies": [...]} or {"setup": ...}."""
    rcpt = vps.accounts[0].address
    res = maillab.container(STRANGER).exec_run(["python3", "-c", SMUGGLER, vps.fqdn, rcpt, end.hex(), tok])
    return json.loads(res.output.decode(errors="replace").strip().splitlines()[-1])


@pytest.fixture(scope="module")
def smuggling_answers(maillab: MailLab) -> dict[str, tuple[dict[str, tuple[str, dict]], tuple[str, dict]]]:
    """Per VPS (all at once): each smuggling end -> (token, what client2 saw), then the control (CRLF . CRLF)."""
    def attempts(vps) -> tuple[dict[str, tuple[str, dict]], tuple[str, dict]]:
        tried = {name: (tok := token(), smuggle(maillab, vps, end, tok)) for name, end in SMUGGLING_ENDS.items()}
        return tried, (tok := token(), smuggle(maillab, vps, b"\r\n.\r\n", tok))

    return at_once(attempts, VPS)


@pytest.mark.parametrize("vps", VPS, ids=VPS_IDS)
def test_an_end_of_data_that_is_not_crlf_dot_crlf_ends_nothing_and_no_smuggled_message_is_delivered(
        maillab: MailLab, smuggling_answers, vps):
    tried, (control, control_seen) = smuggling_answers[vps.short]
    for name, (_, seen) in tried.items():
        assert "replies" in seen, (vps.short, name, seen)
        taken = [r for r in seen["replies"] if r.startswith("2") and not r.startswith("221")]
        assert not taken, f"{vps.short} ({vps.variant}) {name}: the server took {taken}"
        assert seen["replies"] and seen["replies"][0][:1] in "45", (vps.short, name, seen)
    # The control, the same dialogue with CRLF . CRLF: the message ends there and is delivered (sendmail refuses the
    # second transaction's DATA, sent before its replies, with 554 5.5.0).
    assert control_seen.get("replies", [""])[0].startswith("250"), (vps.short, control_seen)
    mailbox = f"/var/mail/{vps.accounts[0].user}"
    assert maillab.wait_for_mail(vps, mailbox, f"outer {control}"), f"{vps.short}: the control did not arrive"
    delivered = [name for name, (tok, _) in tried.items() if maillab.has_mail(vps, mailbox, tok)]
    assert not delivered, f"{vps.short} ({vps.variant}): smuggled or cut messages delivered after {delivered}"
