"""The rollout's readiness gate for the step to SMTP-Auth only (plugins/filter/readiness.py): every reason named."""

from __future__ import annotations

import datetime as dt

from sendmail_fleet.collection import filter_plugin

rd = filter_plugin("readiness")
NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc).timestamp()
QUIET = {"log_span_days": 30.0, "log_from": "2026-11-04T12:00:00+00:00", "log_source": "journal", "relays": [
    {"method": "smtp-auth", "user": "alice", "client": "198.51.100.7", "last_seen": "2026-12-04T11:00:00+00:00"},
    {"method": "pop-before-smtp", "user": "bob", "client": "198.51.100.8", "last_seen": "2026-11-01T10:00:00+00:00"}],
    "users": [{"user": "carol", "last_grace_refusal": "2026-11-10T09:00:00+00:00"}],
    "exceptions": [{"kind": "mailbox", "value": "dave", "until": "2026-11-15"}]}


def gate(audit: dict, days: float = 14) -> dict:
    return rd.readiness(audit, days, "vps2", NOW)


def test_evidence_older_than_the_quiet_days_lets_the_host_go():
    assert gate(QUIET) == {"held": False, "detail": ""}


def test_each_kind_of_recent_evidence_holds_the_host_and_is_named():
    pop = gate({**QUIET, "relays": [{"method": "pop-before-smtp", "user": "bob", "client": "198.51.100.8",
                                     "last_seen": "2026-12-01T10:00:00+00:00"}]})
    assert pop["held"] and "relayed by POP-before-SMTP: bob from 198.51.100.8 (last 2026-12-01T10:00:00" in pop["detail"]
    refused = gate({**QUIET, "users": [{"user": "carol", "last_grace_refusal": "2026-12-03T09:00:00+00:00"}]})
    assert "refused in grace (needs help): carol (last refused 2026-12-03T09:00:00+00:00)" in refused["detail"]
    assert refused["detail"].endswith("or set rollout_force to switch anyway")
    ended = gate({**QUIET, "exceptions": [{"kind": "network", "value": "192.0.2.0/28", "until": "2026-11-25"}]})
    assert "exceptions in the last 14 days: network 192.0.2.0/28 until 2026-11-25" in ended["detail"]
    assert "wait for the exceptions to end" in ended["detail"]


def test_logs_shorter_than_the_quiet_days_hold_the_host_and_the_users_are_named_too():
    short = gate({**QUIET, "log_span_days": 0.02, "log_from": "2026-12-04T11:30:00+00:00",
                  "users": [{"user": "carol", "last_grace_refusal": "2026-12-04T11:45:00+00:00"}]})
    assert short["held"] and "the mail logs on vps2 reach back only 0.02 days" in short["detail"]
    assert "rollout_quiet_days (14)" in short["detail"] and "carol (last refused" in short["detail"]
    assert "keep the logs longer" in short["detail"]
    assert "no log at all" in gate({**QUIET, "log_span_days": 0, "log_from": None})["detail"]


def test_the_test_may_shorten_the_days_to_minutes():
    recent = {**QUIET, "users": [{"user": "carol", "last_grace_refusal": "2026-12-04T11:58:00+00:00"}]}
    assert gate(recent, 5 / 1440)["held"] and not gate(recent, 1 / 1440)["held"]
