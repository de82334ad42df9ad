"""The audit's per-mailbox rows as the report shows them (plugins/filter/audit_users.py)."""

from __future__ import annotations

from sendmail_fleet.collection import filter_plugin

au = filter_plugin("audit_users")

ALICE = {"user": "alice", "state": "migrated", "last_pop_relay": "", "pop_relays": 0,
         "last_grace_refusal": "2026-11-25T09:00:02+00:00", "grace_refusals": 2,
         "first_auth": "2026-11-25T09:05:01+00:00", "last_auth": "2026-11-26T10:00:00+00:00", "auth_messages": 3,
         "exception": "", "programs": ["Mozilla/5.0 (X11) Gecko/20100101 Thunderbird/115.3.1", "x" * 80],
         "help_sections": ["thunderbird"]}
BOB = {"user": "bob", "state": "excepted until 2027-01-31", "last_pop_relay": "2026-11-25T10:00:01+00:00",
       "pop_relays": 1, "grace_refusals": 0, "auth_messages": 0, "exception": "mailbox bob", "programs": []}


def test_one_row_per_mailbox_with_minutes_counts_and_named_programs():
    rows = au.audit_user_rows([{"host": "mail.b.test", "users": [BOB]}, {"host": "mail.a.test", "users": [ALICE]}])
    assert [r["host"] for r in rows] == ["mail.a.test", "mail.b.test"]
    alice, bob = rows
    assert alice["refused_in_grace"] == "2x, last 2026-11-25 09:00"
    assert alice["smtp_auth"] == "2026-11-25 09:05 .. 2026-11-26 10:00 (3)"
    assert alice["programs"] == "Thunderbird, " + "x" * 37 + "..."
    assert (bob["pop_before_smtp"], bob["smtp_auth"], bob["exception"], bob["programs"]) == (
        "1x, last 2026-11-25 10:00", "-", "mailbox bob", "-")


def test_the_json_keeps_every_field_and_names_the_host():
    users = au.audit_users([{"host": "mail.a.test", "users": [ALICE]}, {"host": "mail.b.test"}])
    assert users == [{"host": "mail.a.test", **ALICE}]
