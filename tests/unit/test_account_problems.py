"""The account_problems filter (plugins/filter/accounts.py): empty and placeholder passwords and hashes are refused,
naming the account and the field, never the value."""

from __future__ import annotations

import pytest

from sendmail_fleet.collection import filter_plugin

ap = filter_plugin("accounts").account_problems

SHA512 = "$6$rounds=5000$saltsaltsaltsalt$" + "A" * 86
YESCRYPT = "$y$j9T$3ceyP7Ek2RSC7HgvHdDFt.$VEqiPChfbh7ZLzgGfaTmiD1kkCvnRA4TQIsXTq3AXA6"


def test_real_passwords_and_hashes_pass():
    assert ap([{"name": "alice", "password": "alice-vps1-Lab1"}, {"name": "bob", "password_hash": SHA512},
               {"name": "carol", "password_hash": YESCRYPT}, {"name": "dave", "password_hash": "$1$saltsalt$" + "b" * 22},
               {"name": "erin", "password_hash": "$2b$12$" + "c" * 53}]) == []


@pytest.mark.parametrize("value", ["", " ", "\t", "!", "!!", "*", "x", "changeme", "CHANGE_ME", "TODO", "password",
                                   "<hash>", "!" + SHA512, "*LK*", "!$6$abc$def", "not a hash",
                                   "abcdefghijklm",  # DES: eight characters at most count
                                   "$6$salt$short", "$6$salt$" + "A" * 86 + " ", "$6$salt:x$" + "A" * 86])
def test_an_empty_locked_placeholder_or_malformed_hash_is_refused_naming_the_account_not_the_value(value):
    problems = ap([{"name": "alice", "password": "fine-Lab1"}, {"name": "bob", "password_hash": value}])
    assert len(problems) == 1 and problems[0].startswith("account bob: password_hash "), problems
    assert problems[0].removeprefix("account bob: password_hash ") in REASONS  # one of its sentences, no value


REASONS = {"is empty", "is a placeholder, not a password",
           "is a locked or disabled entry (it starts with ! or *), not a password hash",
           "is not a crypt(3) hash such as $6$... or $y$... (mkpasswd -m sha-512, or yescrypt)"}


@pytest.mark.parametrize("value", ["", "   ", "changeme", "Password", "secret", "xxx", "TBD"])
def test_an_empty_or_placeholder_plain_password_is_refused(value):
    assert ap([{"name": "alice", "password": value}]) == [
        f"account alice: password {'is empty' if not value.strip() else 'is a placeholder, not a password'}"]


def test_the_hash_is_what_counts_when_both_are_given_as_the_role_uses_it():
    assert ap([{"name": "alice", "password": "", "password_hash": SHA512}]) == []
    assert ap([{"name": "alice", "password": "good-Lab1", "password_hash": ""}]) == [
        "account alice: password_hash is empty"]


def test_an_absent_account_needs_no_password_and_a_nameless_one_is_named_by_its_place():
    assert ap([{"name": "gone", "state": "absent"}]) == []
    assert ap([{"password": "x-Lab1"}, "bob"]) == ["mail_users_accounts[0] has no name",
                                                  "mail_users_accounts[1] is not a mapping with a name"]


def test_an_account_without_any_password_is_named():
    assert ap([{"name": "alice"}, {"name": "bob", "password": None}]) == [
        "account alice needs password_hash or password (vault it)",
        "account bob needs password_hash or password (vault it)"]


def test_no_input_is_no_problem():
    assert ap(None) == [] and ap([]) == []


def test_each_present_user_gets_a_mailbox_entry_made_where_missing_and_owned_by_the_user():
    from sendmail_fleet.collection import filter_plugin

    entries = filter_plugin("accounts").mailbox_files(["alice", "bob"])
    assert entries == [{"path": f"/var/mail/{u}", "state": "file", "create": True, "owner": u, "group": "mail",
                        "mode": "0660"} for u in ("alice", "bob")]
