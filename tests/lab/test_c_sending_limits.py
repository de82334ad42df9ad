"""Per-mailbox sending limits (the sending_limits role, a milter sendmail asks at MAIL and RCPT), on Debian 13 and 12.

The test sets small numbers on one SMTP-Auth host per release (3 messages and 4 recipients per mailbox in 30 s) and
puts the lab's back at the end. On each host, at the same time: alice sends her 3 messages, and her next ones get
451 4.7.1 at MAIL naming her mailbox; bob sends at once all the same; bob's message to 4 recipients gets its 4th
(his 5th in the period) refused at RCPT with 451 4.7.1 while the other 3 get it; the fleet report lists both as held;
once the period has passed both send again."""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from sendmail_fleet import repo_root
from sendmail_fleet.mailcheck import MailLab, message, token
from sendmail_fleet.topology import LAB_SENDING_LIMITS

from .conftest import DEBIAN_12, DEBIAN_13, TOPOLOGY, lab_host, playbook, recap

HOSTS = [lab_host(release=r, feature="smtp_auth") for r in (DEBIAN_13, DEBIAN_12)]
MESSAGES, RECIPIENTS, PERIOD = 3, 4, 30
SMALL = ("-e", json.dumps({"sending_limits_messages": MESSAGES, "sending_limits_recipients": RECIPIENTS,
                           "sending_limits_period": PERIOD}))
MX = TOPOLOGY.by_role("mx")[0]
REPORT = repo_root() / "reports" / "fleet-report.json"


@dataclass
class Flow:
    """What one host answered, in order."""
    host: str
    alice_first: float = 0.0  # when alice's first message was accepted (monotonic)
    alice: list[tuple[int | None, str]] = field(default_factory=list)  # (MAIL's or DATA's code, its text) per message
    bob_at_once: bool = False
    bob_rcpts: list[int] = field(default_factory=list)
    bob_delivered: bool = False
    alice_held_for: float = 0.0  # from her first message until she sent again
    alice_again: bool = False
    bob_again: bool = False
    tokens: list[str] = field(default_factory=list)


def submit(lab: MailLab, short: str, who: int, rcpt: list[str], tok: str):
    vps = TOPOLOGY.get(short)
    acct = vps.accounts[who]
    return lab.smtp("client1", vps, port=587, starttls=True, auth=["PLAIN", acct.user, acct.password],
                    mail_from=acct.address, rcpt=rcpt, data=message(tok, "limit"))


def mail_reply(res) -> tuple[int | None, str]:
    step = res.step("mail") or {}
    if step.get("code") != 250:
        return step.get("code"), step.get("text", "")
    data = res.step("data") or {}
    return data.get("code"), data.get("text", "")


def flow(lab: MailLab, short: str) -> Flow:
    vps, carol = TOPOLOGY.get(short), MX.accounts[0].address
    out = Flow(short)
    for i in range(MESSAGES + 2):
        tok = token()
        out.alice.append(mail_reply(submit(lab, short, 0, [carol], tok)))
        if i == 0:
            out.alice_first = time.monotonic()
        if i < MESSAGES:
            out.tokens.append(tok)
    tok = token()
    out.bob_at_once = submit(lab, short, 1, [carol], tok).raw["ok"]
    bob_first = time.monotonic()
    # bob has 1 recipient in the period: of these 4, the first 3 make his 4, the last is one too many.
    tok = token()
    local = [vps.accounts[0].address, f"postmaster@{vps.domain}", carol, vps.accounts[1].address]
    res = submit(lab, short, 1, local, tok)
    out.bob_rcpts = [s["code"] for s in res.raw["steps"] if s["step"] == "rcpt"]
    out.bob_delivered = res.raw["ok"] and lab.wait_for_mail(MX, "/var/mail/carol", tok, timeout=60)
    # The period ends PERIOD s after alice's first message: poll until she sends again (each try that is refused
    # is one more refusal, as a mail program's retries are).
    deadline = out.alice_first + PERIOD + 30
    while time.monotonic() < deadline:
        if submit(lab, short, 0, [carol], token()).raw["ok"]:
            out.alice_again, out.alice_held_for = True, time.monotonic() - out.alice_first
            break
        time.sleep(2)
    deadline = bob_first + PERIOD + 30  # bob's first recipient leaves his period then
    while time.monotonic() < deadline and not out.bob_again:
        out.bob_again = submit(lab, short, 1, [carol], token()).raw["ok"]
        if not out.bob_again:
            time.sleep(2)
    return out


@pytest.fixture(scope="module")
def limited(maillab: MailLab, paths):
    run = playbook(paths, "-l", ",".join(HOSTS), "--tags", "sending_limits", *SMALL)
    assert run.returncode == 0, run.stdout[-4000:]
    since = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    report = {}
    try:
        with ThreadPoolExecutor(len(HOSTS)) as pool:
            pending = {h: pool.submit(flow, maillab, h) for h in HOSTS}
            # While alice and bob are held (their flows wait out the period): the fleet report.
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not all(
                    held(maillab, h) >= {a.user for a in TOPOLOGY.get(h).accounts[:2]}
                    for h in HOSTS):
                time.sleep(1)
            rep = playbook(paths, "-e", "target=" + ",".join(HOSTS), name="fleet-report.yml")
            report = {"rc": rep.returncode, "stdout": rep.stdout,
                      "rows": {r["host"]: r for r in json.loads(REPORT.read_text())["hosts"]}}
            flows = {h: f.result() for h, f in pending.items()}
        journal = {h: maillab.sh(TOPOLOGY.get(h), f"journalctl -u sendmail-fleet-limits --since '{since}' -o cat")[1]
                   for h in HOSTS}
    finally:
        back = playbook(paths, "-l", ",".join(HOSTS), "--tags", "sending_limits")
    yield flows, report, journal, back


def held(lab: MailLab, short: str) -> set[str]:
    code, out = lab.sh(TOPOLOGY.get(short), "python3 -I /usr/local/lib/sendmail-fleet/sending_limit_milter.py status "
                                            "--settings /etc/sendmail-fleet/sending-limits.json")
    return {r["mailbox"] for r in json.loads(out)["held"]} if code == 0 else set()


@pytest.mark.parametrize("short", HOSTS)
def test_a_mailbox_over_its_message_limit_gets_451_4_7_1_at_mail_from_the_next_message_on(limited, short, maillab):
    flows, *_ = limited
    f = flows[short]
    alice = TOPOLOGY.get(short).accounts[0].user  # the mailbox as it logs in
    assert [c for c, _ in f.alice[:MESSAGES]] == [250] * MESSAGES, f.alice
    for code, text in f.alice[MESSAGES:]:
        assert code == 451 and text.startswith("4.7.1 ") and alice in text and "try again in" in text, f.alice
    for tok in f.tokens:
        assert maillab.wait_for_mail(MX, "/var/mail/carol", tok), f"alice's accepted message {tok} was not delivered"


@pytest.mark.parametrize("short", HOSTS)
def test_another_mailbox_on_the_same_host_still_sends_at_once(limited, short):
    flows, *_ = limited
    assert flows[short].bob_at_once


@pytest.mark.parametrize("short", HOSTS)
def test_recipients_over_the_limit_get_451_at_rcpt_and_the_message_goes_to_the_others(limited, short):
    flows, *_ = limited
    f = flows[short]
    assert f.bob_rcpts == [250] * (RECIPIENTS - 1) + [451], f.bob_rcpts
    assert f.bob_delivered


@pytest.mark.parametrize("short", HOSTS)
def test_after_the_period_both_mailboxes_send_again(limited, short):
    flows, *_ = limited
    f = flows[short]
    assert f.alice_again and f.bob_again, f
    # Held until her first message was a period old (the probe's own time adds a little).
    assert PERIOD - 2 <= f.alice_held_for <= PERIOD + 30, f.alice_held_for


def test_each_refusal_is_logged_with_the_mailbox_and_the_fleet_report_lists_the_held_mailboxes(limited):
    _, report, journal, _ = limited
    assert report["rc"] == 0, report["stdout"][-3000:]
    assert "HELD BY SENDING LIMIT" in report["stdout"]
    for short in HOSTS:
        alice, bob = (a.user for a in TOPOLOGY.get(short).accounts[:2])
        rows = {r["mailbox"]: r["refused"] for r in report["rows"][short]["held_by_sending_limit"]}
        assert set(rows) == {alice, bob} and rows[alice] >= 2 and rows[bob] >= 1, rows
        assert f"held mailbox={alice} " in journal[short] and f"held mailbox={bob} " in journal[short], journal[short]
        assert "reply=451 4.7.1" in journal[short]


def test_the_lab_limits_are_back_after_the_test_and_nothing_else_changed(limited, maillab):
    *_, back = limited
    assert back.returncode == 0, back.stdout[-3000:]
    assert all(recap(back.stdout)[h]["changed"] >= 1 for h in HOSTS)  # the settings, back to the lab's
    for short in HOSTS:
        code, out = maillab.sh(TOPOLOGY.get(short), "cat /etc/sendmail-fleet/sending-limits.json")
        settings = json.loads(out)
        assert settings["default"] == {"messages": LAB_SENDING_LIMITS["sending_limits_messages"],
                                       "recipients": LAB_SENDING_LIMITS["sending_limits_recipients"]}
        assert settings["period"] == 3600
