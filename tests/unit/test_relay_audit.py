"""The migration audit reads sendmail's and dovecot's log lines and tells who relays how."""

import datetime as dt

from sendmail_fleet.host import load

Audit, parse_ts = load("relay_audit").Audit, load("relay_audit").parse_ts

LOG = """\
2026-11-25T17:00:00+0000 mail.vps2.test dovecot[10]: pop3-login: Login: user=<bob>, method=PLAIN, rip=198.51.100.7, lip=10.0.0.2, mpid=5, TLS
2026-11-25T17:00:01+0000 mail.vps2.test sm-mta[20]: 1AAA: from=<bob@vps2.test>, size=10, class=0, nrcpts=1, proto=ESMTP, daemon=MTA-v4, relay=client [198.51.100.7]
2026-11-25T17:00:01+0000 mail.vps2.test sm-mta[21]: 1AAA: to=<carol@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx.remote.test. [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
2026-11-25T17:00:02+0000 mail.vps2.test sm-mta[30]: AUTH=server, relay=client [198.51.100.8], authid=alice, mech=PLAIN, bits=0
2026-11-25T17:00:03+0000 mail.vps2.test sm-mta[30]: 1BBB: from=<alice@vps2.test>, size=10, class=0, nrcpts=1, proto=ESMTPSA, daemon=MSA-v4, relay=client [198.51.100.8]
2026-11-25T17:00:03+0000 mail.vps2.test sm-mta[31]: 1BBB: to=<carol@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx.remote.test. [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
2026-11-25T17:00:04+0000 mail.vps2.test sm-mta[40]: 1CCC: from=<carol@remote.test>, size=10, class=0, nrcpts=1, proto=ESMTP, daemon=MTA-v4, relay=mx [10.0.0.9]
2026-11-25T17:00:04+0000 mail.vps2.test sm-mta[41]: 1CCC: to=<alice@vps2.test>, delay=00:00:00, mailer=local, pri=1, relay=local, dsn=2.1.5, stat=Sent
2026-11-25T17:00:05+0000 mail.vps2.test sm-mta[50]: 1DDD: from=<root@vps2.test>, size=10, class=0, nrcpts=1, proto=ESMTP, daemon=MTA-v4, relay=localhost [127.0.0.1]
2026-11-25T17:00:05+0000 mail.vps2.test sm-mta[51]: 1DDD: to=<x@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx.remote.test. [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
2026-11-25T17:00:06+0000 mail.vps2.test sm-mta[60]: 1EEE: from=<bob@vps2.test>, size=10, class=0, nrcpts=1, proto=ESMTP, daemon=MTA-v4, relay=client [198.51.100.7]
2026-11-25T17:00:06+0000 mail.vps2.test sm-mta[61]: 1EEE: to=<dave@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx.remote.test. [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
garbage that is not a log line
"""
NOW = dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)


def audit(since=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)):
    a = Audit(since)
    a.feed(LOG.splitlines(), NOW)
    return a.report(set())


def test_pop_before_smtp_relays_are_counted_per_user_and_client():
    rows = [r for r in audit() if r["method"] == "pop-before-smtp"]
    assert rows == [{"method": "pop-before-smtp", "user": "bob", "client": "198.51.100.7", "count": 2,
                     "last_seen": "2026-11-25T17:00:06+00:00"}]


def test_smtp_auth_relays_are_named_by_authid():
    rows = [r for r in audit() if r["method"] == "smtp-auth"]
    assert [(r["user"], r["client"], r["count"]) for r in rows] == [("alice", "198.51.100.8", 1)]


def test_local_delivery_is_not_a_relay_and_loopback_is_local():
    methods = {r["method"] for r in audit()}
    assert methods == {"pop-before-smtp", "smtp-auth", "local"}
    assert all(r["client"] != "10.0.0.9" for r in audit())


def test_lines_before_since_are_ignored():
    assert audit(since=dt.datetime(2026, 11, 25, 17, 0, 4, tzinfo=dt.timezone.utc)) == [
        {"method": "local", "user": "-", "client": "127.0.0.1", "count": 1, "last_seen": "2026-11-25T17:00:05+00:00"},
        {"method": "pop-before-smtp", "user": "?", "client": "198.51.100.7", "count": 1,
         "last_seen": "2026-11-25T17:00:06+00:00"},
    ]


def test_classic_syslog_timestamps_get_this_year_or_last():
    now = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    assert parse_ts("Dec 31 23:00:00", now).year == 2025
    assert parse_ts("Jan  1 10:00:00", now).year == 2026


relay_audit = load("relay_audit")

PID_REUSE = """\
2026-11-25T09:00:00+0000 mail.vps2.test sm-mta[700]: AUTH=server, relay=client [198.51.100.8], authid=alice, mech=PLAIN, bits=256
2026-11-25T09:00:01+0000 mail.vps2.test sm-mta[700]: 1AAA: from=<alice@vps2.test>, size=10, class=0, nrcpts=1, proto=ESMTPSA, daemon=MSA-v4, relay=client [198.51.100.8]
2026-11-25T09:00:01+0000 mail.vps2.test sm-mta[701]: 1AAA: to=<carol@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
2026-11-25T17:00:00+0000 mail.vps2.test dovecot[10]: pop3-login: Login: user=<bob>, method=PLAIN, rip=198.51.100.7, lip=10.0.0.2, mpid=5, TLS
2026-11-25T17:00:01+0000 mail.vps2.test sm-mta[700]: 1BBB: from=<bob@vps2.test>, size=10, class=0, nrcpts=1, proto=ESMTP, daemon=MTA-v4, relay=client [198.51.100.7]
2026-11-25T17:00:01+0000 mail.vps2.test sm-mta[702]: 1BBB: to=<carol@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
2026-11-25T18:00:00+0000 mail.vps2.test sm-mta[700]: 1CCC: from=<eve@vps2.test>, size=10, class=0, nrcpts=1, proto=ESMTPSA, daemon=MSA-v4, relay=other [203.0.113.5]
2026-11-25T18:00:00+0000 mail.vps2.test sm-mta[703]: 1CCC: to=<carol@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
"""


def test_a_process_id_used_again_never_lends_its_auth_to_another_session():
    a = Audit(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))
    a.feed(PID_REUSE.splitlines(), NOW)
    rows = {(r["method"], r["user"], r["client"]): r["count"] for r in a.report(set())}
    assert rows == {("smtp-auth", "alice", "198.51.100.8"): 1,
                    ("pop-before-smtp", "bob", "198.51.100.7"): 1,  # pid 700 again, but proto=ESMTP: not alice's
                    ("smtp-auth", "?", "203.0.113.5"): 1}  # authenticated, but the AUTH line is another client's


def test_a_truncated_gz_is_reported_and_the_lines_before_the_damage_still_count(tmp_path, capsys):
    import gzip
    whole = tmp_path / "mail.log.2.gz"
    whole.write_bytes(gzip.compress(LOG.encode()))
    cut = tmp_path / "mail.log.1.gz"
    cut.write_bytes(gzip.compress((LOG * 50).encode())[:300])
    skipped: list[str] = []
    a = Audit(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))
    a.feed(relay_audit.read_lines(a.since, [str(cut), str(whole)], skipped), NOW)
    assert len(skipped) == 1 and "mail.log.1.gz" in skipped[0]
    pbs = [r for r in a.report(set()) if r["method"] == "pop-before-smtp"]
    assert pbs and pbs[0]["user"] == "bob" and pbs[0]["count"] >= 2  # the whole file counted in full


def test_main_survives_a_damaged_log_and_never_offers_an_invalid_user_name_for_a_notice(tmp_path, capsys):
    import json
    log = tmp_path / "mail.log"
    log.write_text(LOG.replace("user=<bob>", "user=<a@x,y>"))
    bad = tmp_path / "mail.log.1.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 not gzip at all")
    assert relay_audit.main(["--since", "2026-11-01T00:00:00+00:00", "--log", str(log), "--log", str(bad)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pop_before_smtp_users"] == [] and out["invalid_users"] == ["a@x,y"]
    assert len(out["skipped_logs"]) == 1 and "mail.log.1.gz" in out["skipped_logs"][0]


# Debian 13, as its journal prints it (short-iso with +00:00; dovecot 2.4 says "Logged in:"), no hook line.
DEBIAN_13 = """\
2026-11-27T22:06:16+00:00 mail.vps1.test dovecot[4337]: pop3-login: Login aborted: Connection closed (auth failed, 1 attempts in 5 secs) (auth_failed): user=<alice>, method=PLAIN, rip=172.29.25.102, lip=172.29.25.21, TLS: Connection closed, session=<hmiRRElhooKsHRll>
2026-11-27T22:06:23+00:00 mail.vps1.test dovecot[4337]: pop3-login: Logged in: user=<alice>, method=PLAIN, rip=172.29.25.101, lip=172.29.25.21, mpid=5021, TLS, session=<AkTyRElhBJasHRll>
2026-11-27T22:06:24+00:00 mail.vps1.test sm-mta[60]: 1EEE: from=<alice@vps1.test>, size=10, class=0, nrcpts=1, proto=ESMTP, daemon=MTA-v4, relay=client1 [172.29.25.101]
2026-11-27T22:06:24+00:00 mail.vps1.test sm-mta[61]: 1EEE: to=<carol@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx.remote.test. [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
"""


def test_debian_13s_journal_and_dovecot_2_4s_login_line_count_like_debian_12s():
    a = Audit(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))
    a.feed(DEBIAN_13.splitlines(), NOW.replace(day=28))
    assert [r for r in a.report(set()) if r["method"] == "pop-before-smtp"] == [
        {"method": "pop-before-smtp", "user": "alice", "client": "172.29.25.101", "count": 1,
         "last_seen": "2026-11-27T22:06:24+00:00"}]  # the failed login from .102 names no one


# -- what a stranger writes into the from= line: the envelope sender and the Message-ID -----------------------------
ra = load("relay_audit")
HOSTILE_FROM = {
    "a Message-ID naming loopback": "from=<bob@vps2.test>, size=10, class=0, nrcpts=1, "
                                    "msgid=<relay=[127.0.0.1]@x>, proto=ESMTP, daemon=MTA-v4, relay=c [198.51.100.7]",
    "a Message-ID with the whole tail": "from=<bob@vps2.test>, size=10, class=0, nrcpts=1, msgid=<a, proto=ESMTPSA, "
                                        "daemon=MSA-v4, relay=localhost [127.0.0.1]>, bodytype=8BITMIME, proto=ESMTP, "
                                        "daemon=MTA-v4, relay=c [198.51.100.7]",
    "a sender that says it authenticated": "from=<x, proto=ESMTPA, relay=[127.0.0.1]>, size=10, class=0, nrcpts=1, "
                                           "proto=SMTP, daemon=MTA-v4, relay=[198.51.100.7]",
    "brackets in the Message-ID": "from=<bob@vps2.test>, size=1, class=0, nrcpts=1, msgid=<[10.0.0.2]>, "
                                  "proto=ESMTP, daemon=MTA-v4, relay=c.example [198.51.100.7] (may be forged)",
}


def hostile(from_line: str) -> list[dict]:
    a = Audit(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))
    a.feed(["2026-11-25T17:00:00+0000 mail.vps2.test dovecot[9]: pop3-login: Login: user=<bob>, method=PLAIN, "
            "rip=198.51.100.7, lip=10.0.0.2, mpid=5, TLS",
            f"2026-11-25T17:00:01+0000 mail.vps2.test sm-mta[20]: 1AAA: {from_line}",
            "2026-11-25T17:00:01+0000 mail.vps2.test sm-mta[21]: 1AAA: to=<carol@remote.test>, delay=00:00:00, "
            "mailer=esmtp, pri=1, relay=mx.remote.test. [10.0.0.9], dsn=2.0.0, stat=Sent (ok)"], NOW)
    return a.report({"10.0.0.2"})


def test_the_relay_address_and_the_protocol_are_sendmails_own_fields_never_the_senders_or_message_ids_text():
    for case, line in HOSTILE_FROM.items():
        rows = hostile(line)
        assert [(r["method"], r["user"], r["client"]) for r in rows] == [
            ("pop-before-smtp", "bob", "198.51.100.7")], (case, rows)


def test_a_message_submitted_on_the_host_itself_is_local():
    rows = hostile("from=<root@vps2.test>, size=10, class=0, nrcpts=1, msgid=<x@vps2.test>, relay=root@localhost")
    assert [(r["method"], r["client"]) for r in rows] == [("local", "")]


# -- how far back the evidence reaches ----------------------------------------------------------------------------
SINCE = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def test_the_log_span_runs_from_since_when_the_logs_reach_back_that_far():
    span = ra.log_span(SINCE, NOW, {"kind": "journal", "head": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}, None)
    assert span == {"log_source": "journal", "log_from": "2026-11-01T00:00:00+00:00", "log_span_days": 25.0,
                    "log_shorter_than_asked": False, "log_note": ""}


def test_a_journal_that_begins_later_shortens_the_span_to_what_it_holds():
    head = dt.datetime(2026, 11, 25, 12, tzinfo=dt.timezone.utc)  # a volatile journal since the last boot
    span = ra.log_span(SINCE, NOW, {"kind": "journal", "head": head}, None)
    assert (span["log_span_days"], span["log_shorter_than_asked"]) == (0.5, True)
    assert "reach back only 0.50 days (from 2026-11-25T12:00:00+00:00), not to 2026-11-01" in span["log_note"]


def test_log_files_count_from_their_oldest_line_and_no_logs_at_all_is_no_span():
    a = Audit(SINCE)
    a.feed(LOG.splitlines(), NOW)
    assert a.earliest == dt.datetime(2026, 11, 25, 17, tzinfo=dt.timezone.utc)
    assert ra.log_span(SINCE, NOW, {"kind": "files"}, a.earliest)["log_from"] == "2026-11-25T17:00:00+00:00"
    none = ra.log_span(SINCE, NOW, {}, None)
    assert (none["log_source"], none["log_from"], none["log_span_days"]) == ("none", None, 0.0)
    assert none["log_shorter_than_asked"] and "no mail log was found" in none["log_note"]


# The grace phase on a host: alice was refused twice (25 and 587), then set up SMTP-Auth with Thunderbird; bob is
# excepted and still relays by POP-before-SMTP (Outlook); carol was refused and never came back; dave only reads mail;
# erin relays by POP-before-SMTP from an excepted office network; a forged program line must not count as a refusal.
GRACE_LOG = """\
2026-11-25T09:00:00+0000 mail.vps11.test dovecot[10]: pop3-login: Login: user=<alice>, method=PLAIN, rip=198.51.100.7, lip=10.0.0.2, mpid=5, TLS
2026-11-25T09:00:01+0000 mail.vps11.test sm-mta[20]: 1AAA: sendmail-fleet-grace:relay<alice><198.51.100.7>
2026-11-25T09:00:02+0000 mail.vps11.test sm-mta[21]: 1AAB: sendmail-fleet-grace:submission<alice><198.51.100.7>
2026-11-25T09:05:00+0000 mail.vps11.test sm-mta[30]: AUTH=server, relay=client [198.51.100.7], authid=alice@vps11.test, mech=PLAIN, bits=0
2026-11-25T09:05:01+0000 mail.vps11.test sm-mta[30]: 1BBB: sendmail-fleet-program: Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.3.1
2026-11-25T09:05:01+0000 mail.vps11.test sm-mta[30]: 1BBB: from=<alice@vps11.test>, size=10, class=0, nrcpts=1, proto=ESMTPSA, daemon=MSA-v4, relay=client [198.51.100.7]
2026-11-25T09:05:02+0000 mail.vps11.test sm-mta[31]: 1BBB: to=<x@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
2026-11-25T10:00:00+0000 mail.vps11.test dovecot[10]: pop3-login: Login: user=<bob>, method=PLAIN, rip=198.51.100.8, lip=10.0.0.2, mpid=6, TLS
2026-11-25T10:00:01+0000 mail.vps11.test sm-mta[40]: 1CCC: sendmail-fleet-program: Microsoft Outlook 16.0
2026-11-25T10:00:01+0000 mail.vps11.test sm-mta[40]: 1CCC: from=<bob@vps11.test>, size=10, class=0, nrcpts=1, proto=ESMTP, daemon=MTA-v4, relay=client [198.51.100.8]
2026-11-25T10:00:02+0000 mail.vps11.test sm-mta[41]: 1CCC: to=<x@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
2026-11-25T11:00:00+0000 mail.vps11.test sm-mta[50]: 1DDD: sendmail-fleet-grace:relay<carol><IPv6:2001:db8::5>
2026-11-25T11:30:00+0000 mail.vps11.test dovecot[10]: pop3-login: Login: user=<erin>, method=PLAIN, rip=192.0.2.9, lip=10.0.0.2, mpid=7, TLS
2026-11-25T11:30:01+0000 mail.vps11.test sm-mta[60]: 1EEE: from=<erin@vps11.test>, size=10, class=0, nrcpts=1, proto=ESMTP, daemon=MTA-v4, relay=client [192.0.2.9]
2026-11-25T11:30:02+0000 mail.vps11.test sm-mta[61]: 1EEE: to=<x@remote.test>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx [10.0.0.9], dsn=2.0.0, stat=Sent (ok)
2026-11-25T12:00:00+0000 mail.vps11.test sm-mta[70]: 1FFF: sendmail-fleet-program: x 1FFF: sendmail-fleet-grace:relay<dave><10.9.9.9>
2026-11-25T12:00:01+0000 mail.vps11.test sm-mta[70]: 1FFF: sendmail-fleet-program: evil\x1b[31m\x07tool
"""
EXCEPTIONS = [("mailbox", "bob", "2026-12-31"), ("network", "192.0.2.0/28", "2026-11-30"),
              ("mailbox", "frank", "2026-11-01")]


def users(exceptions=EXCEPTIONS, mailboxes=("alice", "bob", "carol", "dave", "erin", "frank")):
    a = Audit(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))
    a.feed(GRACE_LOG.splitlines(), NOW)
    return {u["user"]: u for u in a.users(mailboxes, exceptions, "2026-11-26", set())}


def test_each_mailbox_gets_the_state_its_evidence_means():
    states = {name: u["state"] for name, u in users().items()}
    assert states == {"alice": "migrated", "bob": "excepted until 2026-12-31", "carol": "needs help",
                      "dave": "never sends", "erin": "excepted until 2026-11-30", "frank": "never sends"}


def test_the_evidence_of_a_user_who_was_refused_in_grace_and_then_moved_to_smtp_auth():
    alice = users()["alice"]
    assert (alice["grace_refusals"], alice["last_grace_refusal"]) == (2, "2026-11-25T09:00:02+00:00")
    assert (alice["first_auth"], alice["last_auth"], alice["auth_messages"]) == (
        "2026-11-25T09:05:01+00:00", "2026-11-25T09:05:01+00:00", 1)
    assert alice["pop_relays"] == 0 and alice["last_pop_relay"] == ""


def test_programs_come_from_the_users_own_messages_with_the_help_pages_section():
    u = users()
    assert u["alice"]["programs"] == ["Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.3.1"]
    assert u["alice"]["help_sections"] == ["thunderbird"]
    assert (u["bob"]["programs"], u["bob"]["help_sections"]) == (["Microsoft Outlook 16.0"], ["outlook"])
    assert u["bob"]["last_pop_relay"] == "2026-11-25T10:00:01+00:00" and u["bob"]["exception"] == "mailbox bob"


def test_a_program_name_cannot_forge_a_refusal_or_carry_control_characters():
    u = users()
    assert u["dave"]["grace_refusals"] == 0  # "sendmail-fleet-grace:" inside a program line is a program name
    a = Audit(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))
    a.feed(GRACE_LOG.splitlines(), NOW)
    assert a.programs_by_qid["1FFF"][1] == "evil[31mtool"


def test_an_exception_that_ended_does_not_count_and_a_second_evidence_after_auth_is_still_pop_before_smtp():
    u = users(exceptions=[])
    assert u["bob"]["state"] == "pop-before-smtp" and u["erin"]["state"] == "pop-before-smtp"
    assert users()["frank"]["excepted_until"] == ""  # ended 2026-11-01


def test_a_refusal_after_the_last_smtp_auth_means_needs_help_again():
    a = Audit(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))
    a.feed((GRACE_LOG + "2026-11-25T13:00:00+0000 mail.vps11.test sm-mta[80]: 1GGG: "
            "sendmail-fleet-grace:relay<alice><198.51.100.70>\n").splitlines(), NOW)
    assert {u["user"]: u["state"] for u in a.users(["alice"], [], "2026-11-26", set())}["alice"] == "needs help"


def test_the_exceptions_file_is_read_as_the_helper_writes_it(tmp_path):
    f = tmp_path / "exceptions"
    f.write_text("# header\nmailbox bob 2027-01-31\nnetwork 192.0.2.0/28 2026-12-01\nbroken line\n")
    assert load("relay_audit").read_exceptions(str(f)) == [("mailbox", "bob", "2027-01-31"),
                                                         ("network", "192.0.2.0/28", "2026-12-01")]
    assert load("relay_audit").read_exceptions(str(tmp_path / "missing")) == []


def test_a_journal_a_few_minutes_old_spans_those_minutes_not_zero_days():
    """A host booted seven minutes ago: its log span is 0.00486 days, which a gate of a few seconds' quiet accepts
    (rounded to 0.01 day it read 0.0, and the rollout held the host: a lab run of test_d_grace on a new lab)."""
    head = NOW - dt.timedelta(minutes=7)
    span = ra.log_span(SINCE, NOW, {"kind": "journal", "head": head}, None)
    assert span["log_span_days"] == round(7 / 1440, 5) and span["log_span_days"] > 6 / 86400
