"""The sasl role's sasldb backend on one VPS: SMTP-Auth checks sasldb's own accounts instead of PAM,
saslauthd is not needed, a run changes only what changed, and going back to PAM restores system logins."""

from __future__ import annotations

import json

import pytest

from sendmail_fleet.mailcheck import Checks, MailLab, message, token

from .conftest import lab_host, playbook, recap, sha

HOST = lab_host("default-auth-only")
DAVE = {"name": "dave", "password": "Dave-sasldb-Lab1"}
# Set by the last test once its site.yml has put HOST back on PAM: the fixture's teardown then has nothing to do.
PUT_BACK = {"done": False}


def sasldb_vars(*users: dict) -> str:
    return json.dumps({"sasl_backend": "sasldb", "sasl_sasldb_users": list(users)})


@pytest.fixture(scope="module")
def on_sasldb(provisioned, paths):
    PUT_BACK["done"] = False
    run = playbook(paths, "-l", HOST, "-e", sasldb_vars(DAVE))
    assert run.returncode == 0, run.stdout[-4000:]
    yield provisioned.get(HOST)
    if not PUT_BACK["done"]:  # back on PAM, as the inventory has it
        back = playbook(paths, "-l", HOST)
        assert back.returncode == 0, back.stdout[-4000:]


def relay_as(lab: MailLab, node, user: str, password: str, mech: str = "PLAIN") -> tuple[int | None, bool]:
    """AUTH on 587 after STARTTLS, then relay to carol@remote.test: (AUTH reply, delivered on mx)."""
    mx = lab.topo.by_role("mx")[0]
    tok = token()
    res = lab.smtp("client1", node, port=587, starttls=True, auth=[mech, user, password],
                   mail_from=node.accounts[0].address, rcpt=[mx.accounts[0].address], data=message(tok))
    return res.code("auth"), res.raw["ok"] and lab.wait_for_mail(mx, "/var/mail/carol", tok)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_a_sasldb_account_gets_235_and_its_relayed_mail_arrives_on_mx(on_sasldb, maillab, mech):
    assert relay_as(maillab, on_sasldb, DAVE["name"], DAVE["password"], mech) == (235, True)


def test_a_system_account_password_is_refused_with_535(on_sasldb, maillab):
    alice = on_sasldb.accounts[0]
    assert relay_as(maillab, on_sasldb, alice.user, alice.password) == (535, False)


def test_a_wrong_sasldb_password_is_refused_with_535(on_sasldb, maillab):
    assert relay_as(maillab, on_sasldb, DAVE["name"], "not-" + DAVE["password"]) == (535, False)


def test_saslauthd_is_stopped_and_the_submission_port_does_not_ask_for_it(on_sasldb, maillab):
    assert maillab.sh(on_sasldb, "systemctl is-active saslauthd")[1].strip() != "active"
    assert maillab.sh(on_sasldb, "grep -c saslauthd_state /etc/mail/sendmail.cf")[1].strip() == "0"


def test_a_second_sasldb_run_changes_nothing(on_sasldb, paths):
    run = playbook(paths, "-l", HOST, "-e", sasldb_vars(DAVE))
    assert run.returncode == 0, run.stdout[-4000:]
    assert recap(run.stdout)[HOST]["changed"] == 0, run.stdout[-4000:]


def test_a_new_password_replaces_the_old_one_and_absent_removes_the_account(on_sasldb, paths, maillab):
    erin = {"name": "erin", "password": "Erin-sasldb-Lab1"}
    renewed = {**DAVE, "password": "Dave-sasldb-Lab2"}
    run = playbook(paths, "-l", HOST, "-e", sasldb_vars(renewed, erin))
    assert run.returncode == 0, run.stdout[-4000:]
    assert DAVE["password"] not in run.stdout and renewed["password"] not in run.stdout  # no_log
    assert relay_as(maillab, on_sasldb, "dave", renewed["password"]) == (235, True)
    assert relay_as(maillab, on_sasldb, "dave", DAVE["password"]) == (535, False)
    assert relay_as(maillab, on_sasldb, "erin", erin["password"]) == (235, True)
    before = sha(on_sasldb, "/etc/sasldb2")
    run = playbook(paths, "-l", HOST, "-e", sasldb_vars(renewed, {"name": "erin", "state": "absent"}))
    assert run.returncode == 0, run.stdout[-4000:]
    assert sha(on_sasldb, "/etc/sasldb2") != before
    assert relay_as(maillab, on_sasldb, "erin", erin["password"]) == (535, False)
    assert relay_as(maillab, on_sasldb, "dave", renewed["password"]) == (235, True)


def test_an_account_without_a_password_is_refused_naming_it(on_sasldb, paths):
    run = playbook(paths, "-l", HOST, "-e", sasldb_vars({"name": "frank"}))
    assert run.returncode != 0
    assert "account frank has no password" in run.stdout, run.stdout[-3000:]


def test_back_on_pam_system_accounts_authenticate_again(on_sasldb, paths, maillab):
    run = playbook(paths, "-l", HOST)
    assert run.returncode == 0, run.stdout[-4000:]
    PUT_BACK["done"] = True
    checks = Checks(maillab, on_sasldb)
    assert checks.auth_relay("PLAIN").passed, checks.results[-1].detail
    assert relay_as(maillab, on_sasldb, DAVE["name"], "Dave-sasldb-Lab2") == (535, False)
    assert maillab.sh(on_sasldb, "systemctl is-active saslauthd")[1].strip() == "active"
