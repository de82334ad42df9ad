"""SMTP-Auth and POP3 are for mailbox accounts only, and a changed or removed password stops working at once."""

from __future__ import annotations

import json

import pytest

from sendmail_fleet.lab import _put_file
from sendmail_fleet.mailcheck import MailLab

from .conftest import lab_host, playbook, recap

HOST = lab_host("default-auth-only")


def auth(lab: MailLab, node, user: str, password: str) -> int | None:
    """The reply to AUTH PLAIN on 587 after STARTTLS."""
    return lab.smtp("client1", node, port=587, starttls=True, auth=["PLAIN", user, password]).code("auth")


def pop3_ok(lab: MailLab, node, user: str, password: str) -> bool:
    return lab.pop3("client1", node, user, password)["ok"]


def accounts(node, *extra: dict) -> str:
    """The host's lab accounts plus `extra`, as mail_users_accounts for -e."""
    return json.dumps({"mail_users_accounts": [{"name": a.user, "password": a.password} for a in node.accounts]
                       + list(extra)})


@pytest.fixture(scope="module")
def vps(provisioned, maillab):
    node = provisioned.get(HOST)
    maillab.sh(node, "useradd -m -s /bin/sh mallory && echo 'mallory:Mallory-system-Lab1' | chpasswd")
    yield node
    maillab.sh(node, "userdel -r mallory 2>/dev/null")


def test_a_system_account_with_a_password_gets_535_on_587(vps, maillab):
    assert auth(maillab, vps, "mallory", "Mallory-system-Lab1") == 535
    assert auth(maillab, vps, vps.accounts[0].user, vps.accounts[0].password) == 235  # a mailbox still does


def test_a_system_account_with_a_password_gets_err_on_pop3(vps, maillab):
    assert not pop3_ok(maillab, vps, "mallory", "Mallory-system-Lab1")
    assert pop3_ok(maillab, vps, vps.accounts[0].user, vps.accounts[0].password)


def test_a_new_password_works_and_the_old_one_is_refused_at_once(vps, maillab, paths):
    first = {"name": "erin", "password": "Erin-mailbox-Lab1"}
    run = playbook(paths, "-l", HOST, "--tags", "mail_users", "-e", accounts(vps, first))
    assert run.returncode == 0, run.stdout[-3000:]
    assert auth(maillab, vps, "erin", first["password"]) == 235
    assert pop3_ok(maillab, vps, "erin", first["password"])
    renewed = {**first, "password": "Erin-mailbox-Lab2"}
    run = playbook(paths, "-l", HOST, "--tags", "mail_users", "-e", accounts(vps, renewed))
    assert run.returncode == 0, run.stdout[-3000:]
    assert auth(maillab, vps, "erin", first["password"]) == 535
    assert not pop3_ok(maillab, vps, "erin", first["password"])
    assert auth(maillab, vps, "erin", renewed["password"]) == 235


def test_a_removed_account_is_refused_at_once(vps, maillab, paths):
    password = "Erin-mailbox-Lab3"
    run = playbook(paths, "-l", HOST, "--tags", "mail_users", "-e", accounts(vps, {"name": "erin", "password": password}))
    assert run.returncode == 0, run.stdout[-3000:]
    assert auth(maillab, vps, "erin", password) == 235
    run = playbook(paths, "-l", HOST, "--tags", "mail_users", "-e", accounts(vps, {"name": "erin", "state": "absent"}))
    assert run.returncode == 0, run.stdout[-3000:]
    assert auth(maillab, vps, "erin", password) == 535
    assert not pop3_ok(maillab, vps, "erin", password)


@pytest.mark.parametrize(("account", "says"), [
    ({"name": "erin", "password_hash": ""}, "account erin: password_hash is empty"),
    ({"name": "erin", "password_hash": "!"}, "account erin: password_hash is a placeholder"),
    ({"name": "erin", "password": "changeme"}, "account erin: password is a placeholder"),
    ({"name": "erin", "password": "  "}, "account erin: password is empty")])
def test_an_empty_or_placeholder_password_fails_the_play_before_any_change_naming_the_account(
        vps, maillab, paths, account, says):
    before = maillab.sh(vps, "sha256sum /etc/shadow /etc/passwd /etc/group")[1]
    run = playbook(paths, "-l", HOST, "-e", accounts(vps, account))
    assert run.returncode != 0 and says in run.stdout, run.stdout[-2000:]
    assert recap(run.stdout)[HOST]["changed"] == 0
    assert maillab.sh(vps, "sha256sum /etc/shadow /etc/passwd /etc/group")[1] == before


def test_a_mailbox_whose_password_field_was_emptied_by_hand_lets_nobody_in(vps, maillab, paths):
    """Debian's common-auth has pam_unix's nullok: with it, an empty password field takes any password. The mail
    services' PAM files do not include it."""
    bob = vps.accounts[1]
    code, out = maillab.sh(vps, f"passwd -d {bob.user}")  # as a slip of an admin's hand would leave it
    assert code == 0, out
    try:
        assert auth(maillab, vps, bob.user, "anything at all") == 535
        assert auth(maillab, vps, bob.user, "") != 235
        assert not pop3_ok(maillab, vps, bob.user, "anything at all")
    finally:
        run = playbook(paths, "-l", HOST, "--tags", "mail_users")  # the inventory's password comes back
        assert run.returncode == 0, run.stdout[-2000:]
    assert auth(maillab, vps, bob.user, bob.password) == 235


def test_site_at_vvv_prints_no_password_even_while_one_changes(vps, maillab, paths, provisioned):
    frank = {"name": "frank", "password": "Frank-vvv-Secret-9"}
    run = playbook(paths, "-vvv", "-l", HOST, "-e", accounts(vps, frank))
    try:
        assert run.returncode == 0, run.stdout[-3000:]
        assert "Users | Accounts" in run.stdout  # the task that sets passwords ran
        secrets = [a.password for a in provisioned.accounts()] + [frank["password"]]
        assert [s for s in secrets if s in run.stdout] == []
        assert "$6$" not in run.stdout, "a password's hash (sha512-crypt) in the -vvv output"
    finally:
        playbook(paths, "-l", HOST, "--tags", "mail_users", "-e", accounts(vps, {"name": "frank", "state": "absent"}))


# -- SSH: a mailbox password opens no shell and no tunnel --------------------------------------------------------
SSH_ATTEMPT = """
printf '#!/bin/sh\\ncat /tmp/pw\\n' > /tmp/askpass && chmod 700 /tmp/askpass
SSH_ASKPASS=/tmp/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none ssh -o StrictHostKeyChecking=no \\
  -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive \\
  -o NumberOfPasswordPrompts=1 -o ConnectTimeout=10 {args} {user}@{host} {command} 2>/tmp/ssh.err &
pid=$!
for i in $(seq 50); do
  kill -0 $pid 2>/dev/null || break
  python3 -c "import socket; print(socket.create_connection(('127.0.0.1', 2526), 1).recv(100).decode().strip())" \\
    2>/dev/null && break
  sleep 0.2
done
kill $pid 2>/dev/null; wait $pid; echo "ssh exit $?"; cat /tmp/ssh.err; rm -f /tmp/pw /tmp/askpass /tmp/ssh.err
"""


def ssh_attempt(lab: MailLab, node, user: str, password: str, args: str, command: str = "") -> str:
    """ssh from client1 as USER with only a password to offer (read by SSH_ASKPASS, never on a command line): what
    the tunnel's local end (127.0.0.1:2526) answered, if it came up, and how ssh ended. The ssh process started
    here is ended by its own pid."""
    _put_file(lab.container("client1"), "/tmp/pw", (password + "\n").encode(), 0o600)
    script = SSH_ATTEMPT.format(args=args, user=user, host=node.address, command=command)
    return lab.container("client1").exec_run(["sh", "-c", script]).output.decode(errors="replace")


def test_a_mailbox_password_opens_no_ssh_tunnel_and_no_login_while_ansible_over_roots_key_still_runs(
        vps, maillab, paths):
    alice = vps.accounts[0]
    tunnel = "-N -L 2526:127.0.0.1:25"
    # The attack, without the role's sshd drop-in (Debian's sshd as it comes): the tunnel opens, and sendmail greets
    # through it as the host's own loopback, the address that relays.
    dropin = "/etc/ssh/sshd_config.d/sendmail-fleet-mail-users.conf"
    code, out = maillab.sh(vps, f"mv {dropin} /root/dropin.conf && systemctl reload ssh")
    assert code == 0, out
    try:
        seen = ssh_attempt(maillab, vps, alice.user, alice.password, tunnel)
        assert seen.startswith("220 "), f"the premise: without the drop-in the tunnel opens; saw: {seen}"
        run = playbook(paths, "-l", vps.short)  # Ansible, over root's key, writes the rule again and sshd takes it
        assert run.returncode == 0, run.stdout[-3000:]
    finally:  # the host as the test found it, if it stopped before the role put the rule back
        maillab.sh(vps, f"[ -e {dropin} ] || {{ mv /root/dropin.conf {dropin} && systemctl reload ssh; }}; "
                        "rm -f /root/dropin.conf")
    for args, command in ((tunnel, ""), ("-N -D 2527", ""), ("", "id")):  # a tunnel, a SOCKS proxy, a login
        seen = ssh_attempt(maillab, vps, alice.user, alice.password, args, command)
        assert "Permission denied" in seen and not seen.startswith("220") and "uid=" not in seen, (args, seen)
