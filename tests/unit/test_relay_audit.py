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
